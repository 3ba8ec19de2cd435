"""Group-aware re-splitting: no group of copies straddles two splits.

``grouped_split`` (``--split grouped``, and the default for a dataset without splits) pools all
images: one of 5 folds becomes test (about 20%), then one of 8 folds of the rest becomes valid.
``carve_validation`` (``validation = "carved"``, the default) keeps the official test split and
re-draws valid from train + valid. Both are stratified by class and seeded (scikit-learn's
``StratifiedGroupKFold``), with the audit's near-copy groups as groups, joined with the patient or
scan groups that ``--group-by REGEX`` reads from each image's path and, for DICOM slices, their
PatientID (StudyInstanceUID where it is empty): adjacent slices of one scan are not copies, but one
patient on both sides of a split is a leak all the same.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import DisjointSet
from sklearn.model_selection import StratifiedGroupKFold

from ctdistill.core.errors import DataError
from ctdistill.data.dataset import SPLITS, Dataset, Split


def split_groups(paths: list[str], near: np.ndarray | None, group_by: str | None = None,
                 scans: np.ndarray | None = None, pictures: np.ndarray | None = None) -> np.ndarray:
    r"""One group id per image: images that are copies (``near``: the audit's near groups, -1 for none),
    share a ``group_by`` key (the regex's first group, or its whole match, found in the path), a
    scan key (``scans``: :func:`scan_keys`, "" for none) or a scan group found in the pixels
    (``pictures``: the audit's ``scan_group``, ``data.scans``; -1 for none) are one group; every other
    image is a group of its own.

    Example:
        >>> split_groups(["p1_a.png", "p1_b.png", "p2_a.png"], None, r"p(\d+)_").tolist()
        [0, 0, 2]
    """
    sets = DisjointSet(range(len(paths)))
    keys: dict[tuple, int] = {}
    pattern = re.compile(group_by) if group_by else None
    for i, path in enumerate(paths):
        found = pattern.search(str(path)) if pattern else None
        for key in ([("near", near[i])] if near is not None and near[i] >= 0 else []) + (
                [("key", found.group(1) if found.groups() else found.group(0))] if found else []) + (
                [("scan", scans[i])] if scans is not None and scans[i] else []) + (
                [("pixels", pictures[i])] if pictures is not None and pictures[i] >= 0 else []):
            sets.merge(keys.setdefault(key, i), i)
    return np.array([min(sets.subset(i)) for i in range(len(paths))])


def scan_keys(audit_table: pd.DataFrame | None, paths: list[str]) -> np.ndarray | None:
    """Each image's patient (its study where the PatientID is empty) from the audit table, "" for
    images without (not DICOM); None when no image has one."""
    if audit_table is None or not {"patient", "study"} & set(audit_table):
        return None
    rows = audit_table.set_index("path").reindex(paths)
    patient = rows.get("patient", pd.Series("", index=rows.index)).fillna("").astype(str)
    study = rows.get("study", pd.Series("", index=rows.index)).fillna("").astype(str)
    keys = np.where(patient != "", "patient:" + patient, np.where(study != "", "study:" + study, ""))
    return keys if (keys != "").any() else None


def table_groups(audit_table: pd.DataFrame | None, paths: list[str], group_by: str | None = None,
                 copies: bool = True) -> np.ndarray:
    """:func:`split_groups` of ``paths`` from the audit table's near groups (unless ``copies`` is False),
    scan ids and scan groups (every image its own group, but for ``group_by``, without an audit)."""
    rows = audit_table.set_index("path") if audit_table is not None else pd.DataFrame()
    near = rows["near_group"].loc[paths].to_numpy() if copies and "near_group" in rows else None
    pictures = rows["scan_group"].loc[paths].to_numpy() if "scan_group" in rows else None
    return split_groups(paths, near, group_by, scan_keys(audit_table, paths), pictures)


def has_scans(audit_table: pd.DataFrame | None) -> bool:
    """Whether the audit table knows any patient or scan (DICOM ids, or scan groups in the pixels)."""
    if audit_table is None:
        return False
    found = "scan_group" in audit_table and bool((audit_table["scan_group"] >= 0).any())
    return found or scan_keys(audit_table, audit_table["path"].tolist()) is not None


def grouped_split(data: Dataset, audit_table: pd.DataFrame, seed: int, group_by: str | None = None) -> Dataset:
    """Pool all splits and split again so that every near-copy group lands in one split.

    Args:
        data: the dataset (its ``paths`` must be the audit's image ids).
        audit_table: the audit's per-image table (``path``, ``near_group``).
        seed: shuffles the folds.
        group_by: a regex naming each image's patient or scan in its path (``split_groups``).

    Returns:
        A new :class:`Dataset` with the same images and classes.
    """
    x = np.concatenate([data.split(s).x for s in SPLITS])
    y = np.concatenate([data.split(s).y for s in SPLITS])
    paths = [p for s in SPLITS for p in data.split(s).paths]
    groups = table_groups(audit_table, paths, group_by)
    rest, test = _one_fold(y, groups, 5, seed, data.class_names)
    train, valid = _one_fold(y[rest], groups[rest], 8, seed, data.class_names)
    train, valid = rest[train], rest[valid]

    def take(ix: np.ndarray) -> Split:
        return Split(x[ix], y[ix], [paths[i] for i in ix])

    return dataclasses.replace(data, train=take(train), valid=take(valid), test=take(test), test_split="grouped",
                               source=f"{data.source}, re-split by duplicate groups (seed {seed})")


def carve_validation(data: Dataset, audit_table: pd.DataFrame | None, fraction: float, seed: int,
                     group_by: str | None = None) -> Dataset:
    """Pool train and valid and carve a validation split of about ``fraction`` by copy groups.

    The official valid split of the Kaggle data has 72 images, several of them copies of training
    images: a model selected on it is selected on noise. The carved split is about twice as large
    and shares no (near) copy with the images the model trains on. The test split is untouched.

    Args:
        data: the dataset.
        audit_table: the audit's per-image table (``path``, ``near_group``), or None when the data
            was not audited (every image is then its own group).
        fraction: share of train + valid that becomes valid.
        seed: shuffles the folds.
        group_by: a regex naming each image's patient or scan in its path (``split_groups``).
    """
    x = np.concatenate([data.train.x, data.valid.x])
    y = np.concatenate([data.train.y, data.valid.y])
    paths = (data.train.paths or []) + (data.valid.paths or [])
    groups = table_groups(audit_table, paths, group_by) if len(paths) == len(y) else -np.arange(1, len(y) + 1)
    train, valid = _one_fold(y, groups, max(2, round(1 / fraction)), seed, data.class_names)

    def take(ix: np.ndarray) -> Split:
        return Split(x[ix], y[ix], [paths[i] for i in ix] if paths else None)

    return dataclasses.replace(data, train=take(train), valid=take(valid),
                               source=f"{data.source}, valid carved from train+valid by copy groups (seed {seed})")


def _one_fold(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int,
              class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if len(np.unique(groups)) < n_splits:  # e.g. anonymised DICOM: one PatientID for every slice
        raise DataError(f"only {len(np.unique(groups))} patient/scan/copy group(s) among {len(y)} images (DICOM "
                        "PatientID, --group-by, copies, and scans the audit chained from their pictures): too few to "
                        f"split into {n_splits} folds by group, so no test image would come from an unseen patient or "
                        "scan (check --group-by, or the files' PatientID)")
    few = {class_names[c]: len(np.unique(groups[y == c])) for c in np.unique(y)
           if len(np.unique(groups[y == c])) < 2}
    if few:  # one image (or one copy group) cannot sit on both sides of a split
        raise DataError("too few images to split: " + ", ".join(f"class {n!r} has {k} image(s) or copy group(s)"
                                                               for n, k in few.items())
                        + "; every class needs at least 3 (train, valid and test) to be split, more to be learnt")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return next(folds.split(np.zeros(len(y)), y, groups))
