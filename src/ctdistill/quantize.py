"""Post-training quantization to LiteRT (``.tflite``) and a batched LiteRT runner.

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
from scipy.special import softmax

from ctdistill.quiet import quiet_stderr
from ctdistill.runfolder import atomic_path


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
            done = subprocess.run([sys.executable, "-m", "ctdistill.quantize", source, folder], env=env,
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


def convert_all(model, modes: tuple[str, ...], calibration: np.ndarray, out_path: Callable[[str], Path]) -> dict[str, Path]:
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


class LiteRTModel:
    """Runs a ``.tflite`` classifier on batches of raw images, handling int8 (de)quantization.

    Example:
        >>> m = LiteRTModel("resnet50_student_int8.tflite")      # doctest: +SKIP
        >>> probs = m.predict_proba(images_uint8)                # doctest: +SKIP
    """

    def __init__(self, path: str | Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        with quiet_stderr():
            # num_threads=None behaves like one thread (stack notes): ask for all cores explicitly.
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads or os.cpu_count() or 1)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch = None

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits for raw images ``x`` (N, H, W, C), computed ``batch_size`` images per invoke."""
        return np.concatenate([self._run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return softmax(self.logits(x, batch_size), axis=1)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._batch != len(batch):
            self.interpreter.resize_tensor_input(self.input["index"], [len(batch), *batch.shape[1:]])
            with quiet_stderr():  # the delegate banner appears when tensors are first allocated
                self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], _quantize(batch.astype(np.float32), self.input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * scale


if __name__ == "__main__":  # python -m ctdistill.quantize MODEL.keras SAVED_MODEL_DIR (see saved_model)
    from ctdistill.quiet import import_backend_quietly

    import_backend_quietly()  # TensorFlow's start-up lines stay off the terminal
    export_keras_file(sys.argv[1], sys.argv[2])
