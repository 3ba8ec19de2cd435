"""Data audit: exact and near duplicates, leakage across splits, label conflicts, shortcut risks.

Small public medical datasets are full of copies; a copy of a training image in the test split
inflates every reported number. The audit finds:

* exact duplicates: identical decoded pixels (after converting to RGB), so a PNG and a re-encoded
  lossless copy of the same pixels are caught, not only identical bytes;
* near duplicates: perceptual hashes (``imagehash.phash``, 64 bits) within a Hamming distance
  ``threshold``, and pairs a few bits farther whose pixels are the same picture (a copy with an
  arrow or a line drawn on it; ``CONFIRM_BITS``, ``ANNOTATED_COPY``); groups are connected
  components, so chains of near copies form one group;
* cross-split files: valid/test files with an exact or near copy in an earlier split
  (train < valid < test);
* label conflicts: groups whose copies carry different labels;
* shortcut risks: per class, the original size, colour mode, file format and framing (the share of
  the image the body fills, ``data.crop``), flagged when a class differs strongly from the rest (a
  model can learn the source instead of the disease);
* header tags that give the label away: a DICOM tag value seen in one class only, more often than
  chance allows (``data.shortcuts.label_tags``: ContrastBolusAgent in a contrast/no-contrast set);
* scans without ids: images whose pictures are within ``data.scans.SAME_SCAN`` of each other, chained
  into scan groups (adjacent slices; copies among them), and the scans that straddle the given splits;
* framing by split: the body's median share of the image per split and class; a split framed
  unlike train (the Kaggle test split shows the table and wide margins) is a train/test shift.

Example:
    >>> result = audit_path("data/chest-ct-scan")      # doctest: +SKIP
    >>> result.summary["cross_split_files"]            # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import DisjointSet

from ctdistill.core.errors import DataError
from ctdistill.data import cache
from ctdistill.data.describe import describe_array, describe_image, picture_distance
from ctdistill.data.dicom import TAG_PREFIX
from ctdistill.data.numpy_layout import FILE_SPLIT, is_numpy_layout, load_numpy, read_array
from ctdistill.data.scans import SPLIT_ORDER, add_scan_groups, scan_findings
from ctdistill.data.shortcuts import label_tags, shortcut_baseline, train_test_shift
from ctdistill.data.tree import scan_tree
from ctdistill.run.folder import atomic_path, write_json

log = logging.getLogger(__name__)
# Largest phash Hamming distance (of 64 bits) that counts as a near copy. Chest-CT slices look alike:
# on the real dataset 0-1 reproduces its README (no cancer image shared across splits, one label
# conflict); 4 already grouped different slices of different patients and classes. phash sets the 32
# bits above the median of its 64 DCT terms, so distances are even and 0 and 1 are the same rule.
DEFAULT_THRESHOLD = 1
# Pairs up to this many phash bits apart are compared pixel by pixel (``_same_pictures``): an annotated
# copy of a cross-label pair on a public CT collection was 2 bits from its original.
CONFIRM_BITS = 4
# 1 - correlation of the grey pictures at 128 px below which two files are one picture. Measured on the
# Kaggle data (bench/cleanvision_compare.py, BENCHMARKS.md): the 11 annotated copies at phash distance 2
# lie at 0.0007-0.0149, the 15 different slices at that distance at 0.039-0.171.
ANNOTATED_COPY = 0.025
STORED_AUDIT = ("audit.csv", "audit.json")  # in a prepared numpy layout: the audit of its source files
SIZE_RATIO_FLAG = 1.5  # median pixel count of a class vs the rest, either way
FRAMING_FLAG = 0.1  # difference of the body's median share of the image: a class vs the rest, a split vs train
DISTRIBUTION_FLAG = 0.3  # total variation distance of a class's mode/format mix vs the rest


@dataclasses.dataclass
class AuditResult:
    """``table``: one row per image; ``summary``: the JSON-ready findings."""

    table: pd.DataFrame
    summary: dict


def collect(path: Path, class_map: str | Path | None = None) -> pd.DataFrame:
    """One row per image of a split tree, class-folder tree or numpy layout (``attrs["classes"]``: the
    folder-to-class mapping of a tree)."""
    if is_numpy_layout(path):
        return _collect_numpy(path)
    per_split, mapping = scan_tree(path, class_map)
    rows = []
    for split, items in per_split.items():
        for label, file in items:
            try:
                rows.append({"path": str(file), "split": split, "label": label,
                             **describe_image(file.read_bytes(), str(file))})
            except DataError as exc:  # the loader skips (or, --strict, refuses) it; the audit lists it
                rows.append({"path": str(file), "split": split, "label": label, "unreadable": str(exc)})
    table = pd.DataFrame(rows)
    if "unreadable" in table:
        unreadable = table["unreadable"].dropna().tolist()
        table = table[table["unreadable"].isna()].drop(columns="unreadable").reset_index(drop=True)
        table.attrs["unreadable"] = unreadable
        if table.empty:  # nothing left to compare
            raise DataError(f"{path}: none of its {len(unreadable)} images can be read ({unreadable[0]})")
    table.attrs["classes"] = mapping.to_dict()
    table.attrs["class_text"] = mapping.describe()
    return table


def _collect_numpy(path: Path) -> pd.DataFrame:
    data = _load_numpy_native(path)
    rows = []
    for split, (x, y, names) in data.items():
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            rows.append({"path": f"X_{FILE_SPLIT[split]}.npy[{i}]", "split": split, "label": names[label],
                         **describe_array(img)})
    return pd.DataFrame(rows)


def _load_numpy_native(path: Path) -> dict:
    """The numpy layout at its stored size (checked by the loader), as ``{split: (x, y, names)}``."""
    probe = read_array(path / "X_train.npy", mmap_mode="r")
    size = probe.shape[1] if probe.ndim >= 3 else 0
    ds = load_numpy(path, size, 3)
    return {s: (ds.split(s).x, ds.split(s).y, ds.class_names) for s in ("train", "valid", "test")}


def group(table: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Add ``exact_group`` and ``near_group`` (group ids, -1 when the image has no copy)."""
    table = table.copy()
    exact = table.groupby("pixel_hash").ngroup()
    sizes = exact.map(exact.value_counts())
    table["exact_group"] = np.where(sizes > 1, exact, -1)
    bits = np.array([np.unpackbits(np.frombuffer(bytes.fromhex(h), np.uint8)) for h in table["phash"]], bool)
    sets = DisjointSet(range(len(table)))
    candidates = []
    # Row-wise Hamming distances, O(n^2) bits: about a second for 1000 images. Identical pixels have
    # identical hashes (distance 0), so every exact group lies inside one near group.
    for i in range(len(table) - 1):
        distance = (bits[i + 1:] != bits[i]).sum(axis=1)
        for j in np.flatnonzero(distance <= threshold) + i + 1:
            sets.merge(i, j)
        candidates += [(i, j) for j in np.flatnonzero((distance > threshold) & (distance <= CONFIRM_BITS)) + i + 1]
    table.attrs["joined_by_pixels"] = _same_pictures(table["path"].tolist(), candidates, sets)
    roots = pd.Series([sets[i] for i in range(len(table))], index=table.index)
    near = roots.map(roots.value_counts())
    table["near_group"] = np.where(near > 1, roots.groupby(roots).ngroup(), -1)
    return table


