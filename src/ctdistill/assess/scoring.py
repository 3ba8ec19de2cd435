"""The run's assessment: every model's clinical metrics and the paired comparisons, from saved predictions.

Reads only what a run folder keeps (``summary.csv``, ``manifest.json``, ``config.json``,
``predictions/<model>.csv`` and the metrics stored beside them), so ``ctdistill report`` gives the
same numbers on a finished run, on another machine, without the models. Numbers only; ``report``
formats them.

Example:
    >>> tables = assess_run(Path("runs/ct1"))                          # doctest: +SKIP
    >>> tables["metrics"][["model", "accuracy", "accuracy_lo", "accuracy_hi"]]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from ctdistill.assess.compare import paired_gain, quantization_impact
from ctdistill.assess.metrics import METRICS_VERSION, model_metrics, scoring_options
from ctdistill.config import Config
from ctdistill.core.stats import wilson
from ctdistill.data.audit import STORED_AUDIT
from ctdistill.data.neighbours import cross_label
from ctdistill.run import folder as runfolder
from ctdistill.run.folder import (
    CONFIG,
    predictions_dir,
    read_json,
    read_metrics,
    read_predictions,
    read_summary,
    repeated_seeds,
    split_arrays,
)


@dataclasses.dataclass
class ModelPredictions:
    """One model's saved test predictions and its metrics (stored by ``run.outputs``, or recomputed)."""

    y: np.ndarray
    proba: np.ndarray
    dedup: np.ndarray | None  # the de-duplicated test view (None when the run was not audited)
    metrics: dict
    files: list[str]  # the test images' ids, in the order of ``y``
    n_valid: int  # validation images the model was selected on


def load_model_scores(run_dir: Path, model: str, class_names: list[str], options: dict,
                      seed: int | None = None) -> ModelPredictions:
    """A model's test predictions and metrics: the metrics stored with them when they were computed
    with ``options``, else computed now from the saved predictions (the same function either way)."""
    folder = predictions_dir(run_dir, seed)
    frame = read_predictions(folder, model)
    y, proba, dedup = split_arrays(frame, "test", class_names)
    stored = read_metrics(folder, model)
    if stored is None or stored.get("options") != options or stored.get("version") != METRICS_VERSION:
        # older runs, or `report --resamples` etc.
        stored = model_metrics(y, proba, class_names, dedup, options)
    files = frame.loc[frame["split"] == "test", "file"].tolist() if "file" in frame else []  # phantoms: no files
    return ModelPredictions(y, proba, dedup, stored, files, int((frame["split"] == "valid").sum()))


def assess_run(run_dir: Path, n_bins: int | None = None, n_resamples: int | None = None,
               ci_method: str | None = None) -> dict:
    """All tables of the report for a run folder.

    Args:
        run_dir: a finished run.
        n_bins, n_resamples, ci_method: override the run's ``ece_bins``, ``bootstrap_resamples`` and
            ``ci_method`` (its ``seed`` seeds the bootstrap).

    Returns:
        ``{"metrics", "per_class", "quantization_impact", "distillation_gain"}`` DataFrames, plus
        ``"seeds"`` (mean ± std across ``--seeds``; empty without), ``"leakage_curve"`` (accuracy on
        the test images farther than d bits from every training image; empty without an audit),
        ``"group_leakage"`` (accuracy on the test images whose patient or scan is, or is not, in
        train/valid; empty without ``--group-by`` or DICOM ids),
        ``"valid_vs_test"``, ``"cross_label"`` (``data.neighbours.cross_label``; None without an
        audit), ``"audit"`` (the run's ``audit.json``, or None), ``"curves"`` (per model: ROC points
        per class and calibration bins, for the plots),
        ``"class_names"``, ``"summary"`` (the run's summary.csv) and ``"config"``.
    """
    run_dir = Path(run_dir)
    summary, config, class_names = read_summary(run_dir), read_json(run_dir, CONFIG), runfolder.class_names(run_dir)
    options = scoring_options({**Config().to_dict(), **config})
    options.update({k: v for k, v in (("n_bins", n_bins), ("n_resamples", n_resamples), ("ci_method", ci_method))
                    if v is not None})
    preds = {m: load_model_scores(run_dir, m, class_names, options) for m in summary["model"]}
    neighbours_file = run_dir / runfolder.NEIGHBOURS
    neighbours = pd.read_csv(neighbours_file) if neighbours_file.is_file() else None
    metric_rows, class_rows, curves = [], [], {}
    for row in summary.itertuples():
        p = preds[row.model]
        result = p.metrics
        dedup = ({} if result["dedup"] is None else
                 {f"{k}_dedup": result["dedup"][k] for k in ("accuracy", "f1", "auc", "n")})
        metric_rows.append({"model": row.model, "kind": row.kind, "teacher": row.teacher, "mode": row.mode,
                            "size_mb": row.size_mb, "params": row.params, **result["overall"], **dedup})
        class_rows += [{"model": row.model, **c} for c in result["per_class"]]
        curves[row.model] = {"calibration": result["calibration"], "confusion": result["confusion"],
                             "roc": [roc_points(p.y == c, p.proba[:, c]) for c in range(len(class_names))],
                             "auc": [c["auc"] for c in result["per_class"]]}
    return {"metrics": pd.DataFrame(metric_rows), "per_class": pd.DataFrame(class_rows),
            "quantization_impact": _quantization_table(summary, preds, class_names),
            "distillation_gain": _gain_table(summary, preds, class_names, options),
            "seeds": _seed_table(run_dir, preds, class_names, options),
            "leakage_curve": leakage_curve(neighbours, preds),
            "group_leakage": group_leakage(neighbours, preds),
            "valid_vs_test": valid_vs_test(summary, pd.DataFrame(metric_rows), next(iter(preds.values())).n_valid
                                           if preds else 0),
            "cross_label": None if neighbours is None else cross_label(neighbours),
            "audit": read_json(run_dir, STORED_AUDIT[1], None),
            "curves": curves, "class_names": class_names, "summary": summary, "config": config}


