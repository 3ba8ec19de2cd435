"""Paired comparisons of two models on the same images: what quantization cost, what distillation gained.

Numbers only; ``report`` formats them.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from ctdistill.assess.metrics import bootstrap_ci, macro_f1


def mcnemar_exact(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """McNemar's exact test of two classifiers on the same cases (McNemar 1947).

    Only the discordant cases count: ``b`` = A right and B wrong, ``c`` = A wrong and B right. Under
    the null hypothesis (equal error rates) ``b ~ Binomial(b + c, 1/2)``; the exact two-sided
    p-value is scipy's binomial test (the same as statsmodels' ``mcnemar(exact=True)``).

    Example:
        >>> y = np.zeros(5, int)  # A right on all five, B wrong on all five: p = 2 * 0.5**5
        >>> mcnemar_exact(y, np.zeros(5, int), np.ones(5, int))["p_value"]
        0.0625
    """
    right_a, right_b = pred_a == y, pred_b == y
    b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"a_only_correct": b, "b_only_correct": c, "p_value": p}


def quantization_impact(y: np.ndarray, float_proba: np.ndarray, quant_proba: np.ndarray,
                        class_names: list[str]) -> dict:
    """How a quantized model's predictions differ from its float model's on the same images.

    Returns:
        ``{"accuracy_change", "flip_rate"`` (share of images whose predicted class changed),
        ``"mcnemar_p"``, ``"float_only_correct"``, ``"quant_only_correct"``, ``"prob_drift"`` (mean
        absolute change of the class probabilities), ``"collapsed"`` (it predicts one class for
        everything while the float model did not), ``"sensitivity_change_<class>"``...}``.
    """
    pf, pq = float_proba.argmax(axis=1), quant_proba.argmax(axis=1)
    test = mcnemar_exact(y, pf, pq)
    out = {"accuracy_change": float(np.mean(pq == y) - np.mean(pf == y)), "flip_rate": float(np.mean(pf != pq)),
           "mcnemar_p": test["p_value"], "float_only_correct": test["a_only_correct"],
           "quant_only_correct": test["b_only_correct"],
           "prob_drift": float(np.mean(np.abs(quant_proba - float_proba))),
           # One class for every image while the float model told classes apart: a broken model, not a result.
           "collapsed": bool(len(np.unique(pq)) == 1 and len(np.unique(pf)) > 1)}
    for c, name in enumerate(class_names):
        mask = y == c
        out[f"sensitivity_change_{name}"] = float(np.mean(pq[mask] == c) - np.mean(pf[mask] == c)) if mask.any() \
            else float("nan")
    return out


def paired_gain(y: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, n_classes: int, n_resamples: int = 1000,
                method: str = "percentile", seed: int = 0) -> dict:
    """Model A minus model B in accuracy and macro-F1, with paired bootstrap 95% intervals.

    Both models are scored on the same resampled images in every bootstrap round, so the interval
    is that of the difference, not of two independent estimates.
    """
    pa, pb = proba_a.argmax(axis=1), proba_b.argmax(axis=1)

    def diff(i):
        f1 = [macro_f1(y[i], p[i], n_classes) for p in (pa, pb)]
        return np.array([np.mean(pa[i] == y[i]) - np.mean(pb[i] == y[i]), f1[0] - f1[1]])

    point = diff(np.arange(len(y)))
    out = {"accuracy_gain": float(point[0]), "f1_gain": float(point[1])}
    if n_resamples > 0:
        low, high = bootstrap_ci(diff, len(y), n_resamples, method, seed)
        out.update(accuracy_gain_lo=float(low[0]), accuracy_gain_hi=float(high[0]), f1_gain_lo=float(low[1]),
                   f1_gain_hi=float(high[1]))
    return out
