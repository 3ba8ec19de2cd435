"""Lay out the run report: ``report.html`` (one self-contained file, images embedded) and ``report.md``.

Formatting only: every number comes from ``scoring.assess_run``'s tables.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ctdistill.data.dataset import TEST_SPLITS
from ctdistill.run.folder import MANIFEST, REPORT_HTML, REPORT_MD, atomic_path, read_json

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f0f3f7}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:14px}h2{border-bottom:1px solid #ddd;padding-bottom:4px}
#run td{text-align:left}.scroll{overflow-x:auto}
#verdict li{margin:4px 0}#verdict .warn{color:#8a4b00}"""

SECTIONS = (
    ("metrics", "Models",
     "Every model on {test_split}, in percent: accuracy, balanced accuracy, macro F1, macro one-vs-rest ROC-AUC, "
     "expected calibration error (ECE), 95% bootstrap intervals in brackets (metrics.csv has every column, the "
     "intervals as `<metric>_lo` / `<metric>_hi`), and the de-duplicated test view (test images with no copy in "
     "train or valid)."),
    ("per_class", "Per class",
     "Sensitivity (recall) and specificity with Wilson 95% intervals, precision, F1, one-vs-rest AUC and support: "
     "the plot shows every model, the table the deployed one ({deployed}); per_class.csv has every model's rows."),
    ("quantization_impact", "What quantization changed",
     "Each quantized student against its float student on the same test images (the plot: accuracy change against "
     "file size): share of predictions that "
     "flipped, McNemar's exact p-value, mean absolute probability drift; collapsed = True marks a model that "
     "predicts one class for everything (broken, whatever its accuracy). quantization_impact.csv adds the change "
     "in each class's sensitivity and the discordant counts."),
    ("distillation_gain", "What distillation gained",
     "Distilled student minus the scratch student (same recipe and budget), with paired bootstrap 95% intervals."),
    ("seeds", "Across seeds",
     "The student stages repeated with other seeds (--seeds), from the same teachers: test accuracy and macro-F1, "
     "mean and standard deviation across seeds, and each seed's accuracy."),
    ("valid_vs_test", "Validation against test",
     "Each model's accuracy on the validation split that selected it (Wilson 95% interval) and on the test split "
     "(bootstrap 95% interval); beyond_intervals = True where validation lies wholly above test: a shift between the "
     "splits, or an optimistic validation score from selecting on few images."),
    ("leakage_curve", "How much rests on near copies",
     "Each model's test accuracy on the test images whose nearest training or validation image is farther than d "
     "bits of a 64-bit perceptual hash (neighbours.csv; d = -1: the whole test split). A curve that falls as d grows "
     "says part of the result rests on test images the model has all but seen; the de-duplicated view above removes "
     "the images within the audit's threshold of a copy. Some values of d are shown; leakage_curve.csv has all."),
    ("group_leakage", "Test images that share a patient or scan with training",
     "Each model's test accuracy on the test images whose patient or scan (--group-by, the DICOM PatientID, or a scan "
     "group the audit chained from pictures within its same-scan distance, copies included) also has images in train "
     "or valid, and on the rest. Adjacent slices of one scan are not copies, so the curve above may not see them; a "
     "higher accuracy on the shared ones says the result leans on having seen the patient."),
)
# The leakage curve as shown: these distances (of 64 bits), where present.
SHOWN_DISTANCES = (-1, 0, 1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 32)

# The models table as shown: point estimate [95% interval], proportions in percent with one decimal (the
# report's one rule, :func:`_in_percent`); metrics.csv keeps every column raw.
SHOWN_METRICS = {"accuracy": "accuracy [95% CI]", "balanced_accuracy": "balanced accuracy",
                 "f1": "macro F1 [95% CI]", "auc": "macro AUC [95% CI]", "ece": "ECE",
                 "accuracy_dedup": "accuracy, de-duplicated", "f1_dedup": "macro F1, de-duplicated"}


# Figures shown inside a table's section (above the table, which then folds away in report.html), by
# the caption ``report.report_figures`` gives them; every other figure goes under "Plots".
SECTION_FIGURES = {"per_class": "Per class: every model's sensitivity and specificity (Wilson 95% intervals)",
                   "quantization_impact": "What quantization cost: accuracy change against file size"}


