"""Tables and text for people: the seed's per-model tables and the terminal summaries (formatting only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ctdistill.data.audit_text import label_tag_words, scan_words, shift_words, shortcut_words


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


def verdict_text(found: dict) -> list[str]:
    """The verdict (``ctdistill.assess.verdict.verdict``) as sentences, most important first."""
    lines, d, gate = [], found["deploy"], found["gate"]
    unfit = found.get("unfit")  # verdicts written before the refusal existed have no such key
    if unfit is not None:
        lines.append(_refusal(d, unfit))
    if d is not None:
        speed = (f", {d['latency_ms']:.2f} ms per image at batch 1" if d["latency_ms"] is not None
                 else "; latency not measured yet: ctdistill bench RUN_DIR")
        mode = d.get("mode") or d["model"].rsplit("_", 1)[-1]
        how = ("whose quantized mode passed the safety gate" if gate is not None
               else f"among the {mode} students (no safety gate ran)")
        lines.append(f"{'Best candidate, not fit to deploy:' if unfit else 'Deploy'} {d['file']} "
                     f"({1000 * d['size_mb']:.0f} KB{speed}): the {mode} student distilled from {d['teacher']}, "
                     f"chosen as the student {how} with the best validation accuracy ({_pct(d['valid_accuracy'])}).")
        lines.append(f"On {d['n']} test images it scores accuracy {_pct(d['accuracy'])}{_ci(d, 'accuracy')} and "
                     f"macro-F1 {d['f1']:.3f}{_ci(d, 'f1', percent=False)}.")
    g = found["gain"]
    if g is not None:
        lines.append(_gain_sentence(g))
    w = found["worst_class"]
    if w is not None:
        lines.append(f"Its weakest class is {w['class']}: it finds {_pct(w['sensitivity'])} of the {w['support']} "
                     f"test images of that class (sensitivity).")
    if d is not None and gate is None:
        lines.append("The quantization safety gate was off (--max-quant-drop below 0): int8 is deployed unchecked "
                     "on validation." if d.get("mode", "int8") == "int8" else
                     f"No quantization safety gate ran (it judges int8, which --quant-modes did not make): "
                     f"{d['mode']} is deployed, unchecked on validation.")
    elif gate is not None:
        first_mode, first_drop, first_passed = gate["attempts"][0]
        if first_passed:
            lines.append(f"Quantization safety gate: {first_mode} kept validation accuracy within "
                         f"{gate['max_drop_points']:g} point(s) of the float student ({-first_drop:+.1f}).")
        else:
            lines.append(f"Quantization safety gate: {first_mode} lost {first_drop:.1f} validation points, more than "
                         f"the {gate['max_drop_points']:g} allowed; {gate['decision']} passed instead.")
    lines += [f"Warning: {words}." for _, words in found["warnings"]]
    return lines


def _refusal(d: dict | None, unfit: dict) -> str:
    """The verdict's first line when the chosen model is no better than guessing."""
    if unfit["reason"] == "balanced":
        why = (f"its balanced accuracy ({_pct(unfit['bound'])}) is no better than the {_pct(unfit['chance'])} "
               "of guessing among the classes")
    else:
        score = "accuracy's 95% interval reaches down to" if unfit["interval"] else "accuracy is"
        why = (f"its test {score} {_pct(unfit['bound'])}, not above the {_pct(unfit['chance'])} of always answering "
               "the largest class")
    return (f"No model of this run is fit to deploy: the best candidate ({d['model']}) does not beat guessing; "
            f"{why}.")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _ci(values: dict, key: str, percent: bool = True) -> str:
    lo, hi = values.get(f"{key}_lo"), values.get(f"{key}_hi")
    if lo is None or hi is None:
        return ""
    return f" (95% CI {_pct(lo)} to {_pct(hi)})" if percent else f" (95% CI {lo:.3f} to {hi:.3f})"


