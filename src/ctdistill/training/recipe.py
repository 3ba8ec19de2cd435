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
    """The configured augmentations as one Keras model (None when ``cfg.augment`` is empty).

    Keras marks its affine layers (rotation, translation, zoom) as not XLA-compilable, because
    TensorFlow's projective-transform op is not; one such layer makes ``fit`` run the whole training
    step eagerly. On JAX they are plain ``jax.numpy`` and compile: marked so there, the scratch
    student's epoch went from 20 s to 1 s on a 2-core CPU (``BENCHMARKS.md``, "Backends").
    """
    if not cfg.augment:
        return None
    layers = [AUGMENTATIONS[name](seed + i) for i, name in enumerate(cfg.augment)]
    if keras.backend.backend() == "jax":
        for layer in layers:
            layer.supports_jit = True
    return keras.Sequential(layers, name="augment")


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


class Batches(keras.utils.PyDataset):
    """Shuffled batches of NumPy arrays for ``Model.fit`` on any Keras backend (TensorFlow, JAX, CPU or GPU).

    With a seed (training) the rows form one stream, pass after pass, pass ``k`` being the permutation
    seeded by ``(seed, k)``, cut into batches of exactly ``batch_size`` rows (the whole set when it is
    smaller): the batch that ends a pass takes its last rows from the next one. A short last batch
    would be a second input shape, and a second compilation of the training step (as long as the
    first: issue #30); an epoch is ``steps`` batches, by default as many as one pass needs, so the
    optimiser's step count and schedule are those of one pass an epoch. Without a seed (validation)
    the rows stay in order, one pass an epoch, the last batch shorter unless ``batch_size`` divides
    them (:func:`even_batch_size` picks one that does). A run repeats exactly whatever
    order the batches are read in; ``fit`` must not reorder them (``shuffle=False``).

    Args:
        x: images (N, H, W, C), or a dict of arrays of N rows (e.g. images with cached teacher logits).
        y: one-hot targets (N, classes).
        batch_size: rows per batch.
        seed: seeds the permutations; None keeps the order (validation).
        steps: batches per epoch (a pool of views larger than an epoch); None = one pass's worth.

    Example:
        >>> b = Batches(np.zeros((10, 4, 4, 1)), np.eye(2)[[0, 1] * 5], 4, seed=0)
        >>> len(b), b[2][0].shape  # training: every batch full
        (3, (4, 4, 4, 1))
        >>> v = Batches(np.zeros((10, 4, 4, 1)), np.eye(2)[[0, 1] * 5], 4, seed=None)
        >>> len(v), v[2][0].shape  # validation: every row once, in order
        (3, (2, 4, 4, 1))
    """

    def __init__(self, x, y: np.ndarray, batch_size: int, seed: int | None = 0, steps: int | None = None):
        super().__init__()
        self.x, self.y, self.batch_size, self.steps, self.seed = x, y, batch_size, steps, seed
        self.passes = -(-len(y) // batch_size)  # batches in one pass over the rows
        self.epoch = 0
        self._order = (-1, np.arange(len(y)))  # (pass number, its permutation): the last one drawn

    def __len__(self) -> int:
        return self.steps or self.passes

    def order(self, one_pass: int) -> np.ndarray:
        """The row order of pass ``one_pass``: the identity without a seed."""
        if self.seed is not None and self._order[0] != one_pass:
            self._order = (one_pass, np.random.default_rng([self.seed, one_pass]).permutation(len(self.y)))
        return self._order[1]

    def __getitem__(self, i: int):
        rows = self.stream_rows(i) if self.seed is not None else self.in_order(i)
        x = {k: v[rows] for k, v in self.x.items()} if isinstance(self.x, dict) else self.x[rows]
        return x, self.y[rows]

    def stream_rows(self, i: int) -> np.ndarray:
        """Rows of training batch ``i`` of this epoch: positions in the stream of passes, always full."""
        n = len(self.y)
        size = min(self.batch_size, n)
        start = (self.epoch * len(self) + i) * size
        passes, within = np.divmod(np.arange(start, start + size), n)
        return np.concatenate([self.order(p)[within[passes == p]] for p in np.unique(passes)])

    def in_order(self, i: int) -> np.ndarray:
        """Rows of validation batch ``i``: in order, the last batch of the pass shorter."""
        within = (self.epoch * len(self) + i) % self.passes
        return np.arange(len(self.y))[within * self.batch_size:(within + 1) * self.batch_size]

    def on_epoch_end(self) -> None:
        self.epoch += 1


def training_batches(x, y: np.ndarray, n_classes: int, cfg: Config, steps: int | None = None) -> Batches:
    """Shuffled, class-balanced (if configured) training batches with one-hot labels.

    Augmentation is not applied here: it runs inside the training step (``train.Augmented``,
    ``distill.CachedTeacherDistiller``), on the accelerator, the same way on every backend.

    Args:
        x: images (N, H, W, C) float32, or a dict of arrays with an ``"image"`` entry.
        y: integer labels (N,).
        n_classes: number of classes.
        cfg: batch size, seed and ``class_balance``.
        steps: batches per epoch of a continuous stream (a pool of views larger than an epoch).
    """
    index = balanced_indices(y, cfg.seed) if cfg.class_balance == "balanced" else np.arange(len(y))
    take = {k: v[index] for k, v in x.items()} if isinstance(x, dict) else x[index]
    return Batches(take, one_hot(y[index], n_classes), cfg.batch_size, cfg.seed, steps)


def even_batch_size(n: int, batch_size: int) -> int:
    """The batch size that cuts ``n`` rows, in order, into batches of one shape, if a close one exists.

    A short last batch is a second input shape, and on JAX a second compilation of the evaluation
    step every run (issue #30). The largest divisor of ``n`` not above ``batch_size`` gives equal
    batches without padding (which would change the loss average) and without dropping or repeating
    rows; it is taken when it is at least half of ``batch_size``, so validation needs at most twice
    the batches. Otherwise (``n`` prime, say) ``batch_size`` stays, with its short last batch.

    Args:
        n: rows to cut.
        batch_size: the largest batch allowed (memory).

    Returns:
        The batch size to use: ``n`` when it fits in one batch (1 for no rows).

    Example:
        >>> even_batch_size(72, 32), even_batch_size(40, 32), even_batch_size(71, 32), even_batch_size(20, 32)
        (24, 20, 32, 20)
    """
    if n <= batch_size:
        return max(n, 1)
    best = max(d for d in range(1, batch_size + 1) if n % d == 0)
    return best if 2 * best >= batch_size else batch_size


def validation_batches(x, y: np.ndarray, n_classes: int, batch_size: int) -> Batches:
    """The validation split in order, one-hot labels, in batches of one shape where a close size allows.

    Args:
        x: images (N, H, W, C), or a dict of arrays of N rows.
        y: integer labels (N,).
        n_classes: number of classes.
        batch_size: the largest batch; the one used is :func:`even_batch_size`.

    Returns:
        Batches in order, every row once per epoch.

    Example:
        >>> v = validation_batches(np.zeros((72, 4, 4, 1)), np.zeros(72, int), 2, 32)
        >>> len(v), {v[i][0].shape[0] for i in range(len(v))}
        (3, {24})
    """
    return Batches(x, one_hot(y, n_classes), even_batch_size(len(y), batch_size), seed=None)


def set_bn_momentum(model: keras.Model, momentum: float) -> None:
    """Set every BatchNormalization layer's moving-average momentum (before compiling).

    With ~500 training images at batch 256 an epoch is 2 steps; at Keras' 0.99 the moving statistics
    used at inference need hundreds of epochs to catch up with the weights, so validation accuracy
    lags training for most of the run (measured: BENCHMARKS.md).
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
