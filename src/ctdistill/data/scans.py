"""One scan without ids: images whose pictures are so close that they are adjacent slices (or copies).

A collection without patient ids (files numbered in scan order, a PNG export) puts neighbouring
slices of one scan in different splits, and a test slice's nearest training image is then its own
neighbour. Copies are caught by the hashes (``data.audit``); adjacent slices are not copies, but
their pictures are nearly as close. Two images whose grey pictures at 128 px
(``data.describe.standardised_picture``) lie within :data:`SAME_SCAN` of each other (1 - their
correlation) are linked, and a scan group is a connected component of links: a chain of slices.

The threshold was measured on six collections (BENCHMARKS.md, "Same scan without ids"): every
consecutive pair of thin slices in LUNA16's scans lies within 0.0158, every image of another scan
at least 0.29 away; it joins no image of UCSD COVID-CT or TCGA and 5 of the 1000 Kaggle images.
Slices 5-8 mm apart (Lung-PET-CT-Dx, median 0.0245) are linked only in part: DICOM's PatientID
covers those (``data.split.scan_keys``).

Example:
    >>> rows = np.stack([standardised_picture(Image.fromarray(np.roll(_blob(), k, axis=0))) for k in (0, 1, 40)])
    >>> scan_groups(len(rows), close_pairs(rows)).tolist()
    [0, 0, -1]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ctdistill.data.describe import standardised_picture

SPLIT_ORDER = {"train": 0, "all": 0, "valid": 1, "test": 2}  # earlier splits teach, later ones are judged
SAME_SCAN = 0.02
CHUNK = 512  # rows of the distance matrix at a time: 512 x N floats, never the whole N x N


def _blob() -> np.ndarray:  # the example's picture: a smooth bright disc
    yy, xx = np.mgrid[:96, :96]
    return (255 * np.exp(-((yy - 48) ** 2 + (xx - 48) ** 2) / 400)).astype(np.uint8)


def distance_rows(rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``1 - correlation`` of pictures ``start:stop`` with every picture: a ``(stop - start, N)`` block.

    Args:
        rows: ``(N, D)`` standardised pictures (:func:`data.describe.standardised_picture`).
    """
    block = rows[start:stop].astype(np.float32) @ rows.astype(np.float32).T
    return 1.0 - block / rows.shape[1]


def close_pairs(rows: np.ndarray, threshold: float = SAME_SCAN, chunk: int = CHUNK) -> np.ndarray:
    """Every pair ``(i, j, distance)`` with ``i < j`` whose pictures lie within ``threshold``.

    Args:
        rows: ``(N, D)`` standardised pictures; a row of NaN (an image without a picture) links to none.
        threshold: largest ``1 - correlation`` that links two images.
        chunk: rows computed at a time (memory ``chunk x N`` floats).

    Returns:
        A ``(P, 3)`` float array: the indices (as floats) and the distance of each close pair.
    """
    found = []
    for start in range(0, len(rows), chunk):
        block = distance_rows(rows, start, min(start + chunk, len(rows)))
        i, j = np.nonzero(block <= threshold)  # NaN compares False
        i += start
        keep = i < j
        found.append(np.column_stack([i[keep], j[keep], block[i[keep] - start, j[keep]]]))
    return np.concatenate(found) if found else np.zeros((0, 3))


def scan_groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Group ids of the connected components of the links ``pairs`` (:func:`close_pairs`); -1 for an
    image linked to none. Ids count from 0 in order of each group's first image."""
    if n == 0:
        return np.zeros(0, int)
    i, j = pairs[:, 0].astype(int), pairs[:, 1].astype(int)
    _, label = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    sizes = np.bincount(label)
    out = np.full(n, -1)
    grouped = sizes[label] > 1
    _, out[grouped] = np.unique(label[grouped], return_inverse=True)
    first = {g: k for k, g in reversed(list(enumerate(out))) if g >= 0}
    order = {g: rank for rank, g in enumerate(sorted(first, key=first.get))}
    return np.array([order.get(g, -1) for g in out])


def picture_rows(pictures: list) -> np.ndarray:
    """Stack pictures (:func:`standardised_picture` rows, None for an image without one, as NaN rows)."""
    width = next((len(p) for p in pictures if p is not None), 1)
    return np.stack([p if p is not None else np.full(width, np.nan, np.float16) for p in pictures]) if pictures \
        else np.zeros((0, width), np.float16)


def grey_rows(images: list[Image.Image]) -> np.ndarray:
    """:func:`standardised_picture` of every image, stacked."""
    return picture_rows([standardised_picture(img) for img in images])


def add_scan_groups(table: pd.DataFrame, threshold: float = SAME_SCAN) -> pd.DataFrame:
    """The audit table with ``scan_group`` (:func:`scan_groups` of its ``picture`` column, which it
    drops) and ``scan_cross_split`` (a valid/test image whose scan group has an image in an earlier
    split, and that is not already a ``cross_split`` copy); ``flags`` gains ``scan_cross_split``."""
    table = table.copy()
    pictures = table.pop("picture").tolist() if "picture" in table else [None] * len(table)
    table["scan_group"] = scan_groups(len(table), close_pairs(picture_rows(pictures), threshold))
    order = table["split"].map(SPLIT_ORDER)
    first = order.groupby(table["scan_group"]).transform("min")
    crossed = (table["scan_group"] >= 0) & (order > first)
    table["scan_cross_split"] = crossed & ~table.get("cross_split", pd.Series(False, index=table.index))
    if "flags" in table:
        table["flags"] = [";".join(filter(None, (f, "scan_cross_split" if c else "")))
                          for f, c in zip(table["flags"], table["scan_cross_split"], strict=True)]
    return table


def scan_findings(table: pd.DataFrame, listed: int = 20) -> dict:
    """The audit summary's scan entries from a table with ``scan_group`` (:func:`add_scan_groups`).

    Returns:
        ``same_scan_threshold``; ``n_scan_groups`` and ``n_scan_groups_beyond_copies`` (groups that join
        images no copy group joins: adjacent slices); ``images_in_scan_groups``;
        ``scan_groups_with_several_labels``; ``scan_cross_split_files`` (every valid/test file whose scan
        has an earlier-split image, copies aside); ``scans_straddling_splits`` (the first ``listed``
        groups beyond copies found in several given splits: their splits, labels and files; copy
        groups across splits are the audit's ``cross_split_files``).
    """
    grouped = table[table["scan_group"] >= 0]
    near = grouped["near_group"] if "near_group" in grouped else pd.Series(-1, index=grouped.index)
    copies = np.where(near >= 0, near, -1 - np.arange(len(grouped)))  # an image without a copy: its own key
    beyond = pd.Series(copies, index=grouped.index).groupby(grouped["scan_group"]).nunique() > 1
    by_group = grouped.groupby("scan_group")
    straddling = [{"group": int(g), "splits": rows["split"].value_counts().sort_index().to_dict(),
                   "labels": sorted(set(rows["label"])), "files": rows["path"].tolist()[:10]}
                  for g, rows in by_group if rows["split"].nunique() > 1 and beyond[g]]
    return {"same_scan_threshold": SAME_SCAN, "n_scan_groups": int(by_group.ngroups),
            "n_scan_groups_beyond_copies": int(beyond.sum()), "images_in_scan_groups": len(grouped),
            "scan_groups_with_several_labels": int((by_group["label"].nunique() > 1).sum()) if len(grouped) else 0,
            "n_scans_straddling_splits": len(straddling), "scans_straddling_splits": straddling[:listed],
            "scan_cross_split_files": table.loc[table["scan_cross_split"], "path"].tolist()}
