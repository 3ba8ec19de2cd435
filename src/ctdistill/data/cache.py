"""A content-keyed cache of decoded arrays, so a second run does not decode the images again.

Key = sha256 of (every file's content hash and label, image size, channels, decoder version): any
changed byte, size or decoder gives a new entry. Location: ``$CTDISTILL_CACHE`` or
``~/.cache/ctdistill``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ctdistill.core.caches import cache_root
from ctdistill.run.folder import atomic_path

log = logging.getLogger("ctdistill")


def cache_dir() -> Path:
    return cache_root()


def cache_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def load(key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None when absent or unreadable (then rebuilt)."""
    path = cache_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # half-written, corrupt
        log.warning("cache entry %s is unreadable (%s): decoding again", path, type(exc).__name__)
        return None


def store(key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically; a cache that cannot be written only costs time, so failures are ignored."""
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_dir() / f"{key}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    except OSError:
        pass


def load_json(key: str) -> dict | None:
    try:
        return json.loads((cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def store_json(key: str, obj: dict) -> None:
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_dir() / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(obj), encoding="utf-8")
    except OSError:
        pass
