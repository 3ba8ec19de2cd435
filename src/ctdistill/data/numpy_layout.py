"""The seed's numpy layout: ``X_{train,val,test}.npy`` images and ``y_*.npy`` labels (one-hot or integer).

``ctdistill data prepare`` writes this layout from an image tree (uint8 images, one-hot float32
labels as the seed used, plus ``class_names.json``) so the seed's users can keep their arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ctdistill.core.errors import DataError
from ctdistill.data.dataset import SPLITS, Dataset, Split
from ctdistill.data.decode import resize_array
from ctdistill.run.folder import atomic_path

FILE_SPLIT = {"train": "train", "valid": "val", "test": "test"}
CLASS_FILE = "class_names.json"
PREP_FILE = "preprocessing.json"  # written by `data prepare`: how the arrays were made (crop, size)
PATHS_FILE = "paths.json"  # written by `data prepare`: each row's source file, relative to the tree


def is_numpy_layout(root: Path) -> bool:
    return (root / "X_train.npy").is_file()


def load_numpy(root: Path, size: int, channels: int) -> Dataset:
    """Load and check the arrays; images are resized/converted to ``size``/``channels`` if needed."""
    raw = {s: (read_array(root / f"X_{FILE_SPLIT[s]}.npy"), read_array(root / f"y_{FILE_SPLIT[s]}.npy"))
           for s in SPLITS}
    n_classes = max(_n_classes(y, root / f"y_{FILE_SPLIT[s]}.npy") for s, (_, y) in raw.items())
    names = _class_names(root, n_classes)
    ids = _ids(root, {s: len(x) for s, (x, _) in raw.items()})
    splits = {s: Split(_images(x, root / f"X_{FILE_SPLIT[s]}.npy", size, channels),
                       _labels(y, len(x), len(names), root / f"y_{FILE_SPLIT[s]}.npy"), ids[s])
              for s, (x, y) in raw.items()}
    empty = sorted(set(range(len(names))) - set(np.unique(splits["train"].y).tolist()))
    if empty:  # labels that skip a number would train classes no image teaches
        raise DataError(f"{root / 'y_train.npy'}: class(es) {', '.join(names[i] for i in empty)} have no training "
                        f"image (labels run 0..{len(names) - 1}); number the classes 0..K-1 without gaps")
    digest = hashlib.sha256()
    for s in SPLITS:
        digest.update(raw[s][0].tobytes())
        digest.update(splits[s].y.tobytes())
    prep = _json(root / PREP_FILE) if (root / PREP_FILE).is_file() else {}
    return Dataset(**splits, class_names=names, fingerprint=digest.hexdigest(), source=f"numpy layout {root}",
                   crop={"crop": prep.get("crop", "none")})


def _ids(root: Path, counts: dict[str, int]) -> dict[str, list[str]]:
    """Each row's id: its source file from ``paths.json`` (``data prepare``), else ``X_<split>.npy[i]``."""
    path = root / PATHS_FILE
    if not path.is_file():
        return {s: [f"X_{FILE_SPLIT[s]}.npy[{i}]" for i in range(n)] for s, n in counts.items()}
    ids = _json(path)
    if not isinstance(ids, dict) or any(len(ids.get(s, [])) != n for s, n in counts.items()):
        raise DataError(f"{path}: expected one source path per row of each split ({counts})")
    return {s: [str(p) for p in ids[s]] for s in counts}


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def read_array(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """One ``.npy`` file of the layout, never unpickled (a ``.npy`` can carry code); a one-line
    ``DataError`` naming the file when it is missing, holds objects, or is truncated. ``mmap_mode="r"``
    reads only its header (``data inspect``, the audit's probe)."""
    if not path.is_file():
        raise DataError(f"{path}: missing (numpy layout needs X_/y_ train, val and test files)")
    try:
        probe = np.load(path, mmap_mode="r", allow_pickle=False)  # the header and the file's length, checked
        return probe if mmap_mode else np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "object" in str(exc).lower():
            raise DataError(f"{path}: refused to load an array of Python objects; only numeric arrays are "
                            "accepted (never unpickled)") from None
        raise DataError(f"{path}: not a readable .npy file, truncated or corrupt ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None


def _n_classes(y: np.ndarray, path: Path) -> int:
    if y.ndim == 2:
        return y.shape[1]
    if y.ndim == 1 and y.size and np.issubdtype(y.dtype, np.integer):
        return int(y.max()) + 1
    if y.ndim == 1 and y.size and np.all(np.mod(y, 1) == 0):
        return int(y.max()) + 1
    raise DataError(f"{path}: labels must be one-hot (N, classes) or integer (N,), got shape {y.shape} {y.dtype}")


def _class_names(root: Path, n_classes: int) -> list[str]:
    path = root / CLASS_FILE
    if not path.is_file():
        return [f"class_{i}" for i in range(n_classes)]
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names) and len(names) >= n_classes):
        raise DataError(f"{path}: expected a list of at least {n_classes} class names")
    return names


