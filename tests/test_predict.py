"""ctdistill predict: model cards, parity with the run's evaluation, folders, DICOM, bad inputs."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import ct_dicom, make_tree, run_cli, save_image

from ctdistill.config import Config
from ctdistill.core.errors import CtdistillError
from ctdistill.data.dicom import decode_dicom, window_to_uint8
from ctdistill.predict import predict_paths, resolve_model
from ctdistill.run.pipeline import run


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory, tiny_teacher):
    root = make_tree(tmp_path_factory.mktemp("data") / "tree", per_class=4, size=24)
    cfg = Config(data=str(root), teachers=(tiny_teacher,), weights="none", image_size=16, epochs=2, patience=2,
                 batch_size=8, quant_modes=("dynamic", "int8"), bootstrap_resamples=0)
    return root, run(cfg, tmp_path_factory.mktemp("runs") / "r")


def test_every_model_has_a_card(tree_run):
    root, out = tree_run
    for name in ("tiny_Teacher.keras", "tiny_Student.keras", "tiny_student_int8.tflite", "Scratch_Student.keras"):
        card = json.loads((out / f"{name}.json").read_text())
        assert card["class_names"] == ["adeno", "normal"] and card["input"]["height"] == 16
        assert "not a medical device" in card["intended_use"].lower() and card["training"]["seed"] == 0
        assert len(card["dataset"]["fingerprint"]) == 64 and card["metrics"]["accuracy"] is not None
        # the limitations describe this run's data (2 classes, 24 slices), not the Kaggle tree's four classes
        assert card["limitations"].startswith(f"Trained on image folder tree {root}")
        assert "24 single slices (train 12, valid 4, test 8)" in card["limitations"]
        assert "of 2 classes (adeno, normal)" in card["limitations"] and "four classes" not in card["limitations"]
        assert "copy" in card["limitations"]  # the audit's finding on copies across splits, either way


@pytest.mark.parametrize("model", ["tiny_student_int8.tflite", "tiny_student_dynamic.tflite", "tiny_Student.keras",
                                   "tiny_Teacher.keras"])
def test_predict_matches_the_runs_own_evaluation(tree_run, model):
    root, out = tree_run
    table, failed = predict_paths(out / model, [root / "test"])
    assert not failed and len(table) == 8
    model_id = {"tiny_Student.keras": "tiny_student", "tiny_Teacher.keras": "tiny_teacher"}.get(model, model[:-7])
    saved = pd.read_csv(out / "predictions" / f"{model_id}.csv")
    saved = saved[saved["split"] == "test"].set_index("file")
    probs = [c for c in table if c.startswith("prob_")]
    np.testing.assert_allclose(table.set_index("file").loc[saved.index, probs].to_numpy(),
                               saved[probs].to_numpy(), atol=1e-5)
    assert (table.set_index("file").loc[saved.index, "predicted"] == saved["predicted_label"]).all()


def test_run_folder_picks_an_int8_student_and_honours_mode(tree_run):
    _, out = tree_run
    assert resolve_model(out)[0].name == "tiny_student_int8.tflite"
    assert resolve_model(out, mode="float32")[0].name == "tiny_Student.keras"
    with pytest.raises(CtdistillError, match="no model card for a student with mode=float16"):
        resolve_model(out, mode="float16")


def test_dicom_hounsfield_window_monochrome1_and_frames(tmp_path):
    raw = np.array([[0, 424], [1174, 2000]], np.uint16)  # HU = raw - 1024: -1024, -600, 150, 976
    f = ct_dicom(tmp_path / "ct.dcm", raw)
    (grey,) = decode_dicom(f.read_bytes(), 2, 1)
    np.testing.assert_array_equal(grey[..., 0], window_to_uint8(raw.astype(float) - 1024, -600, 1500))
    # -600 HU is the window centre, 150 HU its top; -1024 HU (air) is (1350 - 1024) / 1500 * 255 = 55
    assert grey[0, 1, 0] == 128 and grey[1, 0, 0] == 255 and grey[0, 0, 0] == 55
    (inverted,) = decode_dicom(ct_dicom(tmp_path / "m1.dcm", raw, photometric="MONOCHROME1").read_bytes(), 2, 1)
    np.testing.assert_array_equal(inverted, 255 - grey)
    frames = decode_dicom(ct_dicom(tmp_path / "multi.dcm", np.stack([raw, raw[::-1]])).read_bytes(), 2, 3)
    assert len(frames) == 2 and frames[0].shape == (2, 2, 3)
    np.testing.assert_array_equal(frames[1][..., 0], grey[::-1, :, 0])


def test_compressed_dicom_without_its_handler_names_the_transfer_syntax(tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    from ctdistill.core.errors import DataError

    path = ct_dicom(tmp_path / "jpegls.dcm", np.zeros((4, 4), np.uint16))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless  # no JPEG-LS handler is installed with ctdistill
    ds.PixelData = encapsulate([b"\xff\xd8 compressed frame"])
    ds.save_as(path)
    with pytest.raises(DataError, match="jpegls.dcm: cannot decode DICOM pixel data .*JPEG-LS.*pylibjpeg") as err:
        decode_dicom(path.read_bytes(), 8, 3, str(path))
    assert "\n" not in str(err.value)  # one line


def test_predict_cli_on_folder_dicom_and_bad_files(tree_run, tmp_path):
    root, out = tree_run
    inputs = tmp_path / "inputs"
    save_image(inputs / "slice.jpg", np.full((30, 30), 100, np.uint8), "JPEG")
    ct_dicom(inputs / "scan_without_extension", np.full((2, 8, 8), 500, np.uint16))  # DICOM by content, 2 frames
    (inputs / "notes.png").write_text("not an image")
    result = tmp_path / "pred.csv"
    done = run_cli("predict", str(out), str(inputs),
                   str(root / "test" / "normal" / "img0.png"), "--out", str(result), timeout=300)
    assert done.returncode == 1  # one input could not be read
    assert "notes.png: not a readable image" in done.stderr and "Traceback" not in done.stderr
    table = pd.read_csv(result)
    assert table["file"].str.endswith("scan_without_extension").sum() == 2 and len(table) == 4
    assert sorted(table.loc[table["file"].str.endswith("scan_without_extension"), "frame"]) == [0, 1]
    assert np.allclose(table[["prob_adeno", "prob_normal"]].sum(axis=1), 1, atol=1e-4)
    counts = table["predicted"].value_counts()
    assert f"predicted: {', '.join(f'{c} {n}' for c, n in counts.items())} (4 image(s) from 3 file(s))" in done.stdout
    assert "synthetic" not in done.stderr  # trained on an image tree, not on the phantoms
    again = run_cli("predict", str(out), str(inputs), "--out", str(result), timeout=300)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_predict_refuses_a_corrupt_model_and_a_model_without_card(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    bad.with_name("broken.tflite.json").write_text(json.dumps({"input": {"height": 8, "channels": 3},
                                                                "class_names": ["a", "b"]}))
    with pytest.raises(CtdistillError, match="broken.tflite: not a valid .tflite model"):
        predict_paths(bad, [tmp_path])
    lonely = tmp_path / "lonely.keras"
    lonely.write_bytes(b"zip?")
    with pytest.raises(CtdistillError, match="model card lonely.keras.json is missing"):
        predict_paths(lonely, [tmp_path])


@pytest.mark.slow
def test_bench_cli_on_a_run_folder_writes_the_table_and_the_latency_chart(tree_run):
    _, out = tree_run
    done = run_cli("bench", str(out), "--calls", "5", "--threads", "1", "--batch", "16", timeout=900)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "bench.csv")
    assert sorted(set(table["model"])) == ["Scratch_Student", "tiny_Student", "tiny_student_dynamic",
                                           "tiny_student_int8"]
    assert (table[["latency_ms_median", "latency_ms_p95", "throughput_img_s"]] > 0).all().all()
    assert (table["latency_ms_p95"] >= table["latency_ms_median"]).all()
    assert set(table["format"]) == {"keras float32", "keras float32 predict", "litert dynamic", "litert int8"}
    assert len(table) == 6  # each Keras model timed two ways (predict_on_batch, predict), each file once
    assert (out / "Plots" / "accuracy_vs_latency.png").is_file()
    from ctdistill.assess.scoring import assess_run

    summary = assess_run(out, n_resamples=0)["summary"]
    assert set(table["file"]) <= set(summary["file"])  # every timed file maps to a model of the report
    assert "Accuracy against batch-1 latency" in (out / "report.html").read_text()


def test_predict_warns_when_the_model_learnt_from_synthetic_phantoms(finished_run, tmp_path):
    """A model trained on the built-in phantoms says so on every prediction; paths print relative."""
    out = finished_run[1]
    image = tmp_path / "slice.png"
    save_image(image, np.full((30, 30), 100, np.uint8), "PNG")
    done = run_cli("predict", str(out), "slice.png", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning: this model was trained on ctdistill's synthetic phantoms" in done.stderr
    assert "predicted: " in done.stdout and "(1 image(s) from 1 file(s))" in done.stdout


def test_predict_reports_a_slice_whose_body_it_did_not_find(tree_run, tmp_path):
    """Training counts the crop's fallbacks; predict names them per image and warns with the count."""
    _, out = tree_run
    blank = save_image(tmp_path / "blank.png", np.full((30, 30), 90, np.uint8), "PNG")
    body = np.zeros((60, 60), np.uint8)
    body[15:45, 10:50] = 200
    found = save_image(tmp_path / "body.png", body, "PNG")
    table, failed = predict_paths(out, [blank, found])
    assert not failed and table["crop_fallback"].tolist() == ["blank", ""]
    assert any(w.startswith("the body was not found in 1 of 2 image(s) (blank 1; column crop_fallback)")
               for w in table.attrs["warnings"])


