"""Metrics from predictions: numbers in, numbers out (formatting lives in ``report``).

Also the one place that turns a model (Keras or LiteRT) into class probabilities for a split.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support

from scipy.special import softmax

from ctdistill.quantize import LiteRTModel


@dataclasses.dataclass
class Predictions:
    """Class probabilities of one model on one split, with the true labels."""

    y_true: np.ndarray
    proba: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


def predict_keras(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of a logits-output Keras model (one ``predict`` call per split)."""
    return softmax(np.asarray(model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0)), axis=1)


def predict_tflite(path, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of a ``.tflite`` model, batched (not one image per invoke)."""
    return LiteRTModel(path).predict_proba(x, batch_size)


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
