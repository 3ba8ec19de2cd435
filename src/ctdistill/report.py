"""Presentation: tables and files in the seed's names, and the run report. Computes nothing, only formats
numbers (``assess`` computes them, ``plots`` draws them, ``page`` lays out report.html / report.md).

Every writer goes through ``runfolder.atomic_path`` so a file is either complete or absent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ctdistill import page, plots
from ctdistill.assess import assess_run
from ctdistill.card import write_cards
from ctdistill.data.audit import write_audit  # noqa: F401  (re-exported: the CLI and the pipeline write audits)
from ctdistill.runfolder import atomic_path, write_json

log = logging.getLogger("ctdistill")

# Test metrics twice: on the official test split, and (*_dedup) on the test images that have no exact or
# near copy in train or valid (NaN when the data was not audited, e.g. the synthetic phantoms).
SUMMARY_COLUMNS = ["model", "kind", "teacher", "mode", "accuracy", "precision", "recall", "f1", "accuracy_dedup",
                   "precision_dedup", "recall_dedup", "f1_dedup", "n_test", "n_test_dedup", "size_mb", "params",
                   "valid_accuracy", "file"]
QUANT_COLUMNS = ["teacher", "mode", "accuracy", "precision", "recall", "teacher_mb", "student_mb", "quantized_mb",
                 "accuracy_dedup", "precision_dedup", "recall_dedup"]


def write_csv(frame: pd.DataFrame, path: Path, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)
    return path


def classification_report_frame(metrics: dict) -> pd.DataFrame:
    """sklearn's report dict as the seed's table: one row per class plus accuracy and averages."""
    report = dict(metrics["report"])
    accuracy = report.pop("accuracy", metrics["accuracy"])
    frame = pd.DataFrame(report).T
    frame.loc["accuracy"] = [np.nan, np.nan, accuracy, frame["support"].iloc[: -2].sum()]
    return frame.rename_axis("class")


def confusion_frame(metrics: dict, class_names: list[str]) -> pd.DataFrame:
    """Counts, rows = true class, columns = predicted class, both named."""
    return pd.DataFrame(metrics["confusion"], index=pd.Index(class_names, name="true"),
                        columns=pd.Index(class_names, name="predicted"))


def predictions_frame(y_true: np.ndarray, proba: np.ndarray, class_names: list[str],
                      files: list[str] | None = None) -> pd.DataFrame:
    """One row per image: (file,) true label, predicted label, one probability column per class."""
    names = np.asarray(class_names)
    frame = pd.DataFrame({"true_label": names[y_true], "predicted_label": names[proba.argmax(axis=1)]})
    for i, name in enumerate(class_names):
        frame[f"prob_{name}"] = proba[:, i]
    if files is not None:
        frame.insert(0, "file", files)
    return frame


def summary_text(summary: pd.DataFrame) -> str:
    """The short end-of-run table printed on the terminal."""
    shown = summary[["model", "accuracy", "accuracy_dedup", "f1", "size_mb", "params"]].copy()
    for column in ("accuracy", "accuracy_dedup"):
        shown[column] = (100 * shown[column]).map(lambda v: "-" if pd.isna(v) else f"{v:.1f}%")
    shown["f1"] = shown["f1"].map("{:.3f}".format)
    shown["size_mb"] = shown["size_mb"].map("{:.3f}".format)
    return shown.to_string(index=False)


def audit_text(summary: dict) -> str:
    """The terminal summary of a data audit."""
    lines = [summary["class_text"]] if summary.get("class_text") else []
    lines += [f"{summary['n_files']} files; {summary['n_exact_groups']} groups of identical pixels "
             f"({summary['n_redundant_exact_copies']} redundant copies); {summary['n_near_groups']} groups of "
             f"near copies (phash distance <= {summary['threshold']})"]
    cross = summary["cross_split_files"]
    lines.append(f"LEAKAGE: {len(cross)} valid/test files have a copy in an earlier split" if cross
                 else "no valid/test file has a copy in an earlier split")
    for key, counts in summary["duplicates_by_split_and_class"].items():
        lines.append(f"  {key}: {counts['files']} files in {counts['distinct']} copy groups, "
                     f"{counts['cross_split']} with a copy in an earlier split")
    for conflict in summary["label_conflict_groups"]:
        lines.append(f"LABEL CONFLICT: {' vs '.join(conflict['labels'])}: " + ", ".join(conflict["files"]))
    frame = summary.get("framing") or {}
    if frame:
        lines.append("framing: the body fills a median " + ", ".join(
            f"{100 * v:.0f}% ({s})" for s, v in frame["median_body_share"].items()) + " of the image")
        for split, diff in frame["splits_framed_unlike_train"].items():
            lines.append(f"FRAMING SHIFT: {split} images are framed unlike train (the body's median share differs by "
                         f"{100 * diff:+.0f} points); --crop body removes the difference")
        if frame["no_body_found"]:
            lines.append(f"no body found in {len(frame['no_body_found'])} image(s) (kept whole by --crop body)")
    for risk in summary["shortcut_risks"]:
        if risk["flags"]:
            lines.append(f"SHORTCUT RISK: class {risk['label']} differs in {', '.join(risk['flags'])} "
                         f"(median {risk['median_width']:g}x{risk['median_height']:g} px, "
                         f"{risk['area_ratio_vs_rest']:g}x the other classes' pixel count)")
    return "\n".join(lines)


REPORT_TABLES = ("metrics", "per_class", "quantization_impact", "distillation_gain", "seeds")


def build_report(run_dir: Path, out: Path | None = None, **options) -> list[Path]:
    """Assess a finished run from its saved predictions and write the report files.

    Args:
        run_dir: the run folder.
        out: where to write (default: the run folder itself).
        **options: ``n_bins``, ``n_resamples``, ``ci_method`` (see ``assess.assess_run``).

    Returns:
        The files written: ``metrics.csv``, ``per_class.csv``, ``quantization_impact.csv``,
        ``distillation_gain.csv``, the plots under ``Plots/``, ``report.html`` and ``report.md``.
    """
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir
    tables = assess_run(run_dir, **options)
    impact = tables["quantization_impact"]
    for model in impact.loc[impact["collapsed"], "model"] if len(impact) else []:
        log.warning("%s predicts one class for every test image: a collapsed model, not a result", model)
    written = [write_csv(tables[name], out / f"{name}.csv") for name in REPORT_TABLES if len(tables[name])]
    figures = report_figures(tables, out / "Plots", run_dir / "bench.csv")
    written += figures.values()
    written += page.write_pages(tables, figures, run_dir, out)
    if out == run_dir:  # the model files are here: give each its card
        written += write_cards(run_dir)
    return written


def report_figures(tables: dict, folder: Path, bench_file: Path) -> dict[str, Path]:
    """The report's figures: accuracy vs size (and vs latency, when ``bench_file`` exists: written by
    ``ctdistill bench RUN_DIR``), then per teacher group ROC, reliability and confusion."""
    metrics, curves, names = tables["metrics"], tables["curves"], tables["class_names"]
    figures = {"Accuracy against model size": plots.plot_accuracy_vs_size(metrics, folder / "accuracy_vs_size.png")}
    if bench_file.is_file():  # written by `ctdistill bench RUN_DIR`; its rows name files, the report models
        bench, summary = pd.read_csv(bench_file), tables["summary"]
        bench = bench[bench["format"] != "keras float32 predict"].copy()  # one point per model: its lean call
        if "file" in bench and "file" in summary:
            bench["model"] = bench["file"].map(dict(zip(summary["file"], summary["model"]))).fillna(bench["model"])
        figures["Accuracy against batch-1 latency"] = plots.plot_accuracy_vs_latency(
            metrics, bench, folder / "accuracy_vs_latency.png")
    scratch = list(metrics.loc[metrics["kind"] == "scratch", "model"])
    for teacher in [t for t in metrics["teacher"].dropna().unique() if t]:
        group = list(metrics.loc[metrics["teacher"] == teacher, "model"]) + scratch
        figures[f"{teacher}: ROC curves"] = plots.plot_roc({m: curves[m]["roc"] for m in group}, names,
                                                           f"{teacher} teacher, its students and the scratch student",
                                                           folder / f"{teacher}_roc.png")
        figures[f"{teacher}: reliability"] = plots.plot_reliability(
            {m: curves[m]["calibration"] for m in group}, f"{teacher}: calibration on the test split",
            folder / f"{teacher}_reliability.png")
        student = f"{teacher}_student"
        if student in curves:
            figures[f"{teacher}: distilled student confusion"] = plots.plot_confusion_pair(
                curves[student]["confusion"], names, f"{student}, test split", folder / f"{student}_confusion.png")
    for model in scratch:
        figures[f"{model}: confusion"] = plots.plot_confusion_pair(curves[model]["confusion"], names,
                                                                   f"{model}, test split", folder / f"{model}_confusion.png")
    return figures
