"""The evidence behind every data rule's threshold, measured on every collection (issue #27 item 7).

For each collection folder given:

* **copies and scans** (``data.audit.DEFAULT_THRESHOLD``, ``CONFIRM_BITS``, ``ANNOTATED_COPY``,
  ``data.scans.SAME_SCAN``): every image pair whose phash lies within ``CONFIRM_BITS`` bits, counted
  by bits (0-1: the near-copy rule; 2-4: the pairs the audit compares by pixels) and by their picture
  distance (1 - correlation of the grey pictures at 128 px, ``data.scans``) in bands around the
  thresholds: a rule is sound where its threshold falls in an empty band;
* **the same picture at the model's input** (``data.neighbours.SAME_PICTURE``): every image's
  nearest other image by ``data.neighbours.thumbnails`` of the inputs a run trains on (``--size``
  px, body crop), for images with a copy (the audit's near groups) and without;
* **shortcut flags** (``data.audit.SIZE_RATIO_FLAG``, ``FRAMING_FLAG``, ``DISTRIBUTION_FLAG``): each
  class's value against the rest and which flags fire.

    python bench/thresholds.py ../shared/data/chest-ct-scan ../shared/data/tcga-ct-dicom collections/*
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import use_checkout

BANDS = (-1.0, 0.005, 0.02, 0.025, 0.04, 0.1, 2.0)  # -1: float16 pictures put a copy a hair below 0


def pair_table(table, rows: np.ndarray, confirm: int) -> dict:
    """Counts of phash-close pairs by bits and picture-distance band."""
    from ctdistill.data.neighbours import hash_bits

    bits = hash_bits(table["phash"]).astype(np.int32)
    hamming = bits @ (1 - bits).T + (1 - bits) @ bits.T
    i, j = np.nonzero(np.triu(hamming <= confirm, k=1))
    distance = 1.0 - (rows[i].astype(np.float32) * rows[j].astype(np.float32)).sum(1) / rows.shape[1]
    out = {}
    for name, lo, hi in (("0-1 bits", 0, 1), ("2 bits", 2, 2), ("3-4 bits", 3, confirm)):
        mine = (hamming[i, j] >= lo) & (hamming[i, j] <= hi)
        counts = np.histogram(distance[mine], BANDS)[0]
        out[name] = counts.tolist()
    return out


def nearest_inputs(root: Path, size: int, table) -> dict:
    """Nearest other image's distance at the model's input, for images with and without a copy."""
    from ctdistill.data import load_dataset
    from ctdistill.data.neighbours import thumbnails

    data = load_dataset(root, size, 3, crop="body")
    paths = [p for s in ("train", "valid", "test") for p in data.split(s).paths]
    x = np.concatenate([data.split(s).x for s in ("train", "valid", "test")])
    t = thumbnails(x)
    distance = 1.0 - t @ t.T / t.shape[1]
    np.fill_diagonal(distance, np.inf)
    nearest = distance.min(1)
    copy = table.set_index("path").loc[paths, "near_group"].to_numpy() >= 0
    pick = lambda mask, q: float(np.quantile(nearest[mask], q)) if mask.any() else float("nan")  # noqa: E731
    return {"copies_max": pick(copy, 1.0), "copies_n": int(copy.sum()), "others_min": pick(~copy, 0.0),
            "others_le_0.005": int((nearest[~copy] <= 0.005).sum()), "others_n": int((~copy).sum())}


def main(argv: list[str] | None = None) -> int:
    use_checkout()
    from ctdistill.data.audit import CONFIRM_BITS, audit_path
    from ctdistill.data.describe import open_picture
    from ctdistill.data.scans import grey_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--size", type=int, default=32, help="the model's input size (the default --image-size)")
    args = parser.parse_args(argv)
    bands = " | ".join(f"{lo}-{hi}" for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True))
    print(f"Pairs within {CONFIRM_BITS} phash bits, by picture distance band (counts: {bands}):")
    shortcut_lines, input_lines = [], []
    for root in args.folders:
        found = audit_path(root)
        table = found.table
        rows = grey_rows([open_picture(p) for p in table["path"]])
        for name, counts in pair_table(table, rows, CONFIRM_BITS).items():
            print(f"| {root.name} | {name} | " + " | ".join(map(str, counts)) + " |", flush=True)
        near = nearest_inputs(root, args.size, table)
        input_lines.append(f"| {root.name} | {near['copies_n']} | {near['copies_max']:.4f} | {near['others_n']} | "
                           f"{near['others_min']:.4f} | {near['others_le_0.005']} |")
        for risk in found.summary["shortcut_risks"]:
            shortcut_lines.append(
                f"| {root.name} | {risk['label']} | {risk['area_ratio_vs_rest']:.2f} | "
                f"{risk.get('body_share_vs_rest', float('nan')):+.3f} | {risk['mode_distance_vs_rest']:.2f} | "
                f"{risk['format_distance_vs_rest']:.2f} | {', '.join(risk['flags']) or '-'} |")
    print(f"\nNearest other image at the model's input ({args.size} px, body crop): "
          "| collection | images with a copy | their max | without | their min | without, within 0.005 |")
    print("\n".join(input_lines))
    print("\nShortcut flags: | collection | class | size ratio | body share vs rest | mode TV | format TV | flags |")
    print("\n".join(shortcut_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
