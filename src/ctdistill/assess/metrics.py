"""Metrics of one model from its predictions: numbers in, numbers out (formatting lives in ``report``).

``clinical_metrics`` gives what a reader of a medical-imaging paper expects of one model: per-class
sensitivity and specificity, one-vs-rest ROC-AUC, calibration (ECE) and bootstrap confidence
intervals (scipy's ``bootstrap``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ctdistill.core.stats import binary_auc, wilson


@dataclasses.dataclass
class Predictions:
    """Class probabilities of one model on one split, with the true labels."""

    y_true: np.ndarray
    proba: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


def classification_metrics(pred: Predictions, class_names: list[str]) -> dict:
    """Accuracy, macro/weighted precision, recall and F1, confusion matrix and per-class report.

    Args:
        pred: probabilities and true labels.
        class_names: label index -> name.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"`` (macro), ``"precision_weighted"``, ...,
        ``"confusion"`` (list of rows, true x predicted), ``"report"`` (sklearn's per-class dict)}.

    Example:
        >>> p = Predictions(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
        >>> classification_metrics(p, ["a", "b"])["accuracy"]
        1.0
    """
    labels = list(range(len(class_names)))
    y, yp = pred.y_true, pred.y_pred
    out = {"accuracy": float(accuracy_score(y, yp))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, yp, labels=labels, average=avg, zero_division=0)
        suffix = "" if avg == "macro" else "_weighted"
        out.update({f"precision{suffix}": float(p), f"recall{suffix}": float(r), f"f1{suffix}": float(f)})
    out["confusion"] = confusion_matrix(y, yp, labels=labels).tolist()
    out["report"] = classification_report(y, yp, labels=labels, target_names=class_names,
                                          output_dict=True, zero_division=0)
    return out


CI_METRICS = ("accuracy", "f1", "auc")  # the metrics that get bootstrap confidence intervals


def macro_auc(y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """Macro one-vs-rest ROC-AUC over the classes present in ``y`` (NaN with fewer than two)."""
    aucs = [binary_auc(y == c, proba[:, c]) for c in range(n_classes) if 0 < (y == c).sum() < len(y)]
    return float(np.mean(aucs)) if len(aucs) >= 2 else float("nan")


def macro_f1(y: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over all ``n_classes`` (a class never true nor predicted scores 0), as sklearn's
    ``f1_score(average="macro", zero_division=0)`` (tested), from one ``bincount``."""
    cm = np.bincount(y * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    return float(np.mean(np.where(denom > 0, 2 * np.diag(cm) / np.maximum(denom, 1), 0.0)))


def calibration_bins(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> dict:
    """Reliability-diagram bins and the expected calibration error.

    ECE = sum over equal-width confidence bins of (n_b / N) * |accuracy_b - mean confidence_b|,
    confidence = the top-class probability (Naeini et al. 2015; Guo et al. 2017, "On Calibration of
    Modern Neural Networks").

    Returns:
        ``{"ece", "edges", "count", "accuracy", "confidence"}`` (per-bin lists; NaN for empty bins).

    Example:
        >>> calibration_bins(np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]]), 10)["ece"]
        0.35
    """
    confidence, correct = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(index, correct, n_bins) / count
        conf = np.bincount(index, confidence, n_bins) / count
    ece = float(np.nansum(count / len(y) * np.abs(acc - conf)))
    return {"ece": round(ece, 12), "edges": edges.tolist(), "count": count.tolist(), "accuracy": acc.tolist(),
            "confidence": conf.tolist()}


def bootstrap_ci(statistic, n: int, n_resamples: int = 1000, method: str = "percentile", seed: int = 0,
                 level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap confidence intervals of ``statistic(indices) -> array`` over ``n`` resampled cases.

    Cases are resampled as indices, so several arrays (labels, two models' probabilities) stay paired.
    ``method`` is ``percentile`` or ``BCa`` (scipy.stats.bootstrap).
    """
    result = bootstrap((np.arange(n),), statistic, n_resamples=n_resamples, method=method, vectorized=False,
                       confidence_level=level, random_state=np.random.default_rng(seed))
    return np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)


def clinical_metrics(y: np.ndarray, proba: np.ndarray, class_names: list[str], n_bins: int = 10,
                     n_resamples: int = 1000, ci_method: str = "percentile", seed: int = 0) -> dict:
    """Everything reported per model on one split.

    Args:
        y: true labels (N,).
        proba: class probabilities (N, K).
        class_names: label index -> name.
        n_bins: equal-width bins of the calibration error.
        n_resamples, ci_method, seed: bootstrap of the 95% intervals of ``CI_METRICS`` (0 resamples: none).

    Returns:
        ``{"overall": {accuracy, balanced_accuracy, precision, recall, f1 (macro), *_weighted, auc,
        ece, n, <m>_lo, <m>_hi}, "per_class": [{class, sensitivity, specificity, precision, f1, auc,
        support}], "calibration": calibration_bins(...)}``.
    """
    k, yp = len(class_names), proba.argmax(axis=1)
    base = classification_metrics(Predictions(y, proba), class_names)
    overall = {key: base[key] for key in ("accuracy", "precision", "recall", "f1", "precision_weighted",
                                          "recall_weighted", "f1_weighted")}
    calibration = calibration_bins(y, proba, n_bins)
    overall.update(balanced_accuracy=float(balanced_accuracy_score(y, yp)), auc=macro_auc(y, proba, k),
                   ece=calibration["ece"], n=int(len(y)))
    if n_resamples > 0:
        def stat(i):
            return np.array([np.mean(y[i] == yp[i]), macro_f1(y[i], yp[i], k), macro_auc(y[i], proba[i], k)])

        low, high = bootstrap_ci(stat, len(y), n_resamples, ci_method, seed)
        for name, lo, hi in zip(CI_METRICS, low, high, strict=True):
            overall[f"{name}_lo"], overall[f"{name}_hi"] = float(lo), float(hi)
    confusion = np.asarray(base["confusion"])
    per_class = []
    for c, name in enumerate(class_names):
        tp, fn = confusion[c, c], confusion[c].sum() - confusion[c, c]
        fp = confusion[:, c].sum() - tp
        tn = confusion.sum() - tp - fn - fp
        (sens_lo, sens_hi), (spec_lo, spec_hi) = wilson(tp, tp + fn), wilson(tn, tn + fp)
        per_class.append({"class": name, "sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp),
                          "precision": _ratio(tp, tp + fp), "f1": _ratio(2 * tp, 2 * tp + fp + fn),
                          "auc": binary_auc(y == c, proba[:, c]), "support": int(tp + fn),
                          "sensitivity_lo": sens_lo, "sensitivity_hi": sens_hi,
                          "specificity_lo": spec_lo, "specificity_hi": spec_hi})
    return {"overall": overall, "per_class": per_class, "calibration": calibration, "confusion": base["confusion"]}


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def scoring_options(config: dict) -> dict:
    """The options of :func:`model_metrics` from a run's configuration (``Config.to_dict()`` or
    ``config.json``): calibration bins, bootstrap resamples and method, and the seed."""
    return {"n_bins": config["ece_bins"], "n_resamples": config["bootstrap_resamples"],
            "ci_method": config["ci_method"], "seed": config["seed"]}


# Bumped when model_metrics returns more: metrics stored by an older version are computed again (2: the
# Wilson intervals of per-class sensitivity and specificity).
METRICS_VERSION = 2


def model_metrics(y: np.ndarray, proba: np.ndarray, class_names: list[str], dedup: np.ndarray | None,
                  options: dict) -> dict:
    """Every number the run reports for one model on the test split, computed once.

    Args:
        y, proba: true labels and class probabilities on the test split.
        class_names: label index -> name.
        dedup: boolean mask of the de-duplicated test view (None when the data was not audited).
        options: :func:`scoring_options`.

    Returns:
        :func:`clinical_metrics`' result plus ``"report"`` (sklearn's per-class dict, for the seed's
        tables), ``"dedup"`` (the de-duplicated view's overall metrics, no intervals; None without an
        audit) and ``"options"``.

    Example:
        >>> m = model_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"], None,
        ...                   {"n_bins": 10, "n_resamples": 0, "ci_method": "percentile", "seed": 0})
        >>> m["overall"]["accuracy"], m["dedup"]
        (1.0, None)
    """
    result = clinical_metrics(y, proba, class_names, **options)
    result["report"] = classification_metrics(Predictions(y, proba), class_names)["report"]
    result["dedup"] = (None if dedup is None else
                       clinical_metrics(y[dedup], proba[dedup], class_names, options["n_bins"], 0)["overall"])
    result["options"], result["version"] = dict(options), METRICS_VERSION
    return result
