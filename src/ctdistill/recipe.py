"""The training recipe every model shares: augmentation, optimiser, schedule, loss, class balance.

Teachers, distilled students and scratch students are all trained through these functions, so a
comparison between them measures the teacher, not a difference in recipe. Each ingredient is a
config value; ``ctdistill.config.PRESETS`` names whole recipes (``ctdistill``, the measured default, and ``seed``,
the seed script's recipe, kept so its results can be reproduced). ``BENCHMARKS.md`` ("Training
recipe") has the measurement behind each default.

Augmentations are a table (name -> Keras preprocessing layer). Which are safe for these labels:
the four classes (adenocarcinoma, large-cell carcinoma, squamous-cell carcinoma, normal) do not
depend on the side of the chest, so a left-right flip keeps the label (it mirrors the heart, which
the classifier must not use anyway); an anterior-posterior (vertical) flip produces an anatomy no
scan shows, so it is not offered. Small rotations, shifts and zooms mimic patient positioning
and field of view; contrast changes mimic window settings and scanners.

Example:
    >>> from ctdistill.config import Config
    >>> make_augmenter(Config(augment=("hflip", "rotate")), seed=0).name
    'augment'
"""

from __future__ import annotations

import keras
import numpy as np

from ctdistill.config import Config

AUGMENTATIONS = {
    "hflip": lambda seed: keras.layers.RandomFlip("horizontal", seed=seed, name="hflip"),
    "rotate": lambda seed: keras.layers.RandomRotation(10 / 360, fill_mode="constant", seed=seed, name="rotate"),
    "translate": lambda seed: keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed,
                                                             name="translate"),
    "zoom": lambda seed: keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed, name="zoom"),
    "contrast": lambda seed: keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=seed, name="contrast"),
}

def make_augmenter(cfg: Config, seed: int) -> keras.Sequential | None:
    """The configured augmentations as one Keras model (None when ``cfg.augment`` is empty)."""
    if not cfg.augment:
        return None
    return keras.Sequential([AUGMENTATIONS[name](seed + i) for i, name in enumerate(cfg.augment)], name="augment")


def make_optimizer(cfg: Config, learning_rate: float, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
    """AdamW (Loshchilov & Hutter 2019) with linear warm-up then cosine decay (Loshchilov & Hutter 2017,
    "SGDR"), or plain Adam at a constant rate (``lr_schedule="constant"``, the seed's)."""
    if cfg.lr_schedule == "constant":
        schedule = learning_rate
    else:
        warmup = min(cfg.warmup_epochs, epochs - 1) * steps_per_epoch
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate / 10 if warmup else learning_rate,
            decay_steps=max(1, epochs * steps_per_epoch - warmup), alpha=0.01,
            warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    if cfg.weight_decay > 0:
        return keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay)
    return keras.optimizers.Adam(schedule)


def make_loss(cfg: Config) -> keras.losses.Loss:
    """Cross-entropy on logits with label smoothing (Szegedy et al. 2016); labels are one-hot."""
    return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=cfg.label_smoothing)


def accuracy_metric() -> keras.metrics.Metric:
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def balanced_indices(y: np.ndarray, seed: int) -> np.ndarray:
    """Indices that repeat minority-class examples until every class has the majority's count.

    Resampling (rather than Keras ``class_weight``) works the same for classifiers and for the
    ``Distiller``, whose loss ignores sample weights.
    """
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    parts = [np.concatenate([ix, rng.choice(ix, counts.max() - len(ix))]) if len(ix) else ix
             for ix in (np.flatnonzero(y == c) for c in range(len(counts)))]
    return np.sort(np.concatenate(parts))


def steps_per_epoch(y: np.ndarray, cfg: Config) -> int:
    """Optimiser steps per epoch for training labels ``y`` (after class balancing, if configured)."""
    n = len(y) if cfg.class_balance == "none" else int(np.bincount(y).max()) * int((np.bincount(y) > 0).sum())
    return max(1, -(-n // cfg.batch_size))


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[y]


def training_stream(x, y: np.ndarray, n_classes: int, cfg: Config):
    """A ``tf.data`` stream of shuffled, balanced (if configured), augmented training batches.

    Args:
        x: images (N, H, W, C) float32, or a dict of arrays with an ``"image"`` entry (only the
            image is augmented; other entries, such as cached teacher logits, pass through).
        y: integer labels (N,); the stream yields them one-hot.
        n_classes: number of classes.
        cfg: batch size, seed, ``class_balance`` and ``augment``.
    """
    import tensorflow as tf  # data loading only; the models themselves are backend-agnostic

    index = balanced_indices(y, cfg.seed) if cfg.class_balance == "balanced" else np.arange(len(y))
    take = {k: v[index] for k, v in x.items()} if isinstance(x, dict) else x[index]
    stream = tf.data.Dataset.from_tensor_slices((take, one_hot(y[index], n_classes)))
    stream = stream.shuffle(len(index), seed=cfg.seed, reshuffle_each_iteration=True).batch(cfg.batch_size)
    augmenter = make_augmenter(cfg, cfg.seed)
    if augmenter is not None:
        def augment(inputs, labels):
            if isinstance(inputs, dict):
                return {**inputs, "image": augmenter(inputs["image"], training=True)}, labels
            return augmenter(inputs, training=True), labels

        # The augmenter draws from one random state: deterministic runs apply it batch after batch
        # (a parallel map would be serialised by TensorFlow's determinism anyway).
        stream = stream.map(augment, num_parallel_calls=None if cfg.deterministic else tf.data.AUTOTUNE)
    return stream.prefetch(tf.data.AUTOTUNE)


def validation_stream(x, y: np.ndarray, n_classes: int, batch_size: int):
    """The validation split as a plain batched ``tf.data`` stream (one-hot labels).

    Keras would wrap NumPy arrays in a parallel map of its own, which TensorFlow's deterministic
    mode rewrites with a spurious C++ error line ("NodeDef mentions attribute
    use_unbounded_threadpool") on every ``fit``.
    """
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, one_hot(y, n_classes))).batch(batch_size)


def set_bn_momentum(model: keras.Model, momentum: float) -> None:
    """Set every BatchNormalization layer's moving-average momentum (before compiling).

    With ~500 training images at batch 256 an epoch is 2 steps; at Keras' 0.99 the moving statistics
    used at inference need hundreds of epochs to catch up with the weights, so validation accuracy
    lags training for most of the run (measured: BENCHMARKS.md).
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
