"""The fit loop: fitting with early stopping on the validation split, and the scratch student.

One function fits any Keras model (teacher, distiller, scratch student) the same way (the teachers'
phases are ``training.teachers``), so every
model gets the same budget and the same selection rule: at most ``epochs`` epochs, stop when the
monitored validation metric has not improved for ``patience`` epochs, restore the best weights.
The test split is never seen here.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import pandas as pd

from ctdistill.config import Config
from ctdistill.core.progress import EpochProgress
from ctdistill.data import Dataset
from ctdistill.models.student import build_student
from ctdistill.training.recipe import (
    accuracy_metric,
    make_augmenter,
    make_loss,
    make_optimizer,
    set_bn_momentum,
    steps_per_epoch,
    training_batches,
    validation_batches,
)

log = logging.getLogger(__name__)


class EpochLog(keras.callbacks.Callback):
    """Shows the stage's progress (``progress.EpochProgress``: a bar on a terminal, a line every few
    epochs otherwise) and keeps each epoch's wall time (``seconds``: the first epoch's includes
    compiling the training step, which the log says before it starts)."""

    def __init__(self, label: str, epochs: int):
        super().__init__()
        self.label, self.epochs = label, epochs
        self.seconds: list[float] = []
        self.shown: EpochProgress | None = None

    def on_train_begin(self, logs=None):
        log.info("[%s] compiling the training step: the first epoch is slower", self.label)
        self.shown = EpochProgress(self.label, self.epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._t0, 3))
        self.shown.epoch(epoch, self.seconds[-1], logs)

    def on_train_end(self, logs=None):
        self.shown.close()


class Augmented(keras.Model):
    """Trains ``model`` on augmented views: the augmentation layers run inside the training step
    (compiled with it, on the accelerator, on any backend); with ``training=False`` (validation,
    inference) they pass images through unchanged. The wrapped model holds every trained weight.
    """

    def __init__(self, model: keras.Model, augmenter: keras.Model | None, **kwargs):
        super().__init__(name=f"{model.name}_training", **kwargs)
        self.inner, self.augmenter = model, augmenter

    def call(self, inputs, training=None):
        if self.augmenter is not None:
            inputs = self.augmenter(inputs, training=training)
        return self.inner(inputs, training=training)


def compile_classifier(model: keras.Model, cfg: Config, learning_rate: float, y_train: np.ndarray,
                       epochs: int) -> Augmented:
    """Compile ``model`` with the shared recipe: the configured augmentation in the training step,
    optimiser and schedule, cross-entropy on logits (the softmax lives in the loss, and only there),
    one-hot labels (for label smoothing). Returns the model to ``fit``; ``model`` is trained through it."""
    set_bn_momentum(model, cfg.bn_momentum)
    trainer = Augmented(model, make_augmenter(cfg, cfg.seed))
    trainer.compile(optimizer=make_optimizer(cfg, learning_rate, steps_per_epoch(y_train, cfg), epochs),
                    loss=make_loss(cfg), metrics=[accuracy_metric()])
    return trainer


def fit(model: keras.Model, data: Dataset, cfg: Config, label: str, epochs: int | None = None,
        inputs: dict | None = None, train=None) -> pd.DataFrame:
    """Fit a compiled model on train (augmented, resampled as configured), select on valid.

    Args:
        model: what :func:`compile_classifier` or ``ctdistill.training.distill.make_distiller`` returned.
        data: the dataset; only ``train`` and ``valid`` are used.
        cfg: supplies the recipe, batch size, epochs, patience and the monitored metric.
        label: name used in the progress log.
        epochs: maximum epochs (default ``cfg.epochs``); the same number the optimiser was compiled for.
        inputs: ``{"train": x, "valid": x}`` model inputs to use instead of the images (labels still
            come from ``data``), e.g. images with cached teacher logits.
        train: ready training batches to use instead (``recipe.Batches``), e.g. a pool of augmented
            views (``ctdistill.training.distill``).

    Returns:
        DataFrame with one row per epoch (``epoch`` plus Keras' logged metrics) and a ``best``
        column marking the restored epoch.
    """
    epochs = epochs or cfg.epochs
    # Selection starts after the warm-up: an epoch-1 model must not win because the others are noisy.
    stop = keras.callbacks.EarlyStopping(monitor=cfg.monitor, patience=cfg.patience, restore_best_weights=True,
                                         mode="max" if "acc" in cfg.monitor else "min",
                                         start_from_epoch=min(cfg.warmup_epochs, epochs - 1))
    t0 = time.perf_counter()
    inputs = inputs or {"train": as_float(data.train.x), "valid": as_float(data.valid.x)}
    train = train if train is not None else training_batches(inputs["train"], data.train.y, data.n_classes, cfg)
    valid = validation_batches(inputs["valid"], data.valid.y, data.n_classes, cfg.batch_size)
    clock = EpochLog(label, epochs)
    hist = model.fit(train, validation_data=valid, epochs=epochs, verbose=0, callbacks=[stop, clock],
                     shuffle=False)  # Batches shuffles the rows; fit would only reorder whole batches
    frame = pd.DataFrame(hist.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    frame["seconds"] = clock.seconds[:len(frame)]
    frame["best"] = frame["epoch"] == stop.best_epoch + 1
    log.info("[%s] %d epochs in %.1fs; restored epoch %d (%s %.4f)", label, len(frame), time.perf_counter() - t0,
             stop.best_epoch + 1, cfg.monitor, stop.best if stop.best is not None else float("nan"))
    return frame


def as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, copy=False)


def new_student(data: Dataset, cfg: Config, name: str) -> keras.Model:
    return build_student(data.input_shape, data.n_classes, name=name, head=cfg.student, bn_momentum=cfg.bn_momentum)


def train_scratch(data: Dataset, cfg: Config, label: str) -> tuple[keras.Model, pd.DataFrame]:
    """The no-teacher baseline: same student, same recipe, same budget and selection rule."""
    student = new_student(data, cfg, "scratch_student")
    trainer = compile_classifier(student, cfg, cfg.learning_rate, data.train.y, cfg.epochs)
    history = fit(trainer, data, cfg, f"{label} scratch")
    return student, history
