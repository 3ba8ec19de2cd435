"""The quantization safety gate, with a model built to quantize badly."""

import json

import keras
import numpy as np
import pytest

from ctdistill.models.inference import predict_keras
from ctdistill.quantize.convert import convert_all
from ctdistill.quantize.gate import run_gate


def _outlier_model(outlier: float = 5000.0) -> keras.Model:
    """Brightness classifier whose hidden layer also carries one huge, unused activation.

    Hidden units: u0 = relu(mean - 0.5), u1 = relu(0.5 - mean) (<= 0.5: the signal), u2 = 5000 * mean
    (the outlier, ignored by the output). Full int8 uses one scale for the hidden tensor, set by u2
    (a step of about 20), so u0 and u1 round to 0 and every image gets the same logits.
    """
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Flatten()(x)
    hidden = keras.layers.Dense(3, activation="relu", name="hidden")
    h = hidden(x)
    out = keras.layers.Dense(2, name="logits")
    model = keras.Model(inputs, out(h))
    w = np.zeros((64, 3), np.float32)
    w[:, 0], w[:, 1], w[:, 2] = 1 / 64, -1 / 64, outlier / 64
    hidden.set_weights([w, np.array([-0.5, 0.5, 0.0], np.float32)])
    out.set_weights([np.array([[-10, 10], [10, -10], [0, 0]], np.float32), np.zeros(2, np.float32)])
    return model


def _case(out, outlier):
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 40)
    x = np.where(y[:, None, None, None] == 1, 160, 90) + rng.integers(-20, 20, (80, 8, 8, 1))
    x = np.clip(x, 0, 255).astype(np.uint8)
    model = _outlier_model(outlier)
    assert (predict_keras(model, x).argmax(1) == y).mean() == 1.0  # the float model is perfect
    files = convert_all(model, ("int8",), x, lambda m: out / f"m_{m}.tflite")
    return model, x, y, files, out


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return _case(tmp_path_factory.mktemp("gate"), 5000.0)


def test_gate_rejects_collapsed_int8_and_falls_back_to_a_mode_that_passes(case):
    model, x, y, files, out = case
    decision, attempts = run_gate(model, files, x, x, y, 1.0, lambda m: out / f"m_{m}.tflite")
    first = attempts[0]
    assert first.mode == "int8" and not first.passed and first.collapsed and first.drop_points == pytest.approx(50)
    assert decision in ("int8-mixed", "16x8", "float16") and attempts[-1].mode == decision and attempts[-1].passed
    assert [a.mode for a in attempts] == ["int8", "int8-mixed", "16x8", "float16"][:len(attempts)]
    if len(attempts) > 1:
        assert len(attempts[1].float_layers) >= 1  # the debugger named the layers it kept in float
    assert (out / attempts[-1].file).is_file()


def test_gate_accepts_int8_when_it_keeps_accuracy(tmp_path):
    model, x, y, files, out = _case(tmp_path, outlier=0.0)  # no outlier: int8 is fine
    decision, attempts = run_gate(model, files, x, x, y, 1.0, lambda m: out / f"m_{m}.tflite")
    assert decision == "int8" and len(attempts) == 1
    assert attempts[0].passed and not attempts[0].collapsed and attempts[0].drop_points <= 1.0


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_run_records_the_gate_and_predict_uses_its_choice(tmp_path, tiny_teacher):
    from ctdistill.config import Config
    from ctdistill.predict import resolve_model
    from ctdistill.run.pipeline import run

    # A negative limit cannot be met by a smaller model that is not exactly as good: force the fallbacks.
    cfg = Config(teachers=(tiny_teacher,), weights="none", image_size=16, epochs=2, batch_size=32,
                 synthetic_per_class=(8, 3, 4), quant_modes=("int8",), max_quant_drop=0.0, bootstrap_resamples=0)
    out = run(cfg, tmp_path / "r")
    gate = json.loads((out / "quant_gate.json").read_text())[tiny_teacher]
    assert gate["attempts"][0]["mode"] == "int8" and gate["max_drop_points"] == 0.0
    chosen = gate["decision"]
    card = json.loads((out / f"{tiny_teacher}_student_int8.tflite.json").read_text())
    assert card["safety_gate"]["decision"] == chosen and card["safety_gate"]["chosen"] == (chosen == "int8")
    if chosen != "none":
        assert resolve_model(out)[0].name == f"{tiny_teacher}_student_{chosen}.tflite"
