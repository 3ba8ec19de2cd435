"""Checks on the real Kaggle chest-CT dataset in ../shared (skipped loudly when it is absent)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, require_shared_data

from ctdistill.data import load_dataset
from ctdistill.data.inspect import inspect_path

pytestmark = pytest.mark.slow


def test_inspect_counts_match_the_dataset_readme():
    info = inspect_path(require_shared_data())
    assert {s: sum(c.values()) for s, c in info["splits"].items()} == {"train": 613, "valid": 72, "test": 315}
    assert info["splits"]["test"] == {"adenocarcinoma": 120, "large.cell.carcinoma": 51, "normal": 54,
                                      "squamous.cell.carcinoma": 90}
    assert info["formats"]["JPEG (.png)"] == 4 and info["formats"]["JPEG (.jpg)"] == 12  # decode by content
    assert info["modes"] == {"RGBA": 923, "RGB": 74, "L": 3}
    assert not info["unreadable"]


def test_real_dataset_loads_with_one_label_set():
    ds = load_dataset(require_shared_data(), 32, 3)
    assert ds.class_names == ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]
    assert ds.train.x.shape == (613, 32, 32, 3) and len(ds.valid) == 72 and len(ds.test) == 315
    assert ds.train.counts(4) == [195, 115, 148, 155]


def test_real_data_run_writes_the_report_with_intervals_auc_and_ece(tmp_path, tiny_teacher, tiny_teacher_b):
    import pandas as pd

    from ctdistill.config import Config
    from ctdistill.run.pipeline import run

    cfg = Config(data=str(require_shared_data()), teachers=(tiny_teacher, tiny_teacher_b), weights="none",
                 epochs=2, patience=2, quant_modes=("dynamic", "int8"), ensemble="mean", bootstrap_resamples=200,
                 max_quant_drop=-1.0)  # gate off: two epochs make weak models; the gate has its own tests
    out = run(cfg, tmp_path / "run")
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 1 + 3 * 4  # scratch; per teacher and the ensemble: teacher, student, two quantized
    for column in ("accuracy_lo", "accuracy_hi", "f1_lo", "f1_hi", "auc", "auc_lo", "auc_hi", "ece",
                   "accuracy_dedup"):
        assert metrics[column].notna().all(), column
    assert (metrics["n"] == 315).all() and (metrics["n_dedup"] < 315).all()
    impact = pd.read_csv(out / "quantization_impact.csv")
    assert len(impact) == 6 and impact[["flip_rate", "mcnemar_p"]].notna().all().all()
    assert len(pd.read_csv(out / "distillation_gain.csv")) == 3
    assert (out / "report.html").stat().st_size > 50_000  # images embedded

    # issue #18 on the real data: copies by thumbnail distance, the framing shift and the shortcut found
    import json

    from ctdistill.data.neighbours import SAME_PICTURE, cross_label

    neighbours = pd.read_csv(out / "neighbours.csv")
    assert len(neighbours) == 315 and (neighbours["thumb_distance"] <= SAME_PICTURE).sum() == 47
    assert cross_label(neighbours).empty
    audit = json.loads((out / "audit.json").read_text())
    assert audit["train_test_shift"]["shifted"] and audit["shortcut_baseline"]["above_chance"]
    warned = [kind for kind, _ in json.loads((out / "verdict.json").read_text())["warnings"]]
    assert "train_test_shift" in warned and "shortcut" in warned
    assert len(pd.read_csv(out / "leakage_curve.csv")) > 5
    page = (out / "report.md").read_text()
    assert "Train/test shift: file metadata tells test images from the others with AUC 0.9" in page
    assert "Label conflict: the same picture is filed as large.cell.carcinoma and squamous.cell.carcinoma" in page

    # predict on the real PNG/JPEG test folder gives the run's own test predictions (int8 and Keras)
    from ctdistill.predict import predict_paths

    test_dir = require_shared_data() / "test"
    for model in (f"{tiny_teacher}_student_int8.tflite", f"{tiny_teacher}_Student.keras"):
        table, failed = predict_paths(out / model, [test_dir])
        assert not failed and len(table) == 315
        model_id = model.rsplit(".", 1)[0].replace("_Student", "_student")
        saved = pd.read_csv(out / "predictions" / f"{model_id}.csv")
        saved = saved[saved["split"] == "test"]
        key = saved["file"].map(lambda f: str(Path(f).resolve()))
        got = table.assign(key=table["file"].map(lambda f: str(Path(f).resolve()))).set_index("key").loc[key]
        probs = [c for c in saved if c.startswith("prob_")]
        np.testing.assert_allclose(got[probs].to_numpy(), saved[probs].to_numpy(), atol=1e-5)


def test_the_tcga_dicom_headers_give_contrast_away_and_the_audit_says_so():
    """../shared/data/tcga-ct-dicom (its README): ContrastBolusAgent is set in 14 of the 50 contrast files
    and in no no-contrast file; the audit must name it."""
    from ctdistill.data.audit import audit_path

    root = SHARED_DATA.parent / "tcga-ct-dicom"
    if not root.is_dir():
        pytest.skip(f"REAL DATA ABSENT: {root} not found")
    tags = audit_path(root).summary["label_tags"]
    assert {"tag": "ContrastBolusAgent", "value": "(present)", "class": "contrast", "files": 14,
            "class_files": 50} in [{k: t[k] for k in ("tag", "value", "class", "files", "class_files")} for t in tags]
