"""Built-in synthetic chest-CT phantoms: the default data for the demo and the tests.

Each image is a procedurally drawn axial chest slice (body outline, two lungs with vessels,
mediastinum, spine) with a class-specific finding in one lung:

* ``normal``: no lesion;
* ``nodule``: a small, fuzzy ground-glass opacity;
* ``mass``: a larger solid round lesion with a sharp edge;
* ``cavity``: a thick-walled ring with air inside.

Lesion size, position, contrast, anatomy and noise are random, so the classes are visible but not
trivial to tell apart at 32 px. This is NOT medical data: it exists so that everything runs, and
can be tested, without downloading anything.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from ctdistill.config import SYNTHETIC_PER_CLASS
from ctdistill.data.dataset import SPLITS, Dataset, Split
from ctdistill.data.decode import prepare_pil

CLASS_NAMES = ["cavity", "mass", "nodule", "normal"]


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def _lesion(kind: str, d: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(alpha mask, intensity) of a lesion given normalised distance ``d`` (1 = lesion radius)."""
    if kind == "nodule":
        mask = np.exp(-(d**2) * 2.0) * rng.uniform(0.45, 0.8)
        return mask, np.full_like(d, rng.uniform(0.45, 0.6))
    if kind == "mass":
        mask = 1.0 / (1.0 + np.exp((d - 1.0) * 25.0))
        return mask, np.full_like(d, rng.uniform(0.55, 0.75))
    inner = rng.uniform(0.45, 0.65)
    wall = (1.0 / (1.0 + np.exp((d - 1.0) * 25.0)))
    return wall, np.where(d < inner, 0.08, rng.uniform(0.55, 0.75))


def phantom(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 image of class ``kind`` (see module docstring), drawn at ``max(64, 2 * size)`` px:
    :func:`load_synthetic` crops and resizes it through the path every image file takes."""
    n = max(64, 2 * size)  # draw at >= 64 px, then downsample (anti-aliased)
    yy, xx = np.mgrid[0:n, 0:n] / n
    j = lambda s: rng.normal(0.0, s)  # noqa: E731 - small anatomical jitter
    img = np.zeros((n, n))
    img[_ellipse(yy, xx, 0.52 + j(0.02), 0.5 + j(0.02), 0.34 + j(0.02), 0.45 + j(0.02)) < 1] = 0.5
    lungs = []
    for side in (-1, 1):
        cy, cx, ry, rx = 0.48 + j(0.02), 0.5 + side * (0.19 + j(0.015)), 0.22 + j(0.02), 0.12 + j(0.01)
        inside = _ellipse(yy, xx, cy, cx, ry, rx) < 1
        img[inside] = 0.1
        lungs.append((cy, cx, ry, rx))
    img[_ellipse(yy, xx, 0.55, 0.5, 0.1, 0.07) < 1] = 0.6  # mediastinum
    img[_ellipse(yy, xx, 0.78 + j(0.01), 0.5, 0.05, 0.05) < 1] = 0.95  # vertebra
    lung_mask = img == 0.1
    vessels = (rng.random((n, n)) < 0.004) & lung_mask
    img = np.where(vessels, 0.45, img)
    if kind != "normal":
        cy, cx, ry, rx = lungs[rng.integers(2)]
        ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.55)
        ly, lx = cy + rad * ry * np.sin(ang), cx + rad * rx * np.cos(ang)
        radius = {"nodule": (0.025, 0.05), "mass": (0.05, 0.085), "cavity": (0.045, 0.08)}[kind]
        d = np.sqrt(_ellipse(yy, xx, ly, lx, 1.0, 1.0)) / rng.uniform(*radius)
        alpha, value = _lesion(kind, d, rng)
        img = img * (1 - alpha) + value * alpha
    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-0.05, 0.05)
    img = img + rng.normal(0.0, rng.uniform(0.02, 0.06), img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def load_synthetic(size: int, channels: int, per_class: tuple[int, int, int] = SYNTHETIC_PER_CLASS, seed: int = 0,
                   crop: str = "none") -> Dataset:
    """The phantom dataset: ``per_class`` images per class in (train, valid, test), deterministic in ``seed``;
    each phantom is cropped (``crop``) and resized by ``prepare_pil``, as a decoded file would be."""
    splits = {}
    # Without a crop the key (and the images) are those of every earlier version.
    tag = f"synthetic-v1:{size}:{channels}:{per_class}:{seed}" + ("" if crop == "none" else f":crop-{crop}")
    for s_index, (split, count) in enumerate(zip(SPLITS, per_class, strict=True)):
        rng = np.random.default_rng([seed, s_index])
        labels = np.repeat(np.arange(len(CLASS_NAMES)), count)
        rng.shuffle(labels)
        grey = np.stack([prepare_pil(Image.fromarray(phantom(CLASS_NAMES[k], size, rng)), size, 1, crop)[0]
                         for k in labels])
        splits[split] = Split(np.repeat(grey, channels, axis=-1), labels.astype(np.int64))
    return Dataset(**splits, class_names=list(CLASS_NAMES), fingerprint=hashlib.sha256(tag.encode()).hexdigest(),
                   source=f"built-in synthetic CT phantoms (seed {seed}; not medical data)", crop={"crop": crop})
