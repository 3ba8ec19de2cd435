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

from ctdistill.data.dataset import TEST_SPLITS
from ctdistill.runfolder import CONFIG, MANIFEST, QUANT_GATE, card_path, read_json, read_summary, write_json

INTENDED_USE = ("Research on model compression for chest-CT slice classification. Not a medical device: not "
                "for diagnosis, triage or any clinical decision.")
LIMITATIONS = ("Trained and tested on one small public dataset of single axial slices (PNG/JPEG, already "
               "windowed by its curators) with duplicated images across splits: see the de-duplicated test "
               "metrics. Accuracy on other scanners, protocols, windows or populations is unknown. The four "
               "classes do not cover other findings; every input is forced into one of them.")
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
    gates = read_json(run_dir, QUANT_GATE, {})
    written = []
    for row in summary.itertuples():
        model_file = run_dir / str(row.file)
        if not model_file.is_file():
            continue
        scores = {} if metrics is None else {k: _plain(metrics.loc[row.model, k]) for k in CARD_METRICS
                                             if k in metrics}
        info = card(row._asdict(), scores, config, manifest)
        gate = gates.get(_plain(row.teacher) or "")
        if gate and row.kind == "quantized":
            tried = {a["mode"]: a for a in gate["attempts"]}
            info["safety_gate"] = {"max_drop_points": gate["max_drop_points"], "decision": gate["decision"],
                                   "chosen": row.mode == gate["decision"], "this_attempt": tried.get(row.mode)}
        written.append(write_json(card_path(model_file), info))
    return written


def card(row: dict, scores: dict, config: dict, manifest: dict) -> dict:
    """The card of one model (``row``: its summary.csv row)."""
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
        "intended_use": INTENDED_USE, "limitations": LIMITATIONS,
    }


def _plain(value):
    """JSON-safe scalars: NaN becomes None, numpy numbers become Python numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
