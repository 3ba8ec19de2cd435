"""Group-aware re-splitting: no group of copies straddles two splits.

``grouped_split`` (``--split grouped``, and the default for a dataset without splits) pools all
images: one of 5 folds becomes test (about 20%), then one of 8 folds of the rest becomes valid.
``carve_validation`` (``validation = "carved"``, the default) keeps the official test split and
re-draws valid from train + valid. Both are stratified by class and seeded (scikit-learn's
``StratifiedGroupKFold``), with the audit's near-copy groups as groups.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from ctdistill.data.dataset import SPLITS, Dataset, Split


def grouped_split(data: Dataset, audit_table: pd.DataFrame, seed: int) -> Dataset:
    """Pool all splits and split again so that every near-copy group lands in one split.

    Args:
        data: the dataset (its ``paths`` must be the audit's image ids).
        audit_table: the audit's per-image table (``path``, ``near_group``).
        seed: shuffles the folds.

    Returns:
        A new :class:`Dataset` with the same images and classes.
    """
    x = np.concatenate([data.split(s).x for s in SPLITS])
    y = np.concatenate([data.split(s).y for s in SPLITS])
    paths = [p for s in SPLITS for p in data.split(s).paths]
    near = audit_table.set_index("path")["near_group"]
    groups = np.array([g if g >= 0 else -(i + 1) for i, g in enumerate(near.loc[paths].to_numpy())])
    rest, test = _one_fold(y, groups, 5, seed)
    train, valid = _one_fold(y[rest], groups[rest], 8, seed)
    train, valid = rest[train], rest[valid]

    def take(ix: np.ndarray) -> Split:
        return Split(x[ix], y[ix], [paths[i] for i in ix])

    return dataclasses.replace(data, train=take(train), valid=take(valid), test=take(test), test_split="grouped",
                               source=f"{data.source}, re-split by duplicate groups (seed {seed})")


def carve_validation(data: Dataset, audit_table: pd.DataFrame | None, fraction: float, seed: int) -> Dataset:
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
    """
    x = np.concatenate([data.train.x, data.valid.x])
    y = np.concatenate([data.train.y, data.valid.y])
    paths = (data.train.paths or []) + (data.valid.paths or [])
    groups = -np.arange(1, len(y) + 1)
    if audit_table is not None and len(paths) == len(y):
        near = audit_table.set_index("path")["near_group"].loc[paths].to_numpy()
        groups = np.where(near >= 0, near, groups)
    train, valid = _one_fold(y, groups, max(2, round(1 / fraction)), seed)

    def take(ix: np.ndarray) -> Split:
        return Split(x[ix], y[ix], [paths[i] for i in ix] if paths else None)

    return dataclasses.replace(data, train=take(train), valid=take(valid),
                               source=f"{data.source}, valid carved from train+valid by copy groups (seed {seed})")


def _one_fold(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return next(folds.split(np.zeros(len(y)), y, groups))
