"""Recording a trained model: save it (bare, atomically), predict valid and test once, save the
predictions and return its summary row."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import pandas as pd

from ctdistill import report
from ctdistill.data import Dataset
from ctdistill.evaluate import Predictions, classification_metrics, predict_keras, predict_tflite
from ctdistill.runfolder import atomic_path, write_json

log = logging.getLogger("ctdistill")
EVAL_SPLITS = ("valid", "test")


def record(run_dir: Path, data: Dataset, model_id: str, kind: str, teacher: str, mode: str, model,
           file: Path, params: int | None = None, folder: Path | None = None) -> dict:
    """Predict valid and test once, save the predictions, return the model's summary row (test split).

    Args:
        run_dir: the run folder.
        data: the dataset (valid and test are predicted).
        model_id: file stem of ``predictions/<model_id>.csv`` and the summary's ``model``.
        kind, teacher, mode: the summary row's labels.
        model: a Keras model, or the path of a ``.tflite`` file.
        file: the saved model file (its size is reported).
        params: parameter count (for ``.tflite`` models, that of their Keras model).
        folder: where the predictions go (default ``run_dir / "predictions"``).
    """
    predict = predict_tflite if isinstance(model, Path) else predict_keras
    frames = []
    for split in EVAL_SPLITS:
        part = data.split(split)
        proba = predict(model, part.x)
        frame = report.predictions_frame(part.y, proba, data.class_names, part.paths).assign(split=split)
        if split == "test" and data.dedup_test is not None:
            frame["dedup"] = data.dedup_test  # in the de-duplicated test view (no copy in train or valid)
        frames.append(frame)
        if split == "valid":
            valid_accuracy = float((proba.argmax(axis=1) == part.y).mean())
        if split == "test":
            metrics = classification_metrics(Predictions(part.y, proba), data.class_names)
            metrics["dedup"] = dedup_metrics(part.y, proba, data)
    folder = folder or run_dir / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    report.write_csv(pd.concat(frames, ignore_index=True), folder / f"{model_id}.csv")
    write_json(folder / f"{model_id}_metrics.json", metrics)
    log.info("[%s] test accuracy %.4f (de-duplicated %.4f)  macro-F1 %.4f  (%.3f MB)", model_id, metrics["accuracy"],
             metrics["dedup"]["accuracy"], metrics["f1"], file.stat().st_size / 1e6)
    return {"model": model_id, "kind": kind, "teacher": teacher, "mode": mode,
            **{k: metrics[k] for k in ("accuracy", "precision", "recall", "f1")},
            **{f"{k}_dedup": metrics["dedup"][k] for k in ("accuracy", "precision", "recall", "f1")},
            "n_test": len(data.test), "n_test_dedup": metrics["dedup"]["n"],
            "size_mb": file.stat().st_size / 1e6, "params": params if params is not None else model.count_params(),
            "valid_accuracy": valid_accuracy, "file": file.relative_to(run_dir).as_posix()
            if file.is_relative_to(run_dir) else ""}


def dedup_metrics(y_true, proba, data: Dataset) -> dict:
    """Test metrics on the de-duplicated view; NaN when the data was not audited."""
    if data.dedup_test is None:
        return {"accuracy": float("nan"), "precision": float("nan"), "recall": float("nan"), "f1": float("nan"),
                "n": None}
    mask = data.dedup_test
    view = classification_metrics(Predictions(y_true[mask], proba[mask]), data.class_names)
    return {**{k: view[k] for k in ("accuracy", "precision", "recall", "f1")}, "n": int(mask.sum())}


def save_model(model: keras.Model, path: Path) -> Path:
    """Save atomically, without optimizer state, so the file size is the deployable model's size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bare = keras.Model(model.inputs, model.outputs, name=model.name)  # same layers, never compiled
    with atomic_path(path) as tmp:
        bare.save(tmp)
    return path


