"""Presentation: the run report and the files in the seed's names. Computes nothing, only formats
numbers (``scoring`` computes them from the run folder; ``tables`` formats, ``plots`` draws charts,
``pictures`` draws the data's images, ``page`` lays out report.html / report.md, ``card`` writes the
model cards).

Every writer goes through ``run.folder.atomic_path`` so a file is either complete or absent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ctdistill.assess.saliency import explain_deployed
from ctdistill.assess.scoring import assess_run
from ctdistill.assess.verdict import verdict
from ctdistill.data.audit import STORED_AUDIT
from ctdistill.report import page, pictures, plots
from ctdistill.report.card import write_cards
from ctdistill.report.tables import (
    audit_sentences,
    classification_report_frame,
    confusion_frame,
    saliency_sentence,
    verdict_text,
)
from ctdistill.run import folder as rf
from ctdistill.run.folder import write_csv, write_json

log = logging.getLogger("ctdistill")

REPORT_TABLES = ("metrics", "per_class", "quantization_impact", "distillation_gain", "seeds", "leakage_curve",
                 "group_leakage", "valid_vs_test")


def build_report(run_dir: Path, out: Path | None = None, **options) -> list[Path]:
    """Assess a finished run from its saved predictions and write the report files.

    Args:
        run_dir: the run folder.
        out: where to write (default: the run folder itself).
        **options: ``n_bins``, ``n_resamples``, ``ci_method`` (see ``scoring.assess_run``).

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
    figures = {**report_figures(tables, out / rf.PLOTS, run_dir / rf.BENCH),
               **training_curves(run_dir, tables["summary"], out / rf.PLOTS)}
    written += figures.values()
    found = verdict(tables, run_dir)
    written.append(write_json(out / rf.VERDICT, found))
    audit, crossed = tables["audit"], tables["cross_label"]
    pictured = conflict_pictures(audit, crossed, out / rf.PLOTS)
    seen = explain_deployed(run_dir, found["deploy"], tables["class_names"]) if found["deploy"] else None
    pictured |= saliency_pictures(seen, out / rf.PLOTS)
    stored = run_dir / STORED_AUDIT[0]
    sheet = crop_sheet(pd.read_csv(stored), out / rf.PLOTS / CROPS) if stored.is_file() else None
    if sheet is not None:
        pictured["The body crop on a sample of the data: green found, red kept whole (the audit's crops.png)"] = sheet
    figures |= pictured
    written += pictured.values()
    sentences = (audit_sentences(audit, crossed) if audit else []) + ([saliency_sentence(seen)] if seen else [])
    written += page.write_pages(tables, figures, run_dir, out, verdict_text(found), sentences,
                                (found.get("deploy") or {}).get("model"))
    if out == run_dir:  # the model files are here: their cards and the seed's per-student files beside them
        written += write_cards(run_dir, tables["metrics"])
        written += seed_student_files(run_dir, tables["summary"], tables["class_names"])
    return written


def conflict_pictures(audit: dict | None, crossed: pd.DataFrame | None, folder: Path) -> dict[str, Path]:
    """Label conflicts as image pairs: test images that repeat a training image of another class
    (``neighbours.csv``), and copies filed under two classes anywhere in the data (the audit's groups)."""
    figures = {}
    if crossed is not None and len(crossed):
        figures["Cross-label copies: test image (left) and the training image of another class it repeats"] = (
            pictures.plot_pairs([(r.path, r.nearest_thumb, f"{r.label} / {r.nearest_thumb.split('/')[-2]}")
                              for r in crossed.itertuples()], folder / "cross_label_copies.png"))
    groups = (audit or {}).get("label_conflict_groups") or []
    if groups:
        figures["Label conflicts in the data: the same picture filed under two classes"] = pictures.plot_pairs(
            [(g["files"][0], g["files"][1], " / ".join(g["labels"])) for g in groups if len(g["files"]) > 1],
            folder / "label_conflicts.png")
    return figures


CROPS = "crops.png"  # the audit's contact sheet of the body crop (ctdistill data audit, and the run's Plots/)


def crop_sheet(table: pd.DataFrame, path: Path, per_class: int = 3, missed: int = 4, seed: int = 0) -> Path | None:
    """Draw ``per_class`` images of every class (drawn at random, ``seed``) and up to ``missed`` images
    where no body was found, with their crop boxes (:func:`pictures.plot_crops`), so the crop can be checked
    by eye on any data; None when the audit table has no boxes (a numpy layout, an older audit)."""
    if table is None or "body_box" not in table or table.empty or not table["path"].map(
            lambda p: Path(p).is_file()).any():
        return None
    fallback = table["body_fallback"].map(lambda v: v if isinstance(v, str) else "")
    chosen = [g.sample(min(per_class, len(g)), random_state=seed) for _, g in table[fallback == ""].groupby("label")]
    chosen.append(table[fallback != ""].head(missed))
    sample = pd.concat(chosen)
    short = lambda text, n: text if len(text) <= n else text[:n - 1] + "…"  # noqa: E731
    return pictures.plot_crops([(r.path, f"{short(r.label, 28)}\n{short(Path(r.path).name, 28)}", r.body_box,
                                 fallback[i]) for i, r in zip(sample.index, sample.itertuples(), strict=True)], path)


