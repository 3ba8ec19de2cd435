"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

Built on ``keras.distillation``: ``Distiller`` with ``LogitsDistillation`` computes

    loss = alpha * CE(y, softmax(s)) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

where ``s``/``t`` are student/teacher *logits* (softmax applied once, inside the loss), ``T`` the
temperature and ``alpha`` the weight of the hard-label loss (``student_loss_weight``). The ``T^2``
factor keeps the soft-target gradients on the same scale as the hard-label ones when T changes
(Hinton et al., section 2); ``LogitsDistillation`` applies it for the KL loss.

The scratch baseline trains the identical student with the identical budget and no teacher.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd

from ctdistill.config import Config
from ctdistill.data import Dataset
from ctdistill.evaluate import keras_logits
from ctdistill.models.student import build_student
from ctdistill.recipe import (accuracy_metric, make_augmenter, make_loss, make_optimizer, set_bn_momentum,
                              steps_per_epoch, training_stream)
from ctdistill.train import as_float, compile_classifier, fit


class CachedTeacherDistiller(keras.distillation.Distiller):
    """A ``Distiller`` that can take the teacher's logits precomputed instead of running the teacher.

    Without augmentation the frozen teacher (inference mode) maps each training image to the same
    logits in every epoch, so running it on every batch, as the seed did, repeats identical work.
    Feed ``x = {"image": images, "teacher_logits": logits}`` to use cached logits; plain image
    input falls back to running the teacher. The loss is the same either way (tested).
    """

    def call(self, inputs, training=None, **kwargs):
        images = inputs["image"] if isinstance(inputs, dict) else inputs
        return self.student(images, training=training, **kwargs)

    def _extract_all_teacher_features(self, x):
        if isinstance(x, dict):
            return {"final_output": x["teacher_logits"]}
        return super()._extract_all_teacher_features(x)


def make_distiller(teacher: keras.Model, student: keras.Model, cfg: Config, y_train: np.ndarray,
                   epochs: int | None = None) -> CachedTeacherDistiller:
    """A ``Distiller`` with the loss above, compiled with the shared recipe (the teacher is frozen).

    Args:
        teacher, student: models mapping images to logits.
        cfg: temperature, alpha and the recipe (optimiser, schedule, label smoothing, BN momentum).
        y_train: training labels (the schedule's steps per epoch depend on their count).
        epochs: the schedule's length (default ``cfg.epochs``).

    Example:
        >>> d = make_distiller(teacher, build_student((32, 32, 3), 4), Config(), y)   # doctest: +SKIP
    """
    set_bn_momentum(student, cfg.bn_momentum)
    distiller = CachedTeacherDistiller(
        teacher=teacher,
        student=student,
        # Pass a KLDivergence *instance*: with the default string "kl_divergence" Keras 3.15.1 resolves a
        # plain function, misses its softmax + T^2 branch and takes KL of raw scaled logits (caught by
        # tests/test_distill_loss.py: 8.93 instead of 1.02 on the worked example).
        distillation_losses=keras.distillation.LogitsDistillation(temperature=cfg.temperature,
                                                                  loss=keras.losses.KLDivergence()),
        student_loss_weight=cfg.alpha,
    )
    distiller.compile(optimizer=make_optimizer(cfg, cfg.learning_rate, steps_per_epoch(y_train, cfg),
                                               epochs or cfg.epochs),
                      loss=make_loss(cfg), metrics=[accuracy_metric()])
    return distiller


def new_student(data: Dataset, cfg: Config, name: str) -> keras.Model:
    return build_student(data.input_shape, data.n_classes, name=name, head=cfg.student, bn_momentum=cfg.bn_momentum)


