"""Model cards: the JSON sidecar next to every exported model (after Mitchell et al. 2019, "Model
Cards for Model Reporting").

``<model file>.json`` holds what a user needs to run the model correctly and judge it: class names,
input spec, preprocessing, test metrics with confidence intervals, the dataset fingerprint, the
training configuration, and the intended use and limitations. ``ctdistill predict`` reads its
preprocessing from here, so prediction repeats training's exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ctdistill.data.audit import STORED_AUDIT
from ctdistill.data.dataset import TEST_SPLITS
from ctdistill.run.folder import CONFIG, MANIFEST, QUANT_GATE, card_path, read_json, read_summary, write_json

INTENDED_USE = ("Research on model compression for chest-CT slice classification. Not a medical device: not "
                "for diagnosis, triage or any clinical decision.")
UNKNOWN_ELSEWHERE = ("Accuracy on other scanners, protocols, windows or populations is unknown: the test images "
                     "come from the same collection as the training images.")
CARD_METRICS = ("accuracy", "accuracy_lo", "accuracy_hi", "balanced_accuracy", "f1", "f1_lo", "f1_hi", "auc",
                "auc_lo", "auc_hi", "ece", "n", "accuracy_dedup", "f1_dedup", "n_dedup")


def write_cards(run_dir: Path, metrics: pd.DataFrame | None) -> list[Path]:
    """Write a card for every model file of a run listed in ``summary.csv`` (column ``file``).

    Args:
        run_dir: the run folder.
        metrics: the report's metrics table (``scoring.assess_run``), one row per model; None: no scores.
    """
    summary = read_summary(run_dir)
    if "file" not in summary:
        return []
    metrics = None if metrics is None else metrics.set_index("model")
    config, manifest = read_json(run_dir, CONFIG), read_json(run_dir, MANIFEST)
    audit = read_json(run_dir, STORED_AUDIT[1], None)
    gates = read_json(run_dir, QUANT_GATE, {})
    written = []
    for row in summary.itertuples():
        model_file = run_dir / str(row.file)
        if not model_file.is_file():
            continue
        scores = {} if metrics is None else {k: _plain(metrics.loc[row.model, k]) for k in CARD_METRICS
                                             if k in metrics}
        info = card(row._asdict(), scores, config, manifest, audit)
        gate = gates.get(_plain(row.teacher) or "")
        if gate and row.kind == "quantized":
            tried = {a["mode"]: a for a in gate["attempts"]}
            info["safety_gate"] = {"max_drop_points": gate["max_drop_points"], "decision": gate["decision"],
                                   "chosen": row.mode == gate["decision"], "this_attempt": tried.get(row.mode)}
        written.append(write_json(card_path(model_file), info))
    return written


def card(row: dict, scores: dict, config: dict, manifest: dict, audit: dict | None = None) -> dict:
    """The card of one model (``row``: its summary.csv row; ``audit``: the run's audit.json, if any)."""
    data = manifest["dataset"]
    height, width, channels = data["input_shape"]
    crop = (data.get("crop") or {}).get("crop", "none")  # what training applied (runs before the crop: none)
    return {
        "model": row["model"], "file": row["file"], "kind": row["kind"], "teacher": _plain(row["teacher"]) or None,
        "mode": row["mode"], "class_names": data["class_names"],
        "input": {"layout": "NHWC", "height": height, "width": width, "channels": channels,
                  "values": "pixel intensities 0..255 as float32 (int8 models quantize inside ctdistill's runner)"},
        "output": "logits, one per class; softmax gives probabilities",
        "preprocessing": {
            "decode": "by file content; converted to RGB (channels 3) or grey (channels 1)",
            "crop": crop,
            "resize": f"{'cropped to the body (ctdistill.data.crop), then ' if crop == 'body' else ''}"
                      f"stretched to {width}x{height}, bilinear (PIL)",
            "normalisation": "none outside the model (it rescales 0..255 inside)",
            "dicom": "Hounsfield units from RescaleSlope/RescaleIntercept, lung window level -600 width 1500, "
                     "MONOCHROME1 inverted, one image per frame; the body crop found on voxels above -500 HU"},
        "metrics": {"split": f"{data.get('test_split', TEST_SPLITS['given'])}; *_dedup: test images with no copy "
                             "in train or valid", **scores,
                    "valid_accuracy": _plain(row.get("valid_accuracy"))},
        "size_mb": row["size_mb"], "params": int(row["params"]),
        "dataset": {"source": data["source"], "fingerprint": data["fingerprint"], "counts": data["counts"]},
        "training": config, "git_revision": manifest.get("git_revision"),
        "intended_use": INTENDED_USE, "limitations": limitations(data, audit),
    }


def limitations(data: dict, audit: dict | None) -> str:
    """What this run's own data limits, from its manifest's dataset summary and its audit (None: not
    audited): the source, the classes and counts, copies across splits, shortcuts, a train/test
    shift, images whose body was not found; never a fixed text about another dataset.

    Example:
        >>> limitations({"source": "scans/", "class_names": ["a", "b"],
        ...              "counts": {"train": {"a": 8, "b": 4}, "test": {"a": 2, "b": 1}}}, None)[:79]
        'Trained on scans/: 15 single slices (train 12, test 3) of 2 classes (a, b); eve'
    """
    counts = {split: sum(by_class.values()) for split, by_class in data.get("counts", {}).items()}
    names = data["class_names"]
    parts = [f"Trained on {data['source']}: {sum(counts.values())} single slices ("
             + ", ".join(f"{split} {n}" for split, n in counts.items() if n) + f") of {len(names)} classes ("
             + ", ".join(names) + "); every input is forced into one of them, whatever it shows."]
    if "synthetic" in str(data["source"]):
        parts.append("These are synthetic phantoms, not medical images: the model says nothing about patients.")
    if audit is None:
        parts.append("The data was not audited for copies across splits.")
    else:
        cross = len(audit.get("cross_split_files", []))
        parts.append(f"{cross} validation/test images have an exact or near copy in an earlier split: see the "
                     "de-duplicated test metrics." if cross else "The audit found no copy across splits.")
        base, shift = audit.get("shortcut_baseline") or {}, audit.get("train_test_shift") or {}
        if base.get("above_chance"):
            parts.append(f"File metadata alone predicts the class (balanced accuracy {base['balanced_accuracy']:.2f}, "
                         f"chance {base['chance']:.2f}): the model may have learnt the images' source.")
        if shift.get("shifted"):
            parts.append(f"The test images are drawn differently from the training ones (metadata AUC "
                         f"{shift['auc']:.2f}).")
    missed = sum(len(files) for files in ((data.get("crop") or {}).get("fallbacks") or {}).values())
    if missed:
        parts.append(f"The body was not found in {missed} image(s); they were used whole.")
    return " ".join(parts + [UNKNOWN_ELSEWHERE])


def _plain(value):
    """JSON-safe scalars: NaN becomes None, numpy numbers become Python numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