def saliency_pictures(seen: dict | None, folder: Path) -> dict[str, Path]:
    """The deployed model's saliency: its most confident right and wrong test image of each class with
    their occlusion maps, and each class's mean map (``assess.saliency``)."""
    if not seen:
        return {}
    figures = {}
    if seen["examples"]:
        figures["Where the deployed model looks: per class its most confident right and wrong test image, and "
                "the occlusion map of the answer it gave"] = pictures.plot_saliency(seen["examples"],
                                                                                 folder / "saliency_examples.png")
    if seen["mean"]:
        figures["Where the deployed model looks on average, per class (the dashed box leaves out the border band)"] = (
            pictures.plot_mean_saliency(seen["mean"], folder / "saliency_mean.png"))
    return figures


def training_curves(run_dir: Path, summary: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Loss and accuracy per epoch of every trained model, from the history CSVs the run kept."""
    histories = [(rf.SCRATCH_HISTORY, "student trained from scratch", "scratch_curves.png")]
    for name in summary.loc[summary["kind"] == "teacher", "teacher"].dropna():
        if name != "ensemble":  # built from the trained teachers, never trained itself
            histories.append((rf.teacher_history(name), f"{name} teacher", f"{name}_teacher_curves.png"))
    for name in summary.loc[summary["kind"] == "distilled", "teacher"].dropna():
        histories.append((rf.distill_history(name), f"{name} distilled student", f"{name}_distiller_curves.png"))
    return {f"training curves: {title}": plots.plot_history(pd.read_csv(run_dir / csv), title, folder / png)
            for csv, title, png in histories if (run_dir / csv).is_file()}


def seed_student_files(run_dir: Path, summary: pd.DataFrame, class_names: list[str]) -> list[Path]:
    """The seed's per-teacher files of each distilled student: classification report, confusion matrix
    (CSV and picture) and test predictions, from its saved predictions and metrics."""
    written = []
    for name in summary.loc[summary["kind"] == "distilled", "teacher"]:
        folder = rf.predictions_dir(run_dir)
        metrics = rf.read_metrics(folder, f"{name}_student")
        frame = rf.read_predictions(folder, f"{name}_student")
        confusion = confusion_frame(metrics, class_names)
        written += [
            write_csv(classification_report_frame(metrics), run_dir / f"{name}_student_classification_report.csv",
                      index=True),
            write_csv(confusion, run_dir / f"{name}_student_Confusion.csv", index=True),
            plots.plot_confusion(confusion, f"{name}-distilled student, test split",
                                 run_dir / f"{name}_student_confusion_matrix.png"),
            write_csv(frame[frame["split"] == "test"].drop(columns="split"), run_dir / f"{name}_predictions.csv")]
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
            model_of = dict(zip(summary["file"], summary["model"], strict=True))
            bench["model"] = bench["file"].map(model_of).fillna(bench["model"])
        figures["Accuracy against batch-1 latency"] = plots.plot_accuracy_vs_latency(
            metrics, bench, folder / "accuracy_vs_latency.png")
    if len(tables["per_class"]):
        figures[page.SECTION_FIGURES["per_class"]] = plots.plot_per_class(
            tables["per_class"], dict(zip(metrics["model"], metrics["kind"], strict=True)), folder / "per_class.png")
    impact = tables["quantization_impact"]
    if len(impact):
        figures[page.SECTION_FIGURES["quantization_impact"]] = plots.plot_quantization(
            impact.merge(metrics[["model", "size_mb"]], on="model"), folder / "quantization.png")
    if len(tables["leakage_curve"]):
        figures["Accuracy on test images farther from every training image"] = plots.plot_leakage_curve(
            tables["leakage_curve"], metrics, folder / "leakage_curve.png")
    scratch = list(metrics.loc[metrics["kind"] == "scratch", "model"])
    for teacher in [t for t in metrics["teacher"].dropna().unique() if t]:
        group = list(metrics.loc[metrics["teacher"] == teacher, "model"]) + scratch
        figures[f"{teacher}: ROC curves"] = plots.plot_roc(
            {m: curves[m]["roc"] for m in group}, names, f"{teacher} teacher, its students and the scratch student",
            folder / f"{teacher}_roc.png", {m: curves[m]["auc"] for m in group})
        figures[f"{teacher}: reliability"] = plots.plot_reliability(
            {m: curves[m]["calibration"] for m in group}, f"{teacher}: calibration on the test split",
            folder / f"{teacher}_reliability.png")
        student = f"{teacher}_student"
        if student in curves:
            figures[f"{teacher}: distilled student confusion"] = plots.plot_confusion_pair(
                curves[student]["confusion"], names, f"{student}, test split", folder / f"{student}_confusion.png")
    for model in scratch:
        figures[f"{model}: confusion"] = plots.plot_confusion_pair(
            curves[model]["confusion"], names, f"{model}, test split", folder / f"{model}_confusion.png")
    return figures