def distill_student(teacher: keras.Model, data: Dataset, cfg: Config, label: str) -> tuple[keras.Model, pd.DataFrame]:
    """Distil a fresh student from ``teacher``; returns the best-on-valid student and its history.

    Without augmentation the teacher's logits are computed once per image (see
    ``CachedTeacherDistiller``). With augmentation the teacher runs on every augmented batch, so
    teacher and student see the same view ("consistent teaching": Beyer et al. 2022, "Knowledge
    distillation: A good teacher is patient and consistent"), or, with ``cfg.teacher_views``, once
    on a pool of augmented views (:func:`view_pool_stream`).
    """
    distiller = make_distiller(teacher, new_student(data, cfg, "student"), cfg, data.train.y)
    inputs, train = None, None
    if not cfg.augment:
        inputs = {split: with_logits(teacher, as_float(data.split(split).x), cfg) for split in ("train", "valid")}
    elif cfg.teacher_views:
        inputs = {"train": None, "valid": with_logits(teacher, as_float(data.valid.x), cfg)}
        train = view_pool_stream(teacher, data, cfg)
    history = fit(distiller, data, cfg, f"{label} distill", inputs=inputs, train=train)
    return distiller.student, history


def with_logits(teacher: keras.Model, x: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
    """Images with the teacher's logits, the input of ``CachedTeacherDistiller``."""
    return {"image": x, "teacher_logits": keras_logits(teacher, x, cfg.batch_size)}


def view_pool_stream(teacher: keras.Model, data: Dataset, cfg: Config):
    """A repeating training stream over ``cfg.teacher_views`` augmented copies of the training images,
    each with the teacher's logits computed once.

    The teacher pays ``teacher_views`` passes over the training split in all, instead of one per
    epoch; the student still sees a new view of an image in most epochs, and always the teacher's
    logits of exactly that view (consistent teaching). Soft labels stored for pre-generated
    augmentations: Shen & Xing 2022, "A Fast Knowledge Distillation Framework for Visual
    Recognition" (FKD).
    """
    pool = augmented_views(data, cfg)
    y = np.tile(data.train.y, cfg.teacher_views)
    plain = dataclasses.replace(cfg, augment=())  # the pool is augmented already
    return training_stream(with_logits(teacher, pool, cfg), y, data.n_classes, plain).repeat()


def augmented_views(data: Dataset, cfg: Config) -> np.ndarray:
    """``cfg.teacher_views`` augmented copies of the training images, one copy after another
    (image ``i`` of copy ``v`` is row ``v * len(train) + i``)."""
    augmenter = make_augmenter(cfg, cfg.seed)
    x = as_float(data.train.x)
    return np.concatenate([np.asarray(augmenter(x[i:i + cfg.batch_size], training=True))
                           for _ in range(cfg.teacher_views) for i in range(0, len(x), cfg.batch_size)])


def train_scratch(data: Dataset, cfg: Config, label: str) -> tuple[keras.Model, pd.DataFrame]:
    """The no-teacher baseline: same student, same recipe, same budget and selection rule."""
    student = new_student(data, cfg, "scratch_student")
    compile_classifier(student, cfg, cfg.learning_rate, data.train.y, cfg.epochs)
    history = fit(student, data, cfg, f"{label} scratch")
    return student, history


def _single(output):
    """The one output tensor (a model loaded from a ``.keras`` file returns it in a list)."""
    return output[0] if isinstance(output, (list, tuple)) and len(output) == 1 else output


def ensemble_teacher(teachers: dict[str, keras.Model], weights: dict[str, float], name: str = "ensemble") -> keras.Model:
    """One teacher model whose logits are the weighted mean of several teachers' logits.

    Args:
        teachers: name -> teacher model (all taking the same input).
        weights: name -> non-negative weight; normalised to sum to 1.

    Returns:
        A Keras model usable as ``keras.distillation.Distiller``'s teacher.
    """
    total = sum(weights[n] for n in teachers)
    first = next(iter(teachers.values()))
    inputs = keras.Input(first.input_shape[1:], name="image")
    parts = [keras.layers.Rescaling(weights[n] / total, name=f"w_{n}")(_single(t(inputs, training=False)))
             for n, t in teachers.items()]
    return keras.Model(inputs, keras.layers.Add(name="mean_logits")(parts) if len(parts) > 1 else parts[0], name=name)