def test_predict_warns_when_the_runs_verdict_refuses_every_model(tree_run, tmp_path):
    _, out = tree_run
    copy = shutil.copytree(out, tmp_path / "run")
    verdict = json.loads((copy / "verdict.json").read_text())
    verdict["unfit"] = {"reason": "majority", "bound": 0.41, "chance": 0.5, "interval": True}
    (copy / "verdict.json").write_text(json.dumps(verdict))
    image = save_image(tmp_path / "x.png", np.full((30, 30), 90, np.uint8), "PNG")
    warnings = predict_paths(copy, [image])[0].attrs["warnings"]
    assert "the run's verdict found no model fit to deploy: its best candidate does not beat guessing (41.0% against " \
           "50.0%; see verdict.json)" in warnings


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_a_run_without_int8_deploys_and_predicts_with_its_most_compressed_mode(tree_run, tmp_path):
    """No int8, so no gate: the verdict and `predict RUN_DIR` agree on dynamic (DEPLOY_ORDER), and nobody
    claims that a gate failed."""
    root, _ = tree_run
    cfg = Config(data=str(root), teachers=("tiny",), weights="none", image_size=16, epochs=1, patience=1,
                 batch_size=8, quant_modes=("float16", "dynamic"), bootstrap_resamples=0)
    out = run(cfg, tmp_path / "r")
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["deploy"]["model"] == "tiny_student_dynamic" and verdict["gate"] is None
    assert "no_deployable" not in [kind for kind, _ in verdict["warnings"]]
    chosen, why = resolve_model(out)
    assert chosen.name == "tiny_student_dynamic.tflite" and why.startswith("dynamic: dynamic, unchecked")
