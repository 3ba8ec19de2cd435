"""Tables and text for people: the seed's per-model tables and the terminal summaries (formatting only)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def classification_report_frame(metrics: dict) -> pd.DataFrame:
    """sklearn's report dict as the seed's table: one row per class plus accuracy and averages."""
    report = dict(metrics["report"])
    accuracy = report.pop("accuracy", None)
    if accuracy is None:  # sklearn leaves it out when a class is never predicted nor true
        accuracy = metrics.get("overall", metrics)["accuracy"]
    frame = pd.DataFrame(report).T
    frame.loc["accuracy"] = [np.nan, np.nan, accuracy, frame["support"].iloc[: -2].sum()]
    return frame.rename_axis("class")


def confusion_frame(metrics: dict, class_names: list[str]) -> pd.DataFrame:
    """Counts, rows = true class, columns = predicted class, both named."""
    return pd.DataFrame(metrics["confusion"], index=pd.Index(class_names, name="true"),
                        columns=pd.Index(class_names, name="predicted"))


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
