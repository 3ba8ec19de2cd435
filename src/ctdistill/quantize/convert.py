"""Post-training quantization to LiteRT (``.tflite``) (the LiteRT runner is ``inference.LiteRTModel``).

Modes are table entries (``QUANT_MODES``: name -> how to configure the converter):

* ``dynamic``: dynamic-range quantization, int8 weights, float activations (the seed's mode);
* ``float16``: float16 weights;
* ``int8``: full-integer quantization calibrated on training images, int8 input and output;
* ``16x8``: int16 activations and int8 weights, calibrated the same way (float input and output):
  more activation precision than ``int8`` where a layer's range is wide, at some speed cost.

The Keras model is exported once as a SavedModel (quietly, see the stack notes) and converted
once per mode. TensorFlow is imported only here, for conversion; running a ``.tflite`` needs only
``ai-edge-litert``. A model trained on another Keras backend (JAX) is exported from its saved
``.keras`` file in a TensorFlow-backend process (the format is backend-neutral; a JAX model's own
variables, such as dropout's uint32 seed state, cannot be converted). Without TensorFlow or LiteRT
installed (:func:`can_export` is False) a run trains everything and leaves quantization for
``ctdistill quantize RUN_DIR`` on a machine that has them.

Example:
    >>> files = convert_all(student, ("int8",), x_train, lambda m: Path(f"s_{m}.tflite"))   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ctdistill.core.quiet import quiet_stderr
from ctdistill.run.folder import atomic_path


def _dynamic(converter, tf, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _float16(converter, tf, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _int8(converter, tf, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


def _int16x8(converter, tf, representative) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


QUANT_MODES: dict[str, Callable] = {"dynamic": _dynamic, "float16": _float16, "int8": _int8, "16x8": _int16x8}

CALIBRATION_IMAGES = 200  # enough for stable activation ranges; conversion time grows with it


def representative_samples(calibration: np.ndarray) -> np.ndarray:
    """The (seeded) calibration images: at most ``CALIBRATION_IMAGES`` training images as float32."""
    pick = np.random.default_rng(0).permutation(len(calibration))[:CALIBRATION_IMAGES]
    return calibration[pick].astype(np.float32)


EXPORT_PACKAGES = ("tensorflow", "ai_edge_litert")  # conversion, and running the converted files


def can_export() -> bool:
    """True when TensorFlow (conversion) and LiteRT (evaluation of the files) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in EXPORT_PACKAGES)


@contextlib.contextmanager
def saved_model(model) -> Iterator[str]:
    """Export a Keras model once as a temporary SavedModel (what the converter reads).

    On the TensorFlow backend the model exports itself; on any other backend it is saved as
    ``.keras`` and exported by a TensorFlow-backend subprocess (:func:`export_keras_file`).
    """
    import keras

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="ctdistill-export-") as tmp:
        folder = os.path.join(tmp, "saved_model")
        if keras.backend.backend() == "tensorflow":
            model.export(folder, format="tf_saved_model", verbose=False)
        else:
            source = os.path.join(tmp, "model.keras")
            keras.Model(model.inputs, model.outputs, name=model.name).save(source)
            env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
            done = subprocess.run([sys.executable, "-m", "ctdistill.quantize.convert", source, folder], env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"exporting {model.name} in a TensorFlow process failed: "
                                   f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        yield folder


def export_keras_file(source: str, folder: str) -> None:
    """Load a ``.keras`` file (safe mode) and export it as a SavedModel; run on the TensorFlow backend."""
    import keras

    import ctdistill.models.teachers  # noqa: F401  (registers the teachers' preprocessing layer)

    model = keras.saving.load_model(source, compile=False, safe_mode=True)
    model.export(folder, format="tf_saved_model", verbose=False)


def convert_all(model, modes: tuple[str, ...], calibration: np.ndarray,
                out_path: Callable[[str], Path]) -> dict[str, Path]:
    """Convert a Keras model to one ``.tflite`` per mode.

    Args:
        model: the float Keras model (raw 0..255 input, logits output).
        modes: keys of ``QUANT_MODES``.
        calibration: uint8 training images for the int8 representative dataset.
        out_path: maps a mode name to its output file.

    Returns:
        ``{mode: path}`` of the written files.
    """
    import tensorflow as tf

    samples = representative_samples(calibration)

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[None]]

    written = {}
    with saved_model(model) as folder:
        for mode in modes:
            converter = tf.lite.TFLiteConverter.from_saved_model(folder)
            QUANT_MODES[mode](converter, tf, representative)
            with quiet_stderr():  # the converter's C++ calibration prints status lines to fd 2
                blob = converter.convert()
            path = out_path(mode)
            with atomic_path(path) as part:
                part.write_bytes(blob)
            written[mode] = path
    return written


if __name__ == "__main__":  # python -m ctdistill.quantize.convert MODEL.keras SAVED_MODEL_DIR (see saved_model)
    from ctdistill.core.quiet import import_backend_quietly

    import_backend_quietly()  # TensorFlow's start-up lines stay off the terminal
    export_keras_file(sys.argv[1], sys.argv[2])