def _same_pictures(paths: list[str], candidates: list[tuple[int, int]], sets: DisjointSet) -> list[list]:
    """Join the candidate pairs (a few bits apart, not yet one group) that are the same picture by
    :func:`data.describe.picture_distance`: a copy with a line drawn on it moves the hash 2 bits, as
    far as an adjacent slice does, but its pixels stay within :data:`ANNOTATED_COPY`. Ids that are
    not files (a numpy layout's) are left to the hashes. Returns the pairs that joined two groups."""
    joined = []
    for i, j in candidates:
        if sets.connected(i, j) or not (Path(paths[i]).is_file() and Path(paths[j]).is_file()):
            continue
        try:
            distance = picture_distance(paths[i], paths[j])
        except (OSError, DataError):  # unreadable since it was described: left to the hashes
            continue
        if distance <= ANNOTATED_COPY:
            sets.merge(i, j)
            joined.append([i, j, round(distance, 4)])
    return joined


def flag(table: pd.DataFrame) -> pd.DataFrame:
    """Per-image flags: exact_copy, near_copy, cross_split, label_conflict."""
    table = table.copy()
    order = table["split"].map(SPLIT_ORDER)
    grouped = table[table["near_group"] >= 0].groupby("near_group")
    first_split = grouped["split"].transform(lambda s: s.map(SPLIT_ORDER).min())
    conflict = grouped["label"].transform("nunique") > 1
    table["cross_split"] = False
    table.loc[first_split.index, "cross_split"] = (order[first_split.index] > first_split).to_numpy()
    table["label_conflict"] = False
    table.loc[conflict.index, "label_conflict"] = conflict.to_numpy()
    table["flags"] = [";".join(name for name, on in (("exact_copy", e >= 0), ("near_copy", n >= 0),
                                                      ("cross_split", c), ("label_conflict", lc)) if on)
                      for e, n, c, lc in zip(table["exact_group"], table["near_group"], table["cross_split"],
                                             table["label_conflict"], strict=True)]
    return table