def write_pages(tables: dict, figures: dict[str, Path], run_dir: Path, out: Path, verdict: list[str],
                audit: list[str], deployed: str | None = None) -> list[Path]:
    """Write ``report.html`` and ``report.md`` into ``out``: the verdict's sentences first, then the run,
    the audit's sentences, the tables (each with its figure, :data:`SECTION_FIGURES`) and the other
    figures; returns their paths. ``deployed``: the verdict's deployed model, whose per-class rows the
    per-class table shows (every model's without one)."""
    frames = {name: _shown(name, tables[name], deployed) for name, _, _ in SECTIONS}
    folded = {"quantization_impact": frames["quantization_impact"]}  # the plot says it; the table folds away
    if deployed in set(tables["per_class"].get("model", ())):
        folded["per_class"] = _shown("per_class", tables["per_class"])  # every model's rows
    header = _header(tables, run_dir)
    sections = [(name, title, note.format(test_split=dict(header)["test split"], deployed=deployed or "none: every "
                                          "model's rows")) for name, title, note in SECTIONS]
    return [_write(out / REPORT_HTML, _html(header, frames, folded, figures, sections, verdict, audit)),
            _write(out / REPORT_MD, _markdown(header, frames, figures, out, sections, verdict, audit))]


def _header(tables: dict, run_dir: Path) -> list[tuple[str, str]]:
    config = tables["config"]
    manifest = read_json(run_dir, MANIFEST, {})
    data = manifest.get("dataset", {})
    counts = data.get("counts", {})
    return [("run", str(run_dir.resolve().name)), ("data", str(data.get("source", config.get("data")))),
            ("images", ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())),
            ("test split", data.get("test_split", TEST_SPLITS["given"])),
            ("crop", _crop_text(data.get("crop"))),
            ("classes", ", ".join(tables["class_names"])),
            ("teachers", ", ".join(config.get("teachers", []))), ("weights", str(config.get("weights"))),
            ("recipe", f"preset {config.get('preset', 'seed-era')}, T={config.get('temperature')}, "
                       f"alpha={config.get('alpha')}, {config.get('image_size')} px, seed {config.get('seed')}"),
            ("git revision", str(manifest.get("git_revision"))),
            ("intended use", "research only; not a medical device")]


def _crop_text(crop: dict | None) -> str:
    """What the crop to the body kept, per split (the median share of the image area), and its fallbacks."""
    if not crop or crop.get("crop", "none") == "none":
        return "none (whole images, stretched to the input size)"
    text = f"{crop['crop']}"
    shares = crop.get("kept_share") or {}
    if shares:
        text += "; median share of the image kept: " + "; ".join(
            f"{split} " + ", ".join(f"{c} {100 * v:.0f}%" for c, v in per_class.items())
            for split, per_class in shares.items())
    fallbacks = crop.get("fallbacks") or {}
    if fallbacks:
        text += "; whole image kept (no body found) for " + ", ".join(
            f"{len(files)} ({why})" for why, files in fallbacks.items())
    return text


# The quantization table as shown: what decides whether a quantized model can stand in for its float
# model; quantization_impact.csv keeps every column (per-class sensitivity changes, discordant counts).
SHOWN_IMPACT = {"model": "model", "accuracy_change": "accuracy change (points)", "flip_rate": "predictions flipped",
                "mcnemar_p": "McNemar p", "prob_drift": "probability drift", "collapsed": "collapsed"}
# Per class as shown (the deployed model's rows): estimate [Wilson 95% interval] in percent.
SHOWN_CLASS = {"sensitivity": "sensitivity [95% CI]", "specificity": "specificity [95% CI]", "precision": "precision",
               "f1": "F1", "auc": "AUC"}
# Float columns that are not proportions: kept as they are (p-values to two significant digits).
NOT_PROPORTIONS = {"size_mb", "mcnemar_p", "d", "n_images", "n_valid", "n", "n_dedup", "params", "support", "seeds"}


def _in_percent(values: pd.Series, lo: pd.Series | None = None, hi: pd.Series | None = None) -> pd.Series:
    """Proportions as percent with one decimal, ``[lo, hi]`` appended where an interval is given."""
    text = values.map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}")
    if lo is not None and hi is not None:
        text += [("" if pd.isna(a) else f" [{100 * a:.1f}, {100 * b:.1f}]") for a, b in zip(lo, hi, strict=True)]
    return text


