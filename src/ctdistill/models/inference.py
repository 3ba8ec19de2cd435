"""Running a model: a Keras model or a ``.tflite`` file in, class probabilities out.

The one place that loads a saved model (``load_model``: LiteRT for ``.tflite``, Keras in safe mode
otherwise) and turns a model into logits or probabilities for a batch of images. Nothing here
imports Keras or TensorFlow at module level: ``predict`` on a ``.tflite`` file needs LiteRT only.

Example:
    >>> runner = load_model(Path("runs/ct1/vgg16_student_int8.tflite"))   # doctest: +SKIP
    >>> proba = predict_tflite(runner, images)                            # doctest: +SKIP
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from scipy.special import softmax

from ctdistill.core.errors import CtdistillError
from ctdistill.core.quiet import quiet_stderr


def predict_keras(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of a logits-output Keras model."""
    return softmax(keras_logits(model, x, batch_size), axis=1)


def keras_logits(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's outputs, batch by batch with ``predict_on_batch``.

    ``Model.predict`` on NumPy arrays builds a parallel ``tf.data`` map, which TensorFlow's
    deterministic mode rewrites with a spurious C++ error line on every call.
    """
    x = x.astype(np.float32, copy=False)
    if not len(x):
        return np.zeros((0, model.outputs[0].shape[-1]), np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


def predict_tflite(path, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of a ``.tflite`` model, batched (not one image per invoke)."""
    return LiteRTModel(path).predict_proba(x, batch_size)


def check_model_file(model_file: Path) -> None:
    """Refuse, in one line naming the file, a ``.tflite`` LiteRT cannot open or a ``.keras`` that is not
    a zip archive (what ``predict`` and ``bench`` check before any work; Keras is not imported)."""
    if model_file.suffix == ".tflite":
        try:
            LiteRTModel(model_file)
        except Exception as exc:  # LiteRT reports a corrupt flatbuffer as ValueError or RuntimeError
            raise CtdistillError(f"{model_file}: not a valid .tflite model ({' '.join(str(exc).split())})") from None
    elif model_file.suffix == ".keras" and not zipfile.is_zipfile(model_file):  # Keras would say "File not found"
        raise CtdistillError(f"{model_file}: not a valid .keras file (a .keras file is a zip archive; this one is "
                             "truncated or something else)")


def load_model(model_file: Path):
    """A ``.tflite`` path (run by LiteRT), or a Keras model loaded in safe mode (no Lambda code)."""
    check_model_file(model_file)
    if model_file.suffix == ".tflite":
        return model_file
    from ctdistill.core.quiet import import_backend_quietly

    import_backend_quietly()
    import keras

    import ctdistill.models.teachers  # noqa: F401  (registers the teachers' preprocessing layer)

    try:
        return keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        if "Lambda" in str(exc):  # safe mode's refusal: a Lambda layer is pickled Python code
            raise CtdistillError(f"{model_file}: refused: it contains a Lambda layer (arbitrary Python code); "
                                 "ctdistill loads Keras models in safe mode only") from None
        raise CtdistillError(f"{model_file}: cannot load the Keras model safely ({exc})") from None


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