def shortcut_risks(table: pd.DataFrame) -> list[dict]:
    """Per class: median size and mode/format mix, with flags where the class stands apart."""
    risks = []
    area = table["width"] * table["height"]
    for label in sorted(table["label"].unique()):
        mine, rest = table["label"] == label, table["label"] != label
        ratio = float(area[mine].median() / area[rest].median()) if rest.any() else 1.0
        row = {"label": label, "median_width": float(table.loc[mine, "width"].median()),
               "median_height": float(table.loc[mine, "height"].median()), "area_ratio_vs_rest": round(ratio, 3),
               "flags": []}
        if ratio > SIZE_RATIO_FLAG or ratio < 1 / SIZE_RATIO_FLAG:
            row["flags"].append("size")
        if "body_share" in table:
            share, other = table.loc[mine, "body_share"].median(), table.loc[rest, "body_share"].median()
            row["median_body_share"], row["body_share_vs_rest"] = round(float(share), 3), round(float(share - other), 3)
            if rest.any() and abs(share - other) > FRAMING_FLAG:
                row["flags"].append("framing")
        for column in ("mode", "format"):
            mix = table.loc[mine, column].value_counts(normalize=True)
            other = table.loc[rest, column].value_counts(normalize=True)
            distance = 0.5 * mix.sub(other, fill_value=0).abs().sum() if rest.any() else 0.0
            row[f"{column}_mix"] = {k: round(float(v), 3) for k, v in mix.items()}
            row[f"{column}_distance_vs_rest"] = round(float(distance), 3)
            if distance > DISTRIBUTION_FLAG:
                row["flags"].append(column)
        risks.append(row)
    return risks


def framing(table: pd.DataFrame) -> dict:
    """The body's median share of the image by split and class, each split against train, and the
    images where no body was found (``data.crop`` fallbacks)."""
    if "body_share" not in table or table.empty:
        return {}
    by_split = table.groupby("split")["body_share"].median()
    first = "train" if "train" in by_split else by_split.index[0]
    shifted = {s: round(float(v - by_split[first]), 3) for s, v in by_split.items()
               if s != first and abs(v - by_split[first]) > FRAMING_FLAG}
    return {"median_body_share": {s: round(float(v), 3) for s, v in by_split.items()},
            "by_split_and_class": {f"{s}/{c}": round(float(v), 3)
                                   for (s, c), v in table.groupby(["split", "label"])["body_share"].median().items()},
            "splits_framed_unlike_train": shifted,
            "no_body_found": table.loc[table["body_fallback"] != "", ["path", "body_fallback"]].values.tolist()}


