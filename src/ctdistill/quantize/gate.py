"""The quantization safety gate (``max_quant_drop``): full int8 only when it keeps its accuracy.

After full-int8 conversion the gate compares the int8 student with its float student on the
*validation* split (never test). If int8 loses more than ``max_quant_drop`` accuracy points:

1. ``int8-mixed``: LiteRT's quantization debugger measures each layer's quantization error
   (root-mean-square error divided by the quantization step, as in the LiteRT debugger guide);
   the worst layers are kept in float (``denylisted_nodes``) and the model is converted again;
2. ``16x8``: int16 activations with int8 weights;
3. ``float16``: float16 weights (always within a fraction of a point of float).

The first that passes is the gate's decision; every attempt is recorded (``quant_gate.json``).
The gate also fails a model whose predictions collapse to one class.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ctdistill.core.quiet import quiet_native_output
from ctdistill.models.inference import LiteRTModel, predict_keras
from ctdistill.quantize.convert import convert_all, representative_samples, saved_model
from ctdistill.run.folder import atomic_path

log = logging.getLogger("ctdistill")
FLOAT_LAYERS = 3  # layers kept in float by the int8-mixed attempt (the worst by RMSE / scale)
FALLBACKS = ("int8-mixed", "16x8", "float16")


@dataclasses.dataclass
class Attempt:
    mode: str
    valid_accuracy: float
    drop_points: float
    collapsed: bool
    passed: bool
    file: str
    float_layers: list[str] = dataclasses.field(default_factory=list)


def check(mode: str, path: Path, valid_x: np.ndarray, valid_y: np.ndarray, float_pred: np.ndarray,
          max_drop: float) -> Attempt:
    """Score one quantized file on the validation split against the gate (``float_pred``: the float
    student's predicted classes on the same images)."""
    predicted = LiteRTModel(path).predict_proba(valid_x.astype(np.float32)).argmax(axis=1)
    accuracy = float(np.mean(predicted == valid_y))
    drop = 100.0 * (float(np.mean(float_pred == valid_y)) - accuracy)
    # One class for everything is the quantizer's failure only if the float model told classes apart.
    collapsed = len(np.unique(predicted)) == 1 and len(np.unique(float_pred)) > 1
    return Attempt(mode, accuracy, round(drop, 4), collapsed, drop <= max_drop and not collapsed, path.name)


def worst_layers(model, calibration: np.ndarray, n: int) -> list[str]:
    """Tensor names of the ``n`` layers with the largest int8 error (RMSE / scale), from the LiteRT debugger."""
    import tensorflow as tf

    samples = representative_samples(calibration)
    with saved_model(model) as folder, quiet_native_output():  # the debugger converts on construction
        debugger = tf.lite.experimental.QuantizationDebugger(converter=_converter(tf, folder, samples),
                                                             debug_dataset=_dataset(samples))
        debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    stats = pd.read_csv(buffer)
    stats["rmse_per_step"] = np.sqrt(stats["mean_squared_error"]) / stats["scale"]
    return stats.sort_values("rmse_per_step", ascending=False)["tensor_name"].head(n).tolist()


def convert_mixed(model, calibration: np.ndarray, float_layers: list[str], path: Path) -> Path:
    """Int8 with ``float_layers`` (tensor names) kept in float; float input and output."""
    import tensorflow as tf

    samples = representative_samples(calibration)
    with saved_model(model) as folder, quiet_native_output():  # the debugger converts on construction
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=_converter(tf, folder, samples),
                                                             debug_dataset=_dataset(samples), debug_options=options)
        blob = debugger.get_nondebug_quantized_model()
    with atomic_path(path) as part:
        part.write_bytes(blob)
    return path


def run_gate(model, files: dict[str, Path], calibration: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray,
             max_drop: float, out_path: Callable[[str], Path]) -> tuple[str, list[Attempt]]:
    """Check full int8; fall back in ``FALLBACKS`` order until one passes. Returns (decision, attempts).

    Args:
        model: the float Keras student.
        files: already converted files by mode (must include ``int8``; others are reused).
        calibration: training images for calibration.
        valid_x, valid_y: the validation split the gate judges on (the float student is scored on it too).
        max_drop: the largest accepted loss, in accuracy points.
        out_path: maps a mode to the file a new conversion is written to.
    """
    float_pred = predict_keras(model, valid_x).argmax(axis=1)
    attempts = [check("int8", files["int8"], valid_x, valid_y, float_pred, max_drop)]
    for mode in FALLBACKS:
        if attempts[-1].passed:
            break
        log.warning("quantization gate: %s loses %.1f points on valid (limit %.1f)%s; trying %s", attempts[-1].mode,
                    attempts[-1].drop_points, max_drop, ", predictions collapsed" if attempts[-1].collapsed else "",
                    mode)
        layers = []
        if mode == "int8-mixed":
            layers = worst_layers(model, calibration, FLOAT_LAYERS)
            path = convert_mixed(model, calibration, layers, out_path(mode))
        elif mode in files:
            path = files[mode]
        else:
            path = convert_all(model, (mode,), calibration, out_path)[mode]
        attempts.append(dataclasses.replace(check(mode, path, valid_x, valid_y, float_pred, max_drop),
                                            float_layers=layers))
    decision = next((a.mode for a in attempts if a.passed), "none")
    log.info("quantization gate: %s (%s)", decision,
             "; ".join(f"{a.mode}: valid {100 * a.valid_accuracy:.1f}% ({a.drop_points:+.1f} pts drop)"
                       for a in attempts))
    return decision, attempts


def _converter(tf, folder: str, samples: np.ndarray):
    converter = tf.lite.TFLiteConverter.from_saved_model(folder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _dataset(samples)
    return converter


def _dataset(samples: np.ndarray):
    def generate():
        for sample in samples:
            yield [sample[None]]

    return generate