def _percent_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every float column of a table in percent with one decimal, but counts, sizes and p-values."""
    shown = frame.copy()
    for column in shown.columns:
        if column == "mcnemar_p" or column == "McNemar p":
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.2g}")
        elif shown[column].dtype.kind == "f" and column not in NOT_PROPORTIONS:
            shown[column] = _in_percent(shown[column])
    return shown


def _shown(name: str, frame: pd.DataFrame, deployed: str | None = None) -> pd.DataFrame:
    """A table as the report shows it: proportions in percent with one decimal (:func:`_in_percent`)."""
    if frame.empty:
        return frame
    if name == "leakage_curve":
        return _percent_frame(frame[frame["d"].isin(SHOWN_DISTANCES)])
    if name == "quantization_impact":
        return _percent_frame(frame[[c for c in SHOWN_IMPACT if c in frame]]).rename(columns=SHOWN_IMPACT)
    if name == "per_class":
        rows = frame[frame["model"] == deployed] if deployed in set(frame["model"]) else frame
        shown = rows[["model", "class"]].copy()
        for column, title in SHOWN_CLASS.items():
            shown[title] = _in_percent(rows[column], rows.get(f"{column}_lo"), rows.get(f"{column}_hi"))
        shown["support"] = rows["support"]
        return shown
    if name != "metrics":
        return _percent_frame(frame)
    shown = frame[["model", "kind"]].copy()
    for column, title in SHOWN_METRICS.items():
        if column in frame:
            shown[title] = _in_percent(frame[column], frame.get(f"{column}_lo"), frame.get(f"{column}_hi"))
    shown["test images"] = frame["n"].astype(str) + (" / " + frame["n_dedup"].astype(int).astype(str)
                                                     if "n_dedup" in frame else "")
    shown["size MB"] = frame["size_mb"].round(3)
    shown["parameters"] = frame["params"]
    return shown


def _figure(caption: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(frame: pd.DataFrame, table_id: str) -> str:
    return f"<div class='scroll'>{frame.to_html(index=False, table_id=table_id, na_rep='', border=0)}</div>"


def _html(header, frames: dict, folded: dict, figures: dict[str, Path], sections, verdict: list[str],
          audit: list[str]) -> str:
    """``folded``: tables shown collapsed (``<details>``) after their section's figure."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ctdistill report</title>"
             f"<style>{CSS}</style></head><body><h1>ctdistill report</h1>",
             "<section id='verdict'><h2>Verdict</h2><ul>"
             + "".join(f"<li{' class=warn' if s.startswith('Warning') else ''}>{html.escape(s)}</li>" for s in verdict)
             + "</ul></section><table id='run'>"]
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in header]
    parts.append("</table>")
    if audit:
        parts.append("<section id='audit'><h2>Audit and data shift</h2><ul>"
                     + "".join(f"<li>{html.escape(s)}</li>" for s in audit) + "</ul></section>")
    for name, title, note in sections:
        parts.append(f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>")
        caption = SECTION_FIGURES.get(name)
        if caption in figures:
            parts.append(_figure(caption, figures[caption]))
        if not len(frames[name]):
            parts.append("<p>none in this run</p>")
        elif name in folded and (name != "quantization_impact" or caption in figures):
            if name == "per_class":
                parts.append(_table(frames[name], name))
            every = name == "per_class"  # the deployed model's rows above, every model's folded
            parts.append(f"<details><summary>{'every model' if every else 'the table'}</summary>"
                         f"{_table(folded[name], name + '_all' if every else name)}</details>")
        else:
            parts.append(_table(frames[name], name))
    parts.append("<h2>Plots</h2>")
    shown = set(SECTION_FIGURES.values())
    parts += [_figure(caption, path) for caption, path in figures.items() if caption not in shown]
    return "\n".join(parts + ["</body></html>"])


def _markdown(header, frames: dict, figures: dict[str, Path], out: Path, sections, verdict: list[str],
              audit: list[str]) -> str:
    lines = ["# ctdistill report", "", "## Verdict", ""] + [f"- {s}" for s in verdict]
    lines += ["", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in header]
    if audit:
        lines += ["", "## Audit and data shift", ""] + [f"- {s}" for s in audit]
    link = lambda caption: f"![{caption}]({Path(figures[caption]).relative_to(out).as_posix()})"  # noqa: E731
    for name, title, note in sections:
        lines += ["", f"## {title}", "", note, ""]
        if SECTION_FIGURES.get(name) in figures:
            lines += [link(SECTION_FIGURES[name]), ""]
        lines.append(frames[name].to_markdown(index=False) if len(frames[name]) else "none in this run")
    lines += ["", "## Plots", ""]
    lines += [link(caption) for caption in figures if caption not in set(SECTION_FIGURES.values())]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path
