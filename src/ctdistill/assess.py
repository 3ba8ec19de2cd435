"""The run's assessment: every model's clinical metrics and the paired comparisons, from saved predictions.

Reads only what a run folder keeps (``summary.csv``, ``manifest.json``, ``config.json``,
``predictions/<model>.csv``), so ``ctdistill report`` gives the same numbers on a finished run,
on another machine, without the models. Numbers only; ``report`` and ``page`` format them.

Example:
    >>> tables = assess_run(Path("runs/ct1"))                          # doctest: +SKIP
    >>> tables["metrics"][["model", "accuracy", "accuracy_lo", "accuracy_hi"]]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from ctdistill.compare import paired_gain, quantization_impact
from ctdistill.errors import RunFolderError
from ctdistill.evaluate import clinical_metrics


@dataclasses.dataclass
class ModelPredictions:
    """One model's saved test predictions."""

    y: np.ndarray
    proba: np.ndarray
    dedup: np.ndarray | None  # the de-duplicated test view (None when the run was not audited)


def load_predictions(run_dir: Path, model: str, class_names: list[str], folder: Path | None = None) -> ModelPredictions:
    """Test-split labels and probabilities of ``model`` from ``predictions/<model>.csv`` (or ``folder``)."""
    path = (folder or run_dir / "predictions") / f"{model}.csv"
    if not path.is_file():
        raise RunFolderError(f"{path}: missing; is {run_dir} a finished ctdistill run?")
    frame = pd.read_csv(path)
    test = frame[frame["split"] == "test"]
    index = {name: i for i, name in enumerate(class_names)}
    dedup = test["dedup"].astype(bool).to_numpy() if "dedup" in test and test["dedup"].notna().all() else None
    return ModelPredictions(test["true_label"].map(index).to_numpy(),
                            test[[f"prob_{name}" for name in class_names]].to_numpy(dtype=float), dedup)


def assess_run(run_dir: Path, n_bins: int | None = None, n_resamples: int | None = None,
               ci_method: str | None = None) -> dict:
    """All tables of the report for a run folder.

    Args:
        run_dir: a finished run.
        n_bins, n_resamples, ci_method: override the run's ``ece_bins``, ``bootstrap_resamples`` and
            ``ci_method`` (its ``seed`` seeds the bootstrap).

    Returns:
        ``{"metrics", "per_class", "quantization_impact", "distillation_gain"}`` DataFrames, plus
        ``"seeds"`` (mean ± std across ``--seeds``; empty without), ``"curves"`` (per model: ROC points per class and calibration bins, for the plots),
        ``"class_names"``, ``"summary"`` (the run's summary.csv) and ``"config"``.
    """
    run_dir = Path(run_dir)
    try:
        summary = pd.read_csv(run_dir / "summary.csv")
        config = json.loads((run_dir / "config.json").read_text())
        class_names = json.loads((run_dir / "manifest.json").read_text())["dataset"]["class_names"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{run_dir}: not a finished ctdistill run ({exc})") from None
    options = {"n_bins": n_bins or config.get("ece_bins", 10),
               "n_resamples": config.get("bootstrap_resamples", 1000) if n_resamples is None else n_resamples,
               "ci_method": ci_method or config.get("ci_method", "percentile"), "seed": config.get("seed", 0)}
    preds = {m: load_predictions(run_dir, m, class_names) for m in summary["model"]}
    metric_rows, class_rows, curves = [], [], {}
    for row in summary.itertuples():
        p = preds[row.model]
        result = clinical_metrics(p.y, p.proba, class_names, **options)
        dedup = {}
        if p.dedup is not None:
            view = clinical_metrics(p.y[p.dedup], p.proba[p.dedup], class_names, options["n_bins"], 0)["overall"]
            dedup = {f"{k}_dedup": view[k] for k in ("accuracy", "f1", "auc", "n")}
        metric_rows.append({"model": row.model, "kind": row.kind, "teacher": row.teacher, "mode": row.mode,
                            "size_mb": row.size_mb, "params": row.params, **result["overall"], **dedup})
        class_rows += [{"model": row.model, **c} for c in result["per_class"]]
        curves[row.model] = {"calibration": result["calibration"], "confusion": result["confusion"],
                             "roc": [roc_points(p.y == c, p.proba[:, c]) for c in range(len(class_names))]}
    return {"metrics": pd.DataFrame(metric_rows), "per_class": pd.DataFrame(class_rows),
            "quantization_impact": _quantization_table(summary, preds, class_names),
            "distillation_gain": _gain_table(summary, preds, class_names, options),
            "seeds": _seed_table(run_dir, preds, class_names, options["seed"]),
            "curves": curves, "class_names": class_names, "summary": summary, "config": config}


def _seed_table(run_dir: Path, preds: dict, class_names: list[str], seed: int) -> pd.DataFrame:
    """Per model: test accuracy and macro-F1 for every seed (``--seeds``), then mean and std."""
    folders = sorted((run_dir / "predictions").glob("seed*"), key=lambda f: int(f.name[4:]))
    if not folders:
        return pd.DataFrame()
    rows, models = [], [f.stem for f in sorted(folders[0].glob("*.csv"))]
    for name, folder in [(seed, None)] + [(int(f.name[4:]), f) for f in folders]:
        for model in models:
            p = preds[model] if folder is None else load_predictions(run_dir, model, class_names, folder)
            view = clinical_metrics(p.y, p.proba, class_names, n_resamples=0)["overall"]
            dedup = float(np.mean(p.y[p.dedup] == p.proba[p.dedup].argmax(1))) if p.dedup is not None else np.nan
            rows.append({"model": model, "seed": name, "accuracy": view["accuracy"], "f1": view["f1"],
                         "accuracy_dedup": dedup})
    long = pd.DataFrame(rows)
    stats = long.groupby("model", sort=False).agg(
        seeds=("seed", "count"), accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        f1_mean=("f1", "mean"), f1_std=("f1", "std"), accuracy_dedup_mean=("accuracy_dedup", "mean"),
        accuracy_dedup_std=("accuracy_dedup", "std"))
    per_seed = long.pivot(index="model", columns="seed", values="accuracy").add_prefix("accuracy_seed")
    return stats.join(per_seed).reset_index()


def roc_points(positive: np.ndarray, score: np.ndarray) -> dict:
    if positive.all() or not positive.any():
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(positive, score)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _quantization_table(summary: pd.DataFrame, preds: dict, class_names: list[str]) -> pd.DataFrame:
    rows = []
    for row in summary[summary["kind"] == "quantized"].itertuples():
        float_model = f"{row.teacher}_student"
        p, f = preds[row.model], preds[float_model]
        rows.append({"model": row.model, "teacher": row.teacher, "mode": row.mode, "float_model": float_model,
                     **quantization_impact(p.y, f.proba, p.proba, class_names)})
    return pd.DataFrame(rows)


def _gain_table(summary: pd.DataFrame, preds: dict, class_names: list[str], options: dict) -> pd.DataFrame:
    rows = []
    scratch = summary.loc[summary["kind"] == "scratch", "model"]
    for row in summary[summary["kind"] == "distilled"].itertuples():
        for base in scratch:
            p, b = preds[row.model], preds[base]
            rows.append({"model": row.model, "teacher": row.teacher, "baseline": base,
                         **paired_gain(p.y, p.proba, b.proba, len(class_names), options["n_resamples"],
                                       options["ci_method"], options["seed"])})
    return pd.DataFrame(rows)