def _images(x: np.ndarray, path: Path, size: int, channels: int) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise DataError(f"{path}: images must be (N, H, W, C) with C in 1, 3, 4; got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)):
        raise DataError(f"{path}: images must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: images contain NaN or infinite values")
    if x.size and x.max() <= 1.0 and x.min() >= 0.0:
        x = x * 255.0  # arrays scaled to [0, 1] (a common seed preprocessing)
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(f"{path}: pixel values must be within 0..255 or 0..1, got {x.min():g}..{x.max():g}")
    x = np.rint(x).astype(np.uint8)
    if x.shape[-1] == 4:
        x = x[..., :3]
    return resize_array(x, size, channels)


def _labels(y: np.ndarray, n: int, n_classes: int, path: Path) -> np.ndarray:
    if len(y) != n:
        raise DataError(f"{path}: {len(y)} labels for {n} images")
    if y.ndim == 2:
        if not np.isfinite(y).all() or not np.allclose(y.sum(axis=1), 1.0, atol=1e-3) or y.min() < 0:
            raise DataError(f"{path}: one-hot rows must be non-negative and sum to 1")
        return y.argmax(axis=1).astype(np.int64)
    labels = y.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: labels must be within 0..{n_classes - 1}, got {labels.min()}..{labels.max()}")
    return labels


def output_files(out: Path) -> list[Path]:
    """The files :func:`write_numpy` writes into ``out``."""
    return ([out / f"{kind}_{FILE_SPLIT[s]}.npy" for s in SPLITS for kind in ("X", "y")]
            + [out / CLASS_FILE, out / PREP_FILE, out / PATHS_FILE])


def write_numpy(dataset: Dataset, out: Path, root: Path | None = None) -> list[Path]:
    """Write ``dataset`` in the seed's layout (uint8 X, one-hot float32 y) plus class names, how the
    arrays were made (``preprocessing.json``) and, given the tree's ``root``, each row's source file
    relative to it (``paths.json``: the ids the audit and the splits use)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for s in SPLITS:
        split = dataset.split(s)
        onehot = np.eye(dataset.n_classes, dtype=np.float32)[split.y]
        for name, arr in ((f"X_{FILE_SPLIT[s]}.npy", split.x), (f"y_{FILE_SPLIT[s]}.npy", onehot)):
            with atomic_path(out / name) as tmp:
                np.save(tmp, arr, allow_pickle=False)
            written.append(out / name)
    with atomic_path(out / CLASS_FILE) as tmp:
        tmp.write_text(json.dumps(dataset.class_names, indent=1), encoding="utf-8")
    prep = {"crop": (dataset.crop or {}).get("crop", "none"), "image_size": list(dataset.input_shape),
            "source": dataset.source}
    with atomic_path(out / PREP_FILE) as tmp:
        tmp.write_text(json.dumps(prep, indent=1), encoding="utf-8")
    written += [out / CLASS_FILE, out / PREP_FILE]
    if root is not None and all(dataset.split(s).paths for s in SPLITS):
        ids = {s: [relative_id(p, root) for p in dataset.split(s).paths] for s in SPLITS}
        with atomic_path(out / PATHS_FILE) as tmp:
            tmp.write_text(json.dumps(ids, indent=1), encoding="utf-8")
        written.append(out / PATHS_FILE)
    return written


def relative_id(path: str, root: Path) -> str:
    """A source file's id in a prepared layout: its path relative to the tree, with ``/``."""
    return Path(os.path.relpath(path, root)).as_posix()