def _seed_table(run_dir: Path, preds: dict, class_names: list[str], options: dict) -> pd.DataFrame:
    """Per model: test accuracy and macro-F1 for every seed (``--seeds``), then mean and std."""
    seeds = repeated_seeds(run_dir)
    if not seeds:
        return pd.DataFrame()
    rows, models = [], [f.stem for f in sorted(predictions_dir(run_dir, seeds[0]).glob("*.csv"))]
    for seed in [None] + seeds:
        for model in models:
            scores = preds[model] if seed is None else load_model_scores(run_dir, model, class_names, options, seed)
            m = scores.metrics
            rows.append({"model": model, "seed": options["seed"] if seed is None else seed,
                         "accuracy": m["overall"]["accuracy"], "f1": m["overall"]["f1"],
                         "accuracy_dedup": np.nan if m["dedup"] is None else m["dedup"]["accuracy"]})
    long = pd.DataFrame(rows)
    stats = long.groupby("model", sort=False).agg(
        seeds=("seed", "count"), accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        f1_mean=("f1", "mean"), f1_std=("f1", "std"), accuracy_dedup_mean=("accuracy_dedup", "mean"),
        accuracy_dedup_std=("accuracy_dedup", "std"))
    per_seed = long.pivot(index="model", columns="seed", values="accuracy").add_prefix("accuracy_seed")
    return stats.join(per_seed).reset_index()


LEAKAGE_MEASURE = "phash"  # neighbours.csv's distance the curve is drawn along (64-bit perceptual hash)
LEAKAGE_MIN_IMAGES = 20  # the curve stops where fewer test images remain (or half the test split, if smaller)


def leakage_curve(neighbours: pd.DataFrame | None, preds: dict) -> pd.DataFrame:
    """Every model's test accuracy on the test images whose nearest training or validation image
    (``neighbours.csv``) is farther than ``d`` bits, for every distance ``d`` that occurs (``d = -1``:
    the whole test split) while at least :data:`LEAKAGE_MIN_IMAGES` images remain; empty without a
    neighbours table (the synthetic phantoms are not audited).

    Returns:
        One row per ``d``: ``d``, ``n_images`` and one accuracy column per model of ``preds``.
    """
    if neighbours is None or not preds:
        return pd.DataFrame()
    test = neighbours[neighbours["split"] == "test"].set_index("path")[f"{LEAKAGE_MEASURE}_distance"]
    distance = test.loc[next(iter(preds.values())).files].to_numpy()
    rows, enough = [], min(LEAKAGE_MIN_IMAGES, len(distance) // 2)  # fewer images: accuracy is noise
    for d in [-1, *sorted(set(distance.tolist()))]:
        keep = distance > d
        if keep.sum() < enough or not keep.any():
            break
        rows.append({"d": d, "n_images": int(keep.sum()), **_accuracies(preds, keep)})
    return pd.DataFrame(rows)


SHARED_ROW = "patient/scan also in train or valid"  # group_leakage's row of the test images that share one


def group_leakage(neighbours: pd.DataFrame | None, preds: dict) -> pd.DataFrame:
    """Every model's test accuracy on the test images whose patient or scan has other images in train or
    valid (``neighbours.csv``'s ``shares_group``), and on the rest: the leakage curve's point for
    adjacent slices, which no image distance sees. Empty without patient or scan groups.

    Returns:
        Up to two rows: ``test images``, ``n_images`` and one accuracy column per model of ``preds``.
    """
    if neighbours is None or "shares_group" not in neighbours or not preds:
        return pd.DataFrame()
    test = neighbours[neighbours["split"] == "test"].set_index("path")["shares_group"]
    shares = test.loc[next(iter(preds.values())).files].to_numpy().astype(bool)
    rows = []
    for name, keep in ((SHARED_ROW, shares), ("no patient/scan shared", ~shares)):
        if keep.any():
            rows.append({"test images": name, "n_images": int(keep.sum()), **_accuracies(preds, keep)})
    return pd.DataFrame(rows)


def _accuracies(preds: dict, keep: np.ndarray) -> dict[str, float]:
    """Every model's test accuracy on the test images ``keep`` selects."""
    return {m: float(np.mean(p.y[keep] == p.proba[keep].argmax(axis=1))) for m, p in preds.items()}


def valid_vs_test(summary: pd.DataFrame, metrics: pd.DataFrame, n_valid: int) -> pd.DataFrame:
    """Per model: validation accuracy on ``n_valid`` images (Wilson 95% interval) against test accuracy
    (bootstrap interval); ``beyond_intervals`` where validation's interval lies wholly above test's (a
    shift, or selection on a small validation split)."""
    if summary.empty or not n_valid:
        return pd.DataFrame()
    if "accuracy_hi" not in metrics:  # no bootstrap (bootstrap_resamples 0): no test interval to compare
        metrics = metrics.assign(accuracy_lo=np.nan, accuracy_hi=np.nan)
    rows = []
    for row, m in zip(summary.itertuples(), metrics.itertuples(), strict=True):
        low, high = wilson(round(row.valid_accuracy * n_valid), n_valid)
        rows.append({"model": row.model, "valid_accuracy": row.valid_accuracy, "valid_lo": low, "valid_hi": high,
                     "n_valid": n_valid, "test_accuracy": m.accuracy, "test_lo": m.accuracy_lo,
                     "test_hi": m.accuracy_hi, "beyond_intervals": bool(low > m.accuracy_hi)})
    return pd.DataFrame(rows)


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
