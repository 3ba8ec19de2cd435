"""Load a folder tree of images: ``<root>/{train,valid|val,test}/<class>/<image>`` or ``<root>/<class>/<image>``.

A class folder's name is its class; where splits spell a class differently (the Kaggle download has
``adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib`` in train, ``adenocarcinoma`` in test) the names are
reconciled by ``ctdistill.data.classes``. Images are decoded by content (PNG, JPEG, ... or single-frame
DICOM slices, ``data.dicom``) and cached by content hash.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ctdistill.core.errors import DataError
from ctdistill.data import cache
from ctdistill.data.classes import ClassMapping, read_class_map, resolve_classes
from ctdistill.data.crop import CROP_VERSION, Crop
from ctdistill.data.dataset import SPLITS, Dataset, Split
from ctdistill.data.decode import DECODER_VERSION
from ctdistill.data.dicom import decode_slice

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": ("train",), "valid": ("valid", "val", "validation"), "test": ("test",)}


def find_split_dirs(root: Path) -> dict[str, Path] | None:
    """``{split: folder}`` when ``root`` holds split folders, None for a plain class-folder tree."""
    found: dict[str, Path] = {}
    for split, names in SPLIT_FOLDERS.items():
        present = [root / n for n in names if (root / n).is_dir()]
        if len(present) > 1:  # which one is the split? reading one and ignoring the other would hide images
            raise DataError(f"{root}: {' and '.join(p.name + '/' for p in present)} are both a {split} split; keep one "
                            f"(or merge them)")
        if present:
            found[split] = present[0]
    return found if "train" in found else None


def list_images(split_dir: Path) -> list[tuple[str, Path]]:
    """(class folder name, path) for every non-hidden file under each class folder, sorted for determinism."""
    items = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{class_dir}: empty class folder (no image files)")
        nested = sorted({str(f.parent.relative_to(class_dir)) for f in files if f.parent != class_dir})
        if nested:  # patient folders are common; a `rejected/` folder is not: say so, never silently
            log.warning("%s: %d file(s) in subfolders (%s) are counted as class %s", class_dir,
                        sum(f.parent != class_dir for f in files), ", ".join(nested[:5]) +
                        (f", ... ({len(nested)} folders)" if len(nested) > 5 else ""), class_dir.name)
        items += [(class_dir.name, f) for f in files]
    if not items:
        raise DataError(f"{split_dir}: no class folders with images")
    return items


def scan_tree(root: Path, class_map: str | Path | None = None) -> tuple[dict[str, list[tuple[str, Path]]],
                                                                        ClassMapping]:
    """Every image of a split tree (or of a class-folder tree, as split ``all``) with its class.

    Args:
        root: the tree's top folder.
        class_map: optional TOML/JSON file mapping folder names to classes (``data.classes``).

    Returns:
        ``({split: [(class, path)]}, mapping)``; the mapping says which folder became which class.
    """
    split_dirs = find_split_dirs(root)
    if split_dirs is None:
        per_split = {"all": list_images(root)}
    else:
        missing = [s for s in SPLITS if s not in split_dirs]
        if missing:
            raise DataError(f"{root}: split folder(s) {', '.join(missing)} missing (expected train, valid|val, test)")
        per_split = {s: list_images(split_dirs[s]) for s in SPLITS}
    folders = {s: sorted({f for f, _ in items}) for s, items in per_split.items()}
    mapping = resolve_classes(folders, read_class_map(class_map), str(class_map) if class_map else "class map")
    labelled = {s: [(mapping.folders[s][f], p) for f, p in items] for s, items in per_split.items()}
    return labelled, mapping


def check_label_sets(per_split: dict[str, list[tuple[str, Path]]], when: str) -> list[str]:
    """The shared sorted class names; a clear error when splits disagree (e.g. a class left empty)."""
    sets = {s: {label for label, _ in items} for s, items in per_split.items()}
    first, reference = next(iter(sets.items()))
    for split, labels in sets.items():
        if labels != reference:
            raise DataError(f"classes differ between splits {when}: {first} has "
                            f"{sorted(reference)}, {split} has {sorted(labels)}")
    if len(reference) < 2:
        raise DataError(f"only one class ({sorted(reference)}) found {when}: classification needs at least two")
    return sorted(reference)


def load_tree(root: Path, size: int, channels: int, seed: int = 0, strict: bool = False,
              class_map: str | Path | None = None, crop: str = "none") -> Dataset:
    """Decode a split tree (or a class-folder tree, split 70/10/20 stratified by ``seed``).

    An image that cannot be decoded (empty, truncated, not an image, too large) is skipped and
    listed in ``Dataset.skipped``; ``strict=True`` stops at the first one instead. Problems of the
    folder structure (missing split, empty class, differing class sets) always stop. ``crop``
    (``data.crop.CROPS``) crops each image before resizing; what it kept is in ``Dataset.crop``.
    """
    per_split, mapping = scan_tree(root, class_map)
    log.info("%s", mapping.describe())
    names = mapping.class_names
    index = {n: i for i, n in enumerate(names)}
    hashes = {s: [_sha256(p) for _, p in items] for s, items in per_split.items()}
    content = [[s, label, str(p.relative_to(root)), h] for s, items in per_split.items()
               for (label, p), h in zip(items, hashes[s], strict=True)]
    fingerprint = cache.cache_key(sorted(c[1:] for c in content))
    key = cache.cache_key("tree", content, size, channels, DECODER_VERSION, crop, CROP_VERSION)
    arrays = cache.load(key)
    if arrays is None:
        log.info("decoding %d images from %s to %dx%dx%d (crop: %s)", len(content), root, size, size, channels,
                 crop)
        arrays = _decode_splits(per_split, size, channels, crop)
        cache.store(key, arrays)
    else:
        log.info("decoded images found in cache (%s)", cache.cache_dir())
    skipped = [str(m) for m in arrays.pop("skipped")]
    if skipped:
        if strict:  # after caching, so a later lenient run need not decode again
            raise DataError(f"{skipped[0]} (--strict: stopping at the first unreadable image)")
        per_split = _without_skipped(per_split, arrays)
        names = check_label_sets(per_split, "after skipping unreadable images")
        index = {n: i for i, n in enumerate(names)}
        log.warning("skipped %d unreadable image(s) (use --strict to stop instead):\n  %s", len(skipped),
                    "\n  ".join(skipped))
    splits = {s: Split(arrays[s], np.array([index[label] for label, _ in items], dtype=np.int64),
                       [str(p) for _, p in items]) for s, items in per_split.items()}
    crop_stats = crop_summary(crop, per_split, arrays)
    given = "all" not in splits
    if not given:  # provisional; the pipeline re-splits by duplicate groups once the audit has run
        splits = _stratified_split(splits["all"], seed, names)
    return Dataset(**splits, class_names=names, fingerprint=fingerprint, source=f"image folder tree {root}",
                   given_splits=given, skipped=skipped, classes=mapping.to_dict(), crop=crop_stats)


def crop_summary(crop: str, per_split: dict[str, list[tuple[str, Path]]], arrays: dict[str, np.ndarray]) -> dict:
    """What the crop kept: the median kept share of the image area by split and class, and every
    image where it fell back to the whole image, with the reason (``data.crop``)."""
    if crop == "none":
        return {"crop": "none"}
    shares: dict[str, dict[str, float]] = {}
    fallbacks: dict[str, list[str]] = {}
    for split, items in per_split.items():
        labels = np.array([label for label, _ in items])
        share, why = arrays[f"{split}_crop_share"], arrays[f"{split}_crop_fallback"]
        shares[split] = {c: round(float(np.median(share[labels == c])), 3) for c in sorted(set(labels))}
        for (_, path), reason in zip(items, why, strict=True):
            if reason:
                fallbacks.setdefault(str(reason), []).append(str(path))
    if fallbacks:
        log.warning("crop to body: kept the whole image for %s", ", ".join(
            f"{len(files)} image(s) ({reason})" for reason, files in fallbacks.items()))
    log.info("crop to body: median kept share of the image area by split: %s",
             {s: round(float(np.median(arrays[f"{s}_crop_share"])), 3) for s in per_split})
    return {"crop": crop, "kept_share": shares, "fallbacks": fallbacks}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decode_splits(per_split: dict[str, list[tuple[str, Path]]], size: int, channels: int,
                   crop: str) -> dict[str, np.ndarray]:
    """``{split: images}`` of the readable files, ``{split}_ok`` masks, ``{split}_crop_share`` and
    ``{split}_crop_fallback`` of the readable files, and ``skipped`` messages."""
    arrays: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    for split, items in per_split.items():
        decoded = _decode_all(items, size, channels, crop)
        skipped += [str(d) for d in decoded if isinstance(d, DataError)]
        ok = np.array([not isinstance(d, DataError) for d in decoded], dtype=bool)
        arrays[f"{split}_ok"] = ok
        good = [d for d in decoded if not isinstance(d, DataError)]
        arrays[split] = np.stack([a for a, _ in good]) if good else np.zeros((0, size, size, channels), np.uint8)
        arrays[f"{split}_crop_share"] = np.array([c.share if c else 1.0 for _, c in good], dtype=np.float32)
        arrays[f"{split}_crop_fallback"] = np.array([c.fallback if c else "" for _, c in good], dtype=str)
    arrays["skipped"] = np.array(skipped, dtype=str)  # a unicode array: cached without pickling
    return arrays


def _without_skipped(per_split: dict[str, list[tuple[str, Path]]],
                     arrays: dict[str, np.ndarray]) -> dict[str, list[tuple[str, Path]]]:
    # Only the readable files have arrays (images, crop shares): the lists must match them.
    return {s: [item for item, ok in zip(items, arrays[f"{s}_ok"], strict=True) if ok]
            for s, items in per_split.items()}


def _decode_all(items: list[tuple[str, Path]], size: int, channels: int, crop: str
                ) -> list[tuple[np.ndarray, Crop | None] | DataError]:
    """Every image decoded with its crop, or the ``DataError`` that names why it could not be."""
    def one(item: tuple[str, Path]) -> tuple[np.ndarray, Crop | None] | DataError:
        try:
            return decode_slice(item[1].read_bytes(), size, channels, str(item[1]), crop)
        except DataError as exc:
            return exc
        except OSError as exc:  # unreadable file (permissions, vanished)
            return DataError(f"{item[1]}: cannot read ({exc.strerror or exc})")

    # PIL releases the GIL while decoding, so threads use both cores without copying arrays.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, items))


def _stratified_split(split: Split, seed: int, names: list[str]) -> dict[str, Split]:
    idx = np.arange(len(split))
    counts = np.bincount(split.y, minlength=len(names))
    try:
        rest, test = train_test_split(idx, test_size=0.2, stratify=split.y, random_state=seed)
        train, valid = train_test_split(rest, test_size=0.125, stratify=split.y[rest], random_state=seed)
    except ValueError as exc:  # a class too small to reach every split: name it, not scikit-learn's internals
        raise DataError("too few images to split into train, valid and test (" + ", ".join(
            f"{n}: {k}" for n, k in zip(names, counts, strict=True)) + f"; {exc}); every class needs images in "
            "each split: add images, or give train/valid/test folders") from None

    def take(ix: np.ndarray) -> Split:
        return Split(split.x[ix], split.y[ix], [split.paths[i] for i in ix] if split.paths else None)

    return {"train": take(train), "valid": take(valid), "test": take(test)}
