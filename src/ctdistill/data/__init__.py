"""Data: one loader interface for image folder trees, the seed's numpy layout and synthetic phantoms.

Example:
    >>> ds = load_dataset(None, size=32, channels=3)   # built-in phantoms
    >>> ds.class_names
    ['cavity', 'mass', 'nodule', 'normal']
"""

from __future__ import annotations

import logging
from pathlib import Path

from ctdistill.config import SYNTHETIC_PER_CLASS
from ctdistill.core.errors import DataError
from ctdistill.data.dataset import SPLITS, Dataset, Split
from ctdistill.data.numpy_layout import is_numpy_layout, load_numpy, write_numpy
from ctdistill.data.synthetic import load_synthetic
from ctdistill.data.tree import load_tree

__all__ = ["SPLITS", "Dataset", "Split", "load_dataset", "write_numpy"]

log = logging.getLogger(__name__)


def load_dataset(path: str | Path | None, size: int, channels: int, seed: int = 0,
                 synthetic_per_class: tuple[int, int, int] = SYNTHETIC_PER_CLASS, strict: bool = False,
                 class_map: str | Path | None = None, crop: str = "none") -> Dataset:
    """Load ``path`` as whichever layout it is; ``None`` gives the built-in synthetic phantoms.

    Args:
        path: split tree, class-folder tree, numpy layout folder, or None.
        size, channels: every image is returned as ``(size, size, channels)`` uint8.
        seed: seeds the phantoms and the split of a tree without split folders.
        synthetic_per_class: phantom counts per class for (train, valid, test).
        strict: stop at the first unreadable image instead of skipping it (and listing it in
            ``Dataset.skipped``).
        class_map: optional TOML/JSON file mapping class folders to classes (``data.classes``).
        crop: ``body`` crops every decoded image to the body before resizing (``data.crop``); the
            phantoms are cropped the same way; numpy arrays are taken as they are (already resized).

    Returns:
        A :class:`Dataset`.
    """
    if path is None:
        _no_class_map(class_map, "the built-in phantoms")
        return load_synthetic(size, channels, synthetic_per_class, seed, crop)
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: data path does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: data path is a file; give the folder that holds the images or arrays")
    if is_numpy_layout(root):
        _no_class_map(class_map, f"{root} (numpy layout: its classes are class_names.json)")
        data = load_numpy(root, size, channels)
        if data.crop["crop"] != crop:
            log.warning("crop: the numpy layout %s was made with crop %s, not %s: its arrays are used as they are "
                        "(made by `ctdistill data prepare --crop %s` they would match)", root, data.crop["crop"],
                        crop, crop)
        return data
    return load_tree(root, size, channels, seed, strict, class_map, crop)


def _no_class_map(class_map: str | Path | None, what: str) -> None:
    if class_map is not None:
        raise DataError(f"{class_map}: a class map renames class folders; {what} has none")
