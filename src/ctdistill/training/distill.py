"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

Built on ``keras.distillation``: ``Distiller`` with ``LogitsDistillation`` computes

    loss = alpha * CE(y, softmax(s)) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

where ``s``/``t`` are student/teacher *logits* (softmax applied once, inside the loss), ``T`` the
temperature and ``alpha`` the weight of the hard-label loss (``student_loss_weight``). The ``T^2``
factor keeps the soft-target gradients on the same scale as the hard-label ones when T changes
(Hinton et al., section 2); ``LogitsDistillation`` applies it for the KL loss.

Its baseline, the scratch student (``training.fit.train_scratch``), trains the identical student with the
identical budget and no teacher.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from ctdistill.config import Config
from ctdistill.core.errors import ConfigError
from ctdistill.data import Dataset
from ctdistill.models.inference import keras_logits
from ctdistill.training.fit import as_float, fit, new_student
from ctdistill.training.recipe import (
    accuracy_metric,
    make_augmenter,
    make_loss,
    make_optimizer,
    set_bn_momentum,
    steps_per_epoch,
    training_batches,
)


class CachedTeacherDistiller(keras.distillation.Distiller):
    """A ``Distiller`` that can take the teacher's logits precomputed, or augment inside the step.

    Without augmentation the frozen teacher (inference mode) maps each training image to the same
    logits in every epoch, so running it on every batch, as the seed did, repeats identical work.
    Feed ``x = {"image": images, "teacher_logits": logits}`` to use cached logits; plain image
    input runs the teacher. The loss is the same either way (tested).

    With an ``augmenter`` (teacher on every batch, ``teacher_views=0``) the augmentation runs inside
    the training step, on any backend: ``call`` augments the batch once and keeps the view, and the
    teacher's features are taken on that same view (consistent teaching); ``Distiller.compute_loss``
    runs in the same traced step right after ``call``, so it sees exactly that tensor.
    """

    def _validate_input_compatibility(self, teacher, student):
        # Keras requires equal input shapes; a teacher at its own side (``--teacher-image-size``) never sees the
        # student's input here: its logits come cached with the batch, computed on the same view at its side.
        if teacher.input_shape[1:3] == student.input_shape[1:3]:
            super()._validate_input_compatibility(teacher, student)

    def __init__(self, *args, augmenter: keras.Model | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter
        self._view = None

    def call(self, inputs, training=None, **kwargs):
        images = inputs["image"] if isinstance(inputs, dict) else inputs
        if self.augmenter is not None and not isinstance(inputs, dict):
            images = self._view = self.augmenter(images, training=training)
        return self.student(images, training=training, **kwargs)

    def _extract_all_teacher_features(self, x):
        if isinstance(x, dict):
            return {"final_output": x["teacher_logits"]}
        return super()._extract_all_teacher_features(x if self._view is None else self._view)


def make_distiller(teacher: keras.Model, student: keras.Model, cfg: Config, y_train: np.ndarray,
                   epochs: int | None = None, augment: bool = False) -> CachedTeacherDistiller:
    """A ``Distiller`` with the loss above, compiled with the shared recipe (the teacher is frozen).

    Args:
        teacher, student: models mapping images to logits.
        cfg: temperature, alpha and the recipe (optimiser, schedule, label smoothing, BN momentum).
        y_train: training labels (the schedule's steps per epoch depend on their count).
        epochs: the schedule's length (default ``cfg.epochs``).
        augment: augment each batch inside the step (teacher on every batch); otherwise the inputs
            are used as given (cached logits, or a pool of views augmented already).

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
        augmenter=make_augmenter(cfg, cfg.seed) if augment else None,
    )
    distiller.compile(optimizer=make_optimizer(cfg, cfg.learning_rate, steps_per_epoch(y_train, cfg),
                                               epochs or cfg.epochs),
                      loss=make_loss(cfg), metrics=[accuracy_metric()])
    return distiller


def distill_student(teacher: keras.Model, data: Dataset, cfg: Config, label: str) -> tuple[keras.Model, pd.DataFrame]:
    """Distil a fresh student from ``teacher``; returns the best-on-valid student and its history.

    Without augmentation the teacher's logits are computed once per image (see
    ``CachedTeacherDistiller``). With augmentation the teacher runs on every augmented batch, so
    teacher and student see the same view ("consistent teaching": Beyer et al. 2022, "Knowledge
    distillation: A good teacher is patient and consistent"), or, with ``cfg.teacher_views``, once
    on a pool of augmented views (:func:`view_pool_stream`).

    A teacher whose input side differs from the student's (``--teacher-image-size``) sees the images
    at its side (``data.at_size``); the student learns from the very same views, downsampled to its
    own side as the loader resizes (:func:`downsample`). That needs the view pool (or no augmentation).
    """
    big = data.at_size(teacher.input_shape[1])
    on_every_batch = bool(cfg.augment) and not cfg.teacher_views
    check_teacher_views(cfg, big.input_shape[0])
    distiller = make_distiller(teacher, new_student(data, cfg, "student"), cfg, data.train.y, augment=on_every_batch)
    inputs, train = None, None
    if not cfg.augment:
        inputs = {split: with_logits(teacher, as_float(data.split(split).x), cfg, big.split(split).x)
                  for split in ("train", "valid")}
    elif cfg.teacher_views:
        inputs = {"train": None, "valid": with_logits(teacher, as_float(data.valid.x), cfg, big.valid.x)}
        train = view_pool_stream(teacher, data, cfg)
    history = fit(distiller, data, cfg, f"{label} distill", inputs=inputs, train=train)
    return distiller.student, history


def check_teacher_views(cfg: Config, side: int) -> None:
    """Refuse a teacher at ``side`` px with the teacher on every batch (``teacher_views=0``): that runs the
    teacher inside the student's training step, on the student's images. ``pipeline.run`` checks every
    teacher before training starts."""
    if cfg.augment and not cfg.teacher_views and side != cfg.image_size:
        raise ConfigError(f"teacher_views=0 runs the teacher inside the student's training step, which needs the "
                          f"teacher's image size ({side}) to be the student's ({cfg.image_size}); use "
                          "--teacher-views 8, or --teacher-image-size equal to --image-size")


def with_logits(teacher: keras.Model, x: np.ndarray, cfg: Config, teacher_x: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Images with the teacher's logits, the input of ``CachedTeacherDistiller``; ``teacher_x``: the
    same images at the teacher's side, when it differs."""
    seen = x if teacher_x is None else as_float(teacher_x)
    return {"image": x, "teacher_logits": keras_logits(teacher, seen, cfg.batch_size)}


def view_pool_stream(teacher: keras.Model, data: Dataset, cfg: Config):
    """Training batches drawn continuously from ``cfg.teacher_views`` augmented copies of the training images,
    each with the teacher's logits computed once.

    The teacher pays ``teacher_views`` passes over the training split in all, instead of one per
    epoch; the student still sees a new view of an image in most epochs, and always the teacher's
    logits of exactly that view (consistent teaching). Soft labels stored for pre-generated
    augmentations: Shen & Xing 2022, "A Fast Knowledge Distillation Framework for Visual
    Recognition" (FKD). A teacher at a larger side sees each view at its side; the student gets
    the view downsampled, one copy at a time, so the large views are never all in memory.
    """
    big = data.at_size(teacher.input_shape[1])
    if big is data:
        pool = augmented_views(data, cfg)
        pooled = with_logits(teacher, pool, cfg)
    else:
        parts = [_two_sides(teacher, views, data.input_shape[0], cfg) for views in view_copies(big, cfg)]
        pooled = {k: np.concatenate([p[k] for p in parts]) for k in ("image", "teacher_logits")}
    y = np.tile(data.train.y, cfg.teacher_views)
    return training_batches(pooled, y, data.n_classes, cfg, steps=steps_per_epoch(data.train.y, cfg))


def augmented_views(data: Dataset, cfg: Config) -> np.ndarray:
    """``cfg.teacher_views`` augmented copies of the training images, one copy after another
    (image ``i`` of copy ``v`` is row ``v * len(train) + i``)."""
    return np.concatenate(list(view_copies(data, cfg)))


def view_copies(data: Dataset, cfg: Config):
    """Yield the ``cfg.teacher_views`` augmented copies of the training images one at a time (one seeded stream)."""
    augmenter = make_augmenter(cfg, cfg.seed)
    x = as_float(data.train.x)
    for _ in range(cfg.teacher_views):
        yield np.concatenate([np.asarray(augmenter(x[i:i + cfg.batch_size], training=True))
                              for i in range(0, len(x), cfg.batch_size)])


def _two_sides(teacher: keras.Model, views: np.ndarray, side: int, cfg: Config) -> dict:
    """The teacher's logits of ``views`` (at its side) and the same views downsampled to the student's ``side``."""
    return {"image": downsample(views, side), "teacher_logits": keras_logits(teacher, views, cfg.batch_size)}


def downsample(views: np.ndarray, side: int) -> np.ndarray:
    """Float images (N, H, W, C) in 0..255 -> (N, side, side, C), rounded to uint8 and resized the way the
    loader resizes a decoded file (``data.decode.prepare_pil``: PIL's antialiased bilinear), so the
    student's training views look like what ``predict`` feeds it.

    Example:
        >>> downsample(np.full((2, 64, 64, 3), 100.0), 16).shape
        (2, 16, 16, 3)
    """
    from PIL import Image

    pixels = np.clip(np.rint(views), 0, 255).astype(np.uint8)
    out = [np.asarray(Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
                      .resize((side, side), Image.Resampling.BILINEAR)) for img in pixels]
    return np.stack(out).reshape(len(pixels), side, side, views.shape[-1]).astype(np.float32)


def _single(output):
    """The one output tensor (a model loaded from a ``.keras`` file returns it in a list)."""
    return output[0] if isinstance(output, (list, tuple)) and len(output) == 1 else output


def _at_side(images, teacher: keras.Model, name: str):
    """``images`` resized to ``teacher``'s input side where it differs (teachers at their own sizes)."""
    side = teacher.input_shape[1]
    if side == images.shape[1]:
        return images
    return keras.layers.Resizing(side, side, interpolation="bilinear", antialias=True, name=f"to_{name}")(images)


def ensemble_teacher(teachers: dict[str, keras.Model], weights: dict[str, float],
                     name: str = "ensemble") -> keras.Model:
    """One teacher model whose logits are the weighted mean of several teachers' logits.

    Args:
        teachers: name -> teacher model (all taking the same input).
        weights: name -> non-negative weight; normalised to sum to 1.
        name: the model's name.

    Teachers at different input sides take the largest side's images, resized for the smaller ones.

    Returns:
        A Keras model usable as ``keras.distillation.Distiller``'s teacher.
    """
    total = sum(weights[n] for n in teachers)
    largest = max(teachers.values(), key=lambda t: t.input_shape[1])
    inputs = keras.Input(largest.input_shape[1:], name="image")
    parts = [keras.layers.Rescaling(weights[n] / total, name=f"w_{n}")(_single(t(_at_side(inputs, t, n),
                                                                                   training=False)))
             for n, t in teachers.items()]
    return keras.Model(inputs, keras.layers.Add(name="mean_logits")(parts) if len(parts) > 1 else parts[0], name=name)
