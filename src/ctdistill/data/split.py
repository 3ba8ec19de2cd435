"""Group-aware re-splitting: no group of copies straddles two splits.

Used by ``--split grouped``, and by default for a dataset that comes without splits. Stratified by
class and seeded (scikit-learn's ``StratifiedGroupKFold``): one of 5 folds becomes test (about 20%),
then one of 8 folds of the rest becomes valid (about 10% of all).
"""

from __future__ import annotations

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

    return Dataset(take(train), take(valid), take(test), data.class_names, data.fingerprint,
                   f"{data.source}, re-split by duplicate groups (seed {seed})")


def _one_fold(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return next(folds.split(np.zeros(len(y)), y, groups))