def audit_path(path: str | Path, threshold: int = DEFAULT_THRESHOLD, class_map: str | Path | None = None
               ) -> AuditResult:
    """Audit a dataset folder; see the module docstring for what is found.

    Args:
        path: split tree, class-folder tree or numpy layout.
        threshold: largest perceptual-hash Hamming distance (of 64 bits) that counts as a near copy.
        class_map: optional TOML/JSON file mapping class folders to classes (``data.classes``).

    Returns:
        :class:`AuditResult` with the per-image table and the summary.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    if is_numpy_layout(root) and (root / STORED_AUDIT[0]).is_file():  # `data prepare` audited the source files
        summary = json.loads((root / STORED_AUDIT[1]).read_text(encoding="utf-8"))
        if summary.get("threshold") != threshold:
            log.warning("%s: the stored audit of the source files used threshold %s, not %s; audit the image "
                        "tree itself for another threshold", root, summary.get("threshold"), threshold)
        return AuditResult(pd.read_csv(root / STORED_AUDIT[0], keep_default_na=False, na_values=[""]), summary)
    collected = collect(root, class_map)
    table = add_scan_groups(flag(group(collected, threshold)))
    conflicts = table[table["label_conflict"]].groupby("near_group")["label"].agg(lambda s: sorted(set(s)))
    summary = {
        "path": str(root), "threshold": threshold, "n_files": len(table),
        "classes": collected.attrs.get("classes"), "class_text": collected.attrs.get("class_text"),
        "n_exact_groups": _n_groups(table, "exact_group"),
        "n_near_groups": _n_groups(table, "near_group"),
        "joined_by_pixels": [[table["path"].iloc[i], table["path"].iloc[j], d]
                             for i, j, d in table.attrs.get("joined_by_pixels", [])],
        "n_redundant_exact_copies": int((table["exact_group"] >= 0).sum()) - _n_groups(table, "exact_group"),
        "cross_split_files": table.loc[table["cross_split"], "path"].tolist(),
        "label_conflict_groups": [{"group": int(g), "labels": labels,
                                   "files": table.loc[table["near_group"] == g, "path"].tolist()}
                                  for g, labels in conflicts.items()],
        "counts": {s: table[table["split"] == s]["label"].value_counts().sort_index().to_dict()
                   for s in table["split"].unique()},
        "duplicates_by_split_and_class": _duplicate_counts(table),
        "shortcut_risks": shortcut_risks(table),
        "shortcut_baseline": shortcut_baseline(table),
        "label_tags": label_tags(table),
        "train_test_shift": train_test_shift(table),
        "framing": framing(table),
        **scan_findings(table),
        "unreadable_files": collected.attrs.get("unreadable", []),
    }
    return AuditResult(table, summary)


def _n_groups(table: pd.DataFrame, column: str) -> int:
    return int(table.loc[table[column] >= 0, column].nunique())


def _duplicate_counts(table: pd.DataFrame) -> dict:
    copies = table[table["near_group"] >= 0]
    return {f"{s}/{c}": {"files": int(len(g)), "distinct": int(g["near_group"].nunique()),
                         "cross_split": int(g["cross_split"].sum())}
            for (s, c), g in copies.groupby(["split", "label"])}


AUDIT_COLUMNS = ["path", "split", "label", "exact_group", "near_group", "flags", "width", "height", "mode", "format",
                 "pixel_hash", "phash", "dhash", "body_share", "body_fallback", "body_box", "file_kb", "mean", "std",
                 "border", "thumb", "thumb_body", "patient", "study", "scan_group"]


def write_audit(table: pd.DataFrame, summary: dict, out: Path) -> list[Path]:
    """``audit.csv`` (one row per image) and ``audit.json`` (the findings) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in AUDIT_COLUMNS if c in table]  # a numpy layout's audit has no file metadata
    columns += [c for c in table if c.startswith(TAG_PREFIX)]  # DICOM header tags (data.dicom.HEADER_TAGS)
    with atomic_path(out / STORED_AUDIT[0]) as tmp:
        table[columns].to_csv(tmp, index=False)
    return [out / STORED_AUDIT[0], write_json(out / STORED_AUDIT[1], summary)]


def dedup_test_mask(table: pd.DataFrame, earlier_ids: list[str], test_ids: list[str]) -> np.ndarray:
    """True for test images with no exact or near copy among ``earlier_ids`` (train and valid).

    Works on whatever split the run uses (the folder's own, or one ctdistill made): ids are file paths,
    or ``X_<split>.npy[i]`` for the numpy layout, as in the audit table.
    """
    group = table.set_index("path")["near_group"]
    earlier = set(group.loc[earlier_ids].tolist()) - {-1}
    return np.array([group[i] not in earlier for i in test_ids], dtype=bool)


AUDIT_VERSION = 9  # 5: dhash beside phash (data.neighbours); 6: intensity, file size, shortcut and shift;
# 7: thumbnails, DICOM slices with their patient and study; 8: DICOM header tags, label_tags; 9: scan groups


def audit_cached(path: str | Path, fingerprint: str, threshold: int = DEFAULT_THRESHOLD,
                 class_map: str | Path | None = None) -> AuditResult:
    """:func:`audit_path`, reusing an earlier result for the same data content and threshold (the
    fingerprint covers each file's class, so a different class map gives a new entry)."""
    # The path as given is part of the key: the table's ids are built from it and must match the
    # dataset's ids (a cached table made from "./data" would not match "data/...").
    key = cache.cache_key("audit", AUDIT_VERSION, fingerprint, str(path), threshold)
    stored = cache.load_json(key)
    if stored is not None:
        return AuditResult(pd.DataFrame(stored["table"]), stored["summary"])
    result = audit_path(path, threshold, class_map)
    cache.store_json(key, {"table": result.table.to_dict(orient="list"), "summary": result.summary})
    return result
