"""Where a model looks: occlusion maps of a drawn model that sees one corner, the int8 file against its
float student, the report's section and ``predict --explain`` (drawn data only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from test_predict import tree_run  # noqa: F401  (the module's run on a drawn tree, reused)

from ctdistill.assess.saliency import border_share, explain_deployed, occlusion_map
from ctdistill.models.inference import predict_keras, predict_tflite


def corner_model(side: int = 16):
    """A Keras classifier whose answer depends only on the top-left quarter of its input."""
    import keras

    inputs = keras.Input((side, side, 3))
    corner = keras.layers.Cropping2D(((0, side // 2), (0, side // 2)))(inputs)
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(corner)))
    keras.utils.set_random_seed(0)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def drawn(seed: int, side: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)


def test_a_model_that_sees_one_corner_gets_a_map_on_that_corner_from_keras_and_from_its_int8_file(tmp_path):
    from ctdistill.quantize.convert import convert_all

    model = corner_model()
    calibration = np.stack([drawn(s) for s in range(16)])
    path = convert_all(model, ("int8",), calibration, lambda m: tmp_path / f"m_{m}.tflite")["int8"]
    agreement = []
    for seed in range(20, 26):
        image = drawn(seed)
        label = int(predict_keras(model, image[None].astype(np.float32)).argmax())
        maps = [occlusion_map(lambda x: predict_keras(model, x.astype(np.float32)), image, label, 4, 2),
                occlusion_map(lambda x: predict_tflite(path, x.astype(np.float32)), image, label, 4, 2)]
        for heat in maps:
            assert np.abs(heat[10:, 10:]).max() == 0  # patches that never touch the corner change nothing
            assert np.abs(heat[:8, :8]).mean() > 0
        agreement.append(np.corrcoef(maps[0].ravel(), maps[1].ravel())[0, 1])
    assert np.mean(agreement) > 0.8, agreement  # the int8 file looks where its float model looks


def test_border_share_against_an_even_map():
    even = np.ones((32, 32))
    share, area = border_share(even)
    assert share == pytest.approx(area) and 0.4 < area < 0.5
    inner = np.zeros((32, 32))
    inner[12:20, 12:20] = 1
    assert border_share(inner)[0] == 0.0


def test_the_report_shows_where_the_deployed_model_looks_and_predict_explains(tree_run, tmp_path):  # noqa: F811
    root, out = tree_run
    deploy = json.loads((out / "verdict.json").read_text())["deploy"]
    seen = explain_deployed(out, deploy, ["adeno", "normal"])
    assert seen["read"] == 8 and set(seen["mean"]) == {"adeno", "normal"}
    assert {e.kind for e in seen["examples"]} <= {"correct", "wrong"} and seen["examples"][0].heat.shape == (16, 16)
    page = (out / "report.md").read_text()
    assert "Where the deployed model looks (occlusion sensitivity" in page and "(Plots/saliency_mean.png)" in page
    assert (out / "Plots" / "saliency_examples.png").stat().st_size > 1000
    explained = tmp_path / "maps"
    done = run_cli("predict", out, root / "test", "--explain", explained, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list(explained.glob("*.png"))) == 8 and "explained" in done.stdout
    again = run_cli("predict", out, root / "test", "--explain", explained, timeout=300)
    assert again.returncode == 2 and "--explain needs a new or empty folder" in again.stderr


def test_a_run_on_the_phantoms_has_no_files_to_explain_and_its_report_says_nothing_of_it(finished_run):
    """The phantoms were never files: no saliency, and no crash (the plain user install's smoke run)."""
    _, out = finished_run
    deploy = json.loads((out / "verdict.json").read_text())["deploy"]
    assert deploy is not None and explain_deployed(out, deploy, ["cavity", "mass", "nodule", "normal"]) is None
    assert "Where the deployed model looks" not in (out / "report.md").read_text()

