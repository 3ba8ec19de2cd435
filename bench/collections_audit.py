"""The data rules on every collection of the regression set (issue #27): crop, copies, shortcuts, scans.

For each folder given (class-folder trees, laid out by ``bench/datasets.py`` or in ``../shared/data``)
it runs ctdistill's own audit (``data.audit.audit_path``) and prints one Markdown row: images,
classes, the crop's success (``body_fallback`` of the audit table: DICOM on Hounsfield units, images
on grey), exact and near copy groups, the scan groups found in the pixels (``data.scans``), the
metadata shortcut baseline and DICOM tags that give the label away. With ``--scan-order`` it also
measures what a same-scan rule would have to separate: within each class folder, files in natural
sorted order are taken as consecutive slices of scans, and for every slice its picture distance
(``data.describe.picture_distance``: 1 - correlation of the grey pictures at 128 px) to the next
slice, against its distance to the nearest image of any other class folder (another scan, series or
patient).

    python bench/collections_audit.py ../shared/data/chest-ct-scan collections/*
    python bench/collections_audit.py collections/luna16_stacks --scan-order
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np


def natural(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def audit_row(root: Path) -> str:
    from ctdistill.data.audit import audit_path

    found = audit_path(root)
    table, summary = found.table, found.summary
    missed = table["body_fallback"].fillna("").astype(str)
    reasons = missed[missed != ""].value_counts().to_dict()
    base = summary.get("shortcut_baseline") or {}
    tags = "; ".join(f"{t['tag']}={t['value']} ({t['files']} {t['class']})" for t in summary.get("label_tags", []))
    return (f"| {root.name} | {len(table)} | {table['label'].nunique()} | "
            f"{100 * np.mean(missed == ''):.1f}% {reasons or ''} | {summary['n_exact_groups']} / "
            f"{summary['n_near_groups']} | {summary['n_scan_groups']} ({summary['n_scan_groups_beyond_copies']}) / "
            f"{summary['images_in_scan_groups']} | {base.get('balanced_accuracy', float('nan')):.2f} "
            f"(chance {base.get('chance', float('nan')):.2f}) | {tags or 'none'} |")


def scan_distances(root: Path) -> dict:
    from ctdistill.data.describe import open_picture
    from ctdistill.data.scans import distance_rows, grey_rows

    folders = sorted(p for p in root.iterdir() if p.is_dir())
    files = [(k, f) for k, d in enumerate(folders) for f in sorted((p for p in d.iterdir() if p.is_file()),
                                                                   key=lambda p: natural(p.name))]
    rows = grey_rows([open_picture(f) for _, f in files])  # the audit's own pictures and distance
    distance = distance_rows(rows, 0, len(rows))
    group = np.array([k for k, _ in files])
    nxt = [distance[i, i + 1] for i in range(len(files) - 1) if group[i] == group[i + 1]]
    other = [distance[i, group != group[i]].min() for i in range(len(files))]
    q = [0.5, 0.9, 0.95, 0.99, 1.0]
    return {"next_slice": np.quantile(nxt, q), "other_scan_nearest": np.quantile(other, [0.0, 0.01, 0.05, 0.1, 0.5]),
            "n": len(files)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--scan-order", action="store_true", help="measure next-slice against other-scan distances")
    args = parser.parse_args(argv)
    if args.scan_order:
        for root in args.folders:
            d = scan_distances(root)
            print(f"{root.name} ({d['n']} slices): next slice, quantiles 50/90/95/99/100%: "
                  + ", ".join(f"{v:.4f}" for v in d["next_slice"]) + "; nearest image of another folder, "
                  "quantiles 0/1/5/10/50%: " + ", ".join(f"{v:.4f}" for v in d["other_scan_nearest"]))
        return 0
    print("| collection | images | classes | body found (fallbacks) | exact / near copy groups | "
          "scan groups (beyond copies) / images in them | metadata baseline, balanced acc | "
          "DICOM tags that give the label away |")
    print("|---|---|---|---|---|---|---|---|")
    for root in args.folders:
        print(audit_row(root), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
