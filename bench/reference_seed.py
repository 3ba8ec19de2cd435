"""The seed's procedure, for comparison only (``bench/pipeline_runs.py``); not part of ctdistill.

What the seed's README describes, with its bugs fixed so that its accuracy means something:

* per teacher: fine-tune the teacher for a fixed number of epochs (Adam, batch 256, no early
  stopping, the last epoch kept), validating on the valid split (the seed validated on test);
* distil a fresh student with the teacher run forward on every batch, for the same fixed epochs
  (Hinton loss with the T^2 factor and one softmax: ``keras.distillation``, which has both);
* train a scratch student per teacher (the seed trained one in each teacher's loop);
* convert the student to four TFLite models (float32, dynamic range, float16, int8) and evaluate
  each one image per interpreter call.

Same teacher and student architectures as ctdistill (``build_teacher``, ``build_student``), same
data, temperature, alpha, batch size, learning rates and TensorFlow settings (oneDNN on, which
alone makes teacher epochs ~2.4x faster on this CPU: BENCHMARKS "Measured decisions"), so the
comparison is about the procedure.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

# isort: off
import ctdistill  # noqa: F401  (first: the same TensorFlow settings, oneDNN on, as ctdistill gets)
import keras
import numpy as np

from ctdistill.config import Config
from ctdistill.data import Dataset
from ctdistill.models.inference import LiteRTModel
from ctdistill.models.student import build_student
from ctdistill.models.teachers import build_teacher
from ctdistill.quantize.convert import convert_all
from ctdistill.training.recipe import one_hot
from ctdistill.training.fit import as_float
# isort: on

MODES = ("float32", "dynamic", "float16", "int8")


def load_inputs(cfg: Config) -> Dataset:
    """The seed's procedure's data: the dataset's own splits at ``cfg``'s size, channels and crop (the same
    images ctdistill loads before its audit; ``bench/pipeline_runs.py --crop`` frames both sides alike)."""
    from ctdistill.data import load_dataset  # looked up at call time: a test spies on it

    return load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, crop=cfg.crop)


def fit_fixed(model, x, y, xv, yv, cfg: Config, lr: float, epochs: int, callbacks=()) -> None:
    """The seed's training: Adam at ``lr``, ``epochs`` epochs, the last kept (``callbacks``: a bench's clocks)."""
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=cfg.batch_size, verbose=0,
              callbacks=list(callbacks))


def fit_on_splits(model, data: Dataset, cfg: Config, lr: float, epochs: int, callbacks=()) -> None:
    """:func:`fit_fixed` on a dataset's train and valid splits (for the bench scripts that train one model)."""
    fit_fixed(model, as_float(data.train.x), one_hot(data.train.y, data.n_classes), as_float(data.valid.x),
              one_hot(data.valid.y, data.n_classes), cfg, lr, epochs, callbacks)


def keras_accuracy(model, x, y) -> float:
    return float((np.asarray(model.predict(x, batch_size=256, verbose=0)).argmax(1) == y).mean())


def tflite_accuracy_one_by_one(path: Path, x_uint8: np.ndarray, y: np.ndarray) -> float:
    """The seed's evaluation loop: one image per ``invoke``."""
    model = LiteRTModel(path)
    predictions = [int(model.logits(x_uint8[i:i + 1], batch_size=1).argmax()) for i in range(len(x_uint8))]
    return float((np.array(predictions) == y).mean())


def run_reference(data: Dataset, cfg: Config, teachers: tuple[str, ...], epochs: int,
                  teacher_epochs: int) -> dict:
    """Run the seed's procedure; returns stage seconds and test accuracies per teacher."""
    x, xv, xt = as_float(data.train.x), as_float(data.valid.x), as_float(data.test.x)
    y, yv = one_hot(data.train.y, data.n_classes), one_hot(data.valid.y, data.n_classes)
    times = dict.fromkeys(("teacher", "distill", "scratch", "quantize", "evaluate"), 0.0)
    results = {}
    for name in teachers:
        keras.utils.set_random_seed(cfg.seed)
        clock = time.perf_counter()
        teacher = build_teacher(name, data.input_shape, data.n_classes, weights=None)
        fit_fixed(teacher, x, y, xv, yv, cfg, cfg.finetune_learning_rate, teacher_epochs)
        times["teacher"] += time.perf_counter() - clock

        clock = time.perf_counter()
        distiller = keras.distillation.Distiller(
            teacher=teacher, student=build_student(data.input_shape, data.n_classes),
            distillation_losses=keras.distillation.LogitsDistillation(temperature=cfg.temperature,
                                                                      loss=keras.losses.KLDivergence()),
            student_loss_weight=cfg.alpha)
        fit_fixed(distiller, x, y, xv, yv, cfg, cfg.learning_rate, epochs)
        student = distiller.student
        times["distill"] += time.perf_counter() - clock

        clock = time.perf_counter()
        scratch = build_student(data.input_shape, data.n_classes)
        fit_fixed(scratch, x, y, xv, yv, cfg, cfg.learning_rate, epochs)
        times["scratch"] += time.perf_counter() - clock

        clock = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            files = convert_all(student, MODES[1:], data.train.x, lambda m: Path(tmp) / f"{m}.tflite")
            files["float32"] = _float32_tflite(student, Path(tmp) / "float32.tflite")
            times["quantize"] += time.perf_counter() - clock
            clock = time.perf_counter()
            row = {"teacher": keras_accuracy(teacher, xt, data.test.y),
                   "student": keras_accuracy(student, xt, data.test.y),
                   "scratch": keras_accuracy(scratch, xt, data.test.y)}
            row.update({f"student_{m}": tflite_accuracy_one_by_one(files[m], data.test.x, data.test.y) for m in MODES})
            times["evaluate"] += time.perf_counter() - clock
        results[name] = row
    return {"seconds": {k: round(v, 1) for k, v in times.items()}, "accuracy": results}


def _float32_tflite(model, path: Path) -> Path:
    """A plain float32 conversion (no optimisation): the seed's "full precision" TFLite model."""
    import tensorflow as tf

    from ctdistill.quantize.convert import saved_model

    with saved_model(model) as folder:
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(folder).convert())
    return path
