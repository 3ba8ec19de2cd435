"""Small statistics used inside bootstraps and by more than one layer: ROC-AUC as a rank statistic,
balanced accuracy from one ``bincount``, and the Wilson interval of a proportion.

They equal scikit-learn's ``roc_auc_score`` / ``balanced_accuracy_score`` (``tests/test_metrics.py``) at a
fraction of the cost: scikit-learn validates its inputs on every call, which dominated the audit's 1000
bootstrap resamples (BENCHMARKS.md, "The audit's bootstrap").

Example:
    >>> binary_auc(np.array([False, False, True, True]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> balanced_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    0.75
    >>> [round(v, 3) for v in wilson(8, 10)]
    [0.49, 0.943]
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest, rankdata


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney U statistic (ties count one half); NaN without both classes."""
    positive = np.asarray(positive, bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def balanced_accuracy(y: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y`` (any labels: strings or integers)."""
    classes, codes = np.unique(np.concatenate([y, y_pred]), return_inverse=True)
    truth, guess = codes[:len(y)], codes[len(y):]
    k = len(classes)
    cm = np.bincount(truth * k + guess, minlength=k * k).reshape(k, k)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion ``successes / n`` (NaN, NaN when n is 0)."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(successes), int(n)).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high)
