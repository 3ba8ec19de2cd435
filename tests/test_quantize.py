"""LiteRT export: every mode converts, runs batched, and agrees with the float model."""

import numpy as np
import pytest

from ctdistill.data.synthetic import load_synthetic
from ctdistill.models.inference import LiteRTModel, predict_keras
from ctdistill.models.student import build_student
from ctdistill.quantize.convert import QUANT_MODES, convert_all


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    data = load_synthetic(16, 3, (6, 2, 6), seed=0)
    student = build_student((16, 16, 3), 4)
    out = tmp_path_factory.mktemp("tflite")
    files = convert_all(student, tuple(QUANT_MODES), data.train.x, lambda m: out / f"s_{m}.tflite")
    return student, data, files


def test_every_mode_writes_a_smaller_file(converted):
    student, _, files = converted
    assert set(files) == {"dynamic", "float16", "int8", "16x8"}
    float_bytes = student.count_params() * 4
    for mode, path in files.items():
        assert path.stat().st_size < float_bytes, mode
    assert files["int8"].stat().st_size < files["float16"].stat().st_size


def test_int8_model_has_int8_input_and_output(converted):
    _, _, files = converted
    model = LiteRTModel(files["int8"])
    assert model.input["dtype"] == np.int8 and model.output["dtype"] == np.int8


@pytest.mark.parametrize("mode", sorted(QUANT_MODES))
def test_quantized_probabilities_track_the_float_model(converted, mode):
    student, data, files = converted
    reference = predict_keras(student, data.test.x)
    got = LiteRTModel(files[mode]).predict_proba(data.test.x, batch_size=5)  # several batch sizes
    assert got.shape == reference.shape
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(got - reference).max() < {"int8": 0.15, "16x8": 0.05}.get(mode, 0.02)


def test_16x8_model_keeps_float_io_and_int16_activations(converted):
    _, _, files = converted
    model = LiteRTModel(files["16x8"])
    assert model.input["dtype"] == np.float32 and model.output["dtype"] == np.float32
    dtypes = {d["dtype"] for d in model.interpreter.get_tensor_details()}
    assert np.int16 in dtypes and np.int8 in dtypes


def test_batched_equals_one_at_a_time(converted):
    _, data, files = converted
    model = LiteRTModel(files["dynamic"])
    batched = model.logits(data.test.x, batch_size=256)
    single = np.concatenate([model.logits(data.test.x[i:i + 1]) for i in range(len(data.test.x))])
    assert np.allclose(batched, single, atol=1e-4)
