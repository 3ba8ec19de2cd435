"""Load a folder tree of images: ``<root>/{train,valid|val,test}/<class>/<image>`` or ``<root>/<class>/<image>``.

Class folder names differ between splits in the Kaggle download
(``adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib`` in train, ``adenocarcinoma`` in test): labels are
the folder name up to the first ``_``. Images are decoded by content and cached by content hash.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ctdistill.data import cache
from ctdistill.data.dataset import SPLITS, Dataset, Split
from ctdistill.data.decode import DECODER_VERSION, decode_image
from ctdistill.errors import DataError

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": ("train",), "valid": ("valid", "val", "validation"), "test": ("test",)}


def normalise_label(folder_name: str) -> str:
    """The class of a folder: the part before the first ``_`` (Kaggle appends location/TNM stage).

    Example:
        >>> normalise_label("large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa")
        'large.cell.carcinoma'
    """
    return folder_name.split("_", 1)[0].strip()


def find_split_dirs(root: Path) -> dict[str, Path] | None:
    """``{split: folder}`` when ``root`` holds split folders, None for a plain class-folder tree."""
    found = {s: root / n for s, names in SPLIT_FOLDERS.items() for n in names if (root / n).is_dir()}
    return found if "train" in found else None


def list_images(split_dir: Path) -> list[tuple[str, Path]]:
    """(label, path) for every non-hidden file under each class folder, sorted for determinism."""
    items = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{class_dir}: empty class folder (no image files)")
        items += [(normalise_label(class_dir.name), f) for f in files]
    if not items:
        raise DataError(f"{split_dir}: no class folders with images")
    return items


def check_label_sets(per_split: dict[str, list[tuple[str, Path]]]) -> list[str]:
    """The shared sorted class names; a clear error when splits disagree after normalisation."""
    sets = {s: {label for label, _ in items} for s, items in per_split.items()}
    first, reference = next(iter(sets.items()))
    for split, labels in sets.items():
        if labels != reference:
            raise DataError(f"classes differ between splits after normalising folder names: {first} has "
                            f"{sorted(reference)}, {split} has {sorted(labels)}")
    if len(reference) < 2:
        raise DataError(f"only one class ({sorted(reference)}) found: classification needs at least two")
    return sorted(reference)


def load_tree(root: Path, size: int, channels: int, seed: int = 0) -> Dataset:
    """Decode a split tree (or a class-folder tree, split 70/10/20 stratified by ``seed``)."""
    split_dirs = find_split_dirs(root)
    if split_dirs is None:
        per_split = {"all": list_images(root)}
    else:
        missing = [s for s in SPLITS if s not in split_dirs]
        if missing:
            raise DataError(f"{root}: split folder(s) {', '.join(missing)} missing (expected train, valid|val, test)")
        per_split = {s: list_images(split_dirs[s]) for s in SPLITS}
    names = check_label_sets(per_split)
    index = {n: i for i, n in enumerate(names)}
    hashes = {s: [_sha256(p) for _, p in items] for s, items in per_split.items()}
    content = [[s, label, str(p.relative_to(root)), h] for s, items in per_split.items()
               for (label, p), h in zip(items, hashes[s])]
    fingerprint = cache.cache_key(sorted(c[1:] for c in content))
    key = cache.cache_key("tree", content, size, channels, DECODER_VERSION)
    arrays = cache.load(key)
    if arrays is None:
        log.info("decoding %d images from %s to %dx%dx%d", len(content), root, size, size, channels)
        arrays = {s: _decode_all(items, size, channels) for s, items in per_split.items()}
        cache.store(key, arrays)
    else:
        log.info("decoded images found in cache (%s)", cache.cache_dir())
    splits = {s: Split(arrays[s], np.array([index[l] for l, _ in items], dtype=np.int64),
                       [str(p) for _, p in items]) for s, items in per_split.items()}
    given = "all" not in splits
    if not given:  # provisional; the pipeline re-splits by duplicate groups once the audit has run
        splits = _stratified_split(splits["all"], seed)
    return Dataset(**splits, class_names=names, fingerprint=fingerprint, source=f"image folder tree {root}",
                   given_splits=given)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decode_all(items: list[tuple[str, Path]], size: int, channels: int) -> np.ndarray:
    def one(item: tuple[str, Path]) -> np.ndarray:
        return decode_image(item[1].read_bytes(), size, channels, name=str(item[1]))

    # PIL releases the GIL while decoding, so threads use both cores without copying arrays.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return np.stack(list(pool.map(one, items)))


def _stratified_split(split: Split, seed: int) -> dict[str, Split]:
    idx = np.arange(len(split))
    rest, test = train_test_split(idx, test_size=0.2, stratify=split.y, random_state=seed)
    train, valid = train_test_split(rest, test_size=0.125, stratify=split.y[rest], random_state=seed)

    def take(ix: np.ndarray) -> Split:
        return Split(split.x[ix], split.y[ix], [split.paths[i] for i in ix] if split.paths else None)

    return {"train": take(train), "valid": take(valid), "test": take(test)}
