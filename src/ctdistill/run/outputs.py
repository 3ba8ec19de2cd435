"""Recording a trained model: save it (bare, atomically), predict valid and test once, save the
predictions with the model's metrics (computed here, once, from the saved predictions) and return
its summary row."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ctdistill.assess.metrics import model_metrics
from ctdistill.data import Dataset
from ctdistill.models.inference import predict_keras, predict_tflite
from ctdistill.run.folder import (
    atomic_path,
    predictions_dir,
    predictions_frame,
    split_arrays,
    write_metrics,
    write_predictions,
)

log = logging.getLogger("ctdistill")
EVAL_SPLITS = ("valid", "test")
ROW_METRICS = ("accuracy", "precision", "recall", "f1")  # the summary row's, on test and its de-duplicated view


def record(run_dir: Path, data: Dataset, scoring: dict, model_id: str, kind: str, teacher: str, mode: str, model,
           file: Path, params: int | None = None, folder: Path | None = None) -> dict:
    """Predict valid and test once, save the predictions and metrics, return the model's summary row.

    The metrics are computed from the predictions as saved (read back from the CSV), so ``ctdistill
    report`` recomputing them from the run folder later gets the same numbers.

    Args:
        run_dir: the run folder.
        data: the dataset (valid and test are predicted).
        scoring: ``metrics.scoring_options`` (bins, bootstrap resamples, interval method, seed).
        model_id: file stem of ``predictions/<model_id>.csv`` and the summary's ``model``.
        kind, teacher, mode: the summary row's labels.
        model: a Keras model, or the path of a ``.tflite`` file.
        file: the saved model file (its size is reported).
        params: parameter count (for ``.tflite`` models, that of their Keras model).
        folder: where the predictions go (default ``predictions/``).
    """
    predict = predict_tflite if isinstance(model, Path) else predict_keras
    frames = []
    for split in EVAL_SPLITS:
        part = data.split(split)
        frame = predictions_frame(part.y, predict(model, part.x), data.class_names, part.paths).assign(split=split)
        if split == "test" and data.dedup_test is not None:
            frame["dedup"] = data.dedup_test  # in the de-duplicated test view (no copy in train or valid)
        frames.append(frame)
    folder = folder or predictions_dir(run_dir)
    saved = write_predictions(folder, model_id, pd.concat(frames, ignore_index=True))
    valid_y, valid_proba, _ = split_arrays(saved, "valid", data.class_names)
    test_y, test_proba, dedup_mask = split_arrays(saved, "test", data.class_names)
    metrics = model_metrics(test_y, test_proba, data.class_names, dedup_mask, scoring)
    metrics["valid_accuracy"] = float(np.mean(valid_proba.argmax(axis=1) == valid_y))
    write_metrics(folder, model_id, metrics)
    overall, dedup = metrics["overall"], metrics["dedup"] or {}
    log.info("[%s] test accuracy %.4f (de-duplicated %.4f)  macro-F1 %.4f  (%.3f MB)", model_id, overall["accuracy"],
             dedup.get("accuracy", float("nan")), overall["f1"], file.stat().st_size / 1e6)
    return {"model": model_id, "kind": kind, "teacher": teacher, "mode": mode,
            **{k: overall[k] for k in ROW_METRICS},
            **{f"{k}_dedup": dedup.get(k, float("nan")) for k in ROW_METRICS},
            "n_test": len(data.test), "n_test_dedup": dedup.get("n"),
            "size_mb": file.stat().st_size / 1e6, "params": params if params is not None else model.count_params(),
            "valid_accuracy": metrics["valid_accuracy"], "file": file.relative_to(run_dir).as_posix()
            if file.is_relative_to(run_dir) else ""}


def save_model(model: keras.Model, path: Path) -> Path:
    """Save atomically, without optimizer state, so the file size is the deployable model's size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bare = keras.Model(model.inputs, model.outputs, name=model.name)  # same layers, never compiled
    with atomic_path(path) as tmp:
        bare.save(tmp)
    return path
