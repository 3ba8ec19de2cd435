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
     "Every model on {test_split}: accuracy, balanced accuracy, macro F1, macro one-vs-rest ROC-AUC, "
     "expected calibration error (ECE), 95% bootstrap intervals in brackets (metrics.csv has every column, the "
     "intervals as `<metric>_lo` / `<metric>_hi`), and the de-duplicated test view (test images with no copy in "
     "train or valid)."),
    ("per_class", "Per class", "Sensitivity (recall), specificity, precision, F1, one-vs-rest AUC and support."),
    ("quantization_impact", "What quantization changed",
     "Each quantized student against its float student on the same test images: share of predictions that "
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

# The models table as shown: point estimate [95% interval]; metrics.csv keeps every column raw.
SHOWN_METRICS = {"accuracy": "accuracy [95% CI]", "balanced_accuracy": "balanced accuracy",
                 "f1": "macro F1 [95% CI]", "auc": "macro AUC [95% CI]", "ece": "ECE",
                 "accuracy_dedup": "accuracy, de-duplicated", "f1_dedup": "macro F1, de-duplicated"}


def write_pages(tables: dict, figures: dict[str, Path], run_dir: Path, out: Path, verdict: list[str],
                audit: list[str]) -> list[Path]:
    """Write ``report.html`` and ``report.md`` into ``out``: the verdict's sentences first, then the run,
    the audit's sentences, the tables and the figures; returns their paths."""
    frames = {name: _shown(name, tables[name]) for name, _, _ in SECTIONS}
    header = _header(tables, run_dir)
    sections = [(name, title, note.format(test_split=dict(header)["test split"])) for name, title, note in SECTIONS]
    return [_write(out / REPORT_HTML, _html(header, frames, figures, sections, verdict, audit)),
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
SHOWN_IMPACT = {"model": "model", "accuracy_change": "accuracy change", "flip_rate": "predictions flipped",
                "mcnemar_p": "McNemar p", "prob_drift": "probability drift", "collapsed": "collapsed"}


def _shown(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if name == "leakage_curve" and not frame.empty:
        return frame[frame["d"].isin(SHOWN_DISTANCES)].round(4)
    if name == "quantization_impact" and not frame.empty:
        return frame[[c for c in SHOWN_IMPACT if c in frame]].rename(columns=SHOWN_IMPACT).round(4)
    if name != "metrics" or frame.empty:
        return frame.round(4)
    shown = frame[["model", "kind"]].copy()
    for column, title in SHOWN_METRICS.items():
        if column not in frame:
            continue
        text = frame[column].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        if f"{column}_lo" in frame:
            text += frame[column + "_lo"].map(lambda v: f" [{v:.3f}, ") + frame[column + "_hi"].map("{:.3f}]".format)
        shown[title] = text
    shown["test images"] = frame["n"].astype(str) + (" / " + frame["n_dedup"].astype(int).astype(str)
                                                     if "n_dedup" in frame else "")
    shown["size MB"] = frame["size_mb"].round(3)
    shown["parameters"] = frame["params"]
    return shown


def _html(header, frames: dict, figures: dict[str, Path], sections, verdict: list[str], audit: list[str]) -> str:
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
        table = (f"<div class='scroll'>{frames[name].to_html(index=False, table_id=name, na_rep='', border=0)}</div>"
                 if len(frames[name]) else "<p>none in this run</p>")
        parts.append(f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>{table}")
    parts.append("<h2>Plots</h2>")
    for caption, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(parts + ["</body></html>"])


def _markdown(header, frames: dict, figures: dict[str, Path], out: Path, sections, verdict: list[str],
              audit: list[str]) -> str:
    lines = ["# ctdistill report", "", "## Verdict", ""] + [f"- {s}" for s in verdict]
    lines += ["", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in header]
    if audit:
        lines += ["", "## Audit and data shift", ""] + [f"- {s}" for s in audit]
    for name, title, note in sections:
        lines += ["", f"## {title}", "", note, ""]
        lines.append(frames[name].to_markdown(index=False) if len(frames[name]) else "none in this run")
    lines += ["", "## Plots", ""]
    lines += [f"![{caption}]({Path(path).relative_to(out).as_posix()})" for caption, path in figures.items()]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path