def _gain_sentence(g: dict) -> str:
    points, lo, hi = 100 * g["accuracy_gain"], g["accuracy_gain_lo"], g["accuracy_gain_hi"]
    versus = "the student trained without a teacher"
    details = [] if lo is None else [f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f} points"]
    if g.get("f1_gain") is not None:
        details.append(f"macro-F1 {g['f1_gain']:+.3f}")
    if lo is not None and lo > 0:
        return f"Distillation gained {points:.1f} points of accuracy over {versus} ({'; '.join(details)})."
    if hi is not None and hi < 0:
        return f"Distillation cost {-points:.1f} points of accuracy against {versus} ({'; '.join(details)})."
    if lo is not None:
        details[0] += ", an interval that includes zero"
    return (f"Distillation made no clear difference against {versus}: {points:+.1f} points of accuracy "
            f"({'; '.join(details)}).")


def audit_sentences(summary: dict, crossed) -> list[str]:
    """The audit and the data shift in sentences, each with what it means for the numbers."""
    lines = []
    cross = summary.get("cross_split_files") or []
    lines.append(f"{summary['n_files']} images, {summary['n_redundant_exact_copies']} of them exact copies of "
                 f"others; {len(cross)} validation or test image(s) have a copy in an earlier split. The "
                 "de-duplicated test view leaves those out, so its numbers do not reward memory.")
    for conflict in summary.get("label_conflict_groups") or []:
        lines.append(f"Label conflict: the same picture is filed as {' and '.join(conflict['labels'])} "
                     f"({', '.join(Path(f).name for f in conflict['files'])}); at most one of them is right.")
    if "n_scan_groups" in summary:
        lines.append(scan_words(summary)[0].upper() + scan_words(summary)[1:] + ". ctdistill's own splits keep "
                     "each scan group in one split; a given test split keeps what it was given.")
    if crossed is not None:
        lines.append(f"{len(crossed)} test image(s) are the same picture as a training image of another class "
                     "(neighbours.csv, pictured below)." if len(crossed) else
                     "No test image is the same picture as a training image of another class (neighbours.csv).")
    framed = (summary.get("framing") or {}).get("splits_framed_unlike_train") or {}
    for split, diff in framed.items():
        lines.append(f"The {split} images are framed unlike the training ones: the body's share of the image "
                     f"differs by {100 * diff:+.0f} points (the crop to the body removes this difference).")
    base = summary.get("shortcut_baseline")
    if base:
        reading = ("so a model could learn where an image comes from instead of what it shows" if base["above_chance"]
                   else "no better than chance: the files do not give the class away")
        lines.append(f"Shortcut baseline: {shortcut_words(base)}: {reading}.")
    for tag in summary.get("label_tags", []):
        lines.append(f"Header shortcut: {label_tag_words(tag)}.")
    shift = summary.get("train_test_shift")
    if shift:
        reading = ("the test split is drawn differently, so validation numbers will not carry over" if shift["shifted"]
                   else "the test split looks drawn like the rest")
        lines.append(f"Train/test shift: {shift_words(shift)}: {reading}.")
    return lines


def saliency_sentence(seen: dict) -> str:
    """Where the deployed model looks, in one sentence (``assess.saliency.explain_deployed``)."""
    shares = seen["border"]
    area = next(iter(shares.values()))[1] if shares else 0.0
    heavy = [c for c, (share, band) in shares.items() if share > band]
    words = ", ".join(f"{c} {100 * share:.0f}%" for c, (share, _) in shares.items())
    reading = (f"above an even map's share for {', '.join(heavy)}: check on the maps below that the body, not the "
               "table or a margin, carries the decision" if heavy else "below an even map's share for every class: "
               "the decision rests on the image's inner part")
    return (f"Where the deployed model looks (occlusion sensitivity, Zeiler & Fergus 2014, on {seen['read']} test "
            f"images): the share of each class's mean saliency in the image's outer band, which holds "
            f"{100 * area:.0f}% of the pixels: {words}; {reading}.")
