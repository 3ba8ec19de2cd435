"""Presentation: tables, plots and files in the seed's names. Computes nothing, only formats numbers.

Every writer goes through ``runfolder.atomic_path`` so a file is either complete or absent.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ctdistill.runfolder import atomic_path, write_json  # noqa: E402

# Test metrics twice: on the official test split, and (*_dedup) on the test images that have no exact or
# near copy in train or valid (NaN when the data was not audited, e.g. the synthetic phantoms).
SUMMARY_COLUMNS = ["model", "kind", "teacher", "mode", "accuracy", "precision", "recall", "f1", "accuracy_dedup",
                   "precision_dedup", "recall_dedup", "f1_dedup", "n_test", "n_test_dedup", "size_mb", "params"]
QUANT_COLUMNS = ["teacher", "mode", "accuracy", "precision", "recall", "teacher_mb", "student_mb", "quantized_mb",
                 "accuracy_dedup", "precision_dedup", "recall_dedup"]


def write_csv(frame: pd.DataFrame, path: Path, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)
    return path


def save_figure(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
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


def plot_confusion(confusion: pd.DataFrame, title: str, path: Path) -> Path:
    """Confusion matrix heat map with class names and counts in every cell."""
    values = confusion.to_numpy()
    n = len(confusion)
    fig, ax = plt.subplots(figsize=(1.3 * n + 2.5, 1.1 * n + 2))
    im = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(n), confusion.columns, rotation=35, ha="right")
    ax.set_yticks(range(n), confusion.index)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(values[i, j]), ha="center", va="center",
                    color="white" if values[i, j] > values.max() / 2 else "black")
    fig.colorbar(im, ax=ax, label="images")
    return save_figure(fig, path)


def plot_history(history: pd.DataFrame, title: str, path: Path) -> Path:
    """Loss and accuracy per epoch, train and validation, with the restored epoch marked."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(history["epoch"], history[key], style, label=key)
        if "best" in history and history["best"].any():
            ax.axvline(history.loc[history["best"], "epoch"].iloc[-1], color="grey", lw=0.8, label="restored")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)


def summary_text(summary: pd.DataFrame) -> str:
    """The short end-of-run table printed on the terminal."""
    shown = summary[["model", "accuracy", "accuracy_dedup", "f1", "size_mb", "params"]].copy()
    for column in ("accuracy", "accuracy_dedup"):
        shown[column] = (100 * shown[column]).map(lambda v: "-" if pd.isna(v) else f"{v:.1f}%")
    shown["f1"] = shown["f1"].map("{:.3f}".format)
    shown["size_mb"] = shown["size_mb"].map("{:.3f}".format)
    return shown.to_string(index=False)


AUDIT_COLUMNS = ["path", "split", "label", "exact_group", "near_group", "flags", "width", "height", "mode", "format",
                 "pixel_hash", "phash"]


def write_audit(table: pd.DataFrame, summary: dict, out: Path) -> list[Path]:
    """``audit.csv`` (one row per image) and ``audit.json`` (the findings) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    return [write_csv(table[AUDIT_COLUMNS], out / "audit.csv"), write_json(out / "audit.json", summary)]


def audit_text(summary: dict) -> str:
    """The terminal summary of a data audit."""
    lines = [f"{summary['n_files']} files; {summary['n_exact_groups']} groups of identical pixels "
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
    for risk in summary["shortcut_risks"]:
        if risk["flags"]:
            lines.append(f"SHORTCUT RISK: class {risk['label']} differs in {', '.join(risk['flags'])} "
                         f"(median {risk['median_width']:g}x{risk['median_height']:g} px, "
                         f"{risk['area_ratio_vs_rest']:g}x the other classes' pixel count)")
    return "\n".join(lines)
