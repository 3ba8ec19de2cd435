"""The run folder: atomic writes, a fresh folder per run, and the manifest that makes it reproducible.

Every file goes through :func:`atomic_path`: it is written under a temporary name in the same folder
and renamed into place, so an interrupted run never leaves a half-written CSV, model or plot.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctdistill.errors import RunFolderError

PACKAGES = ("ctdistill", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "ai-edge-litert", "numpy",
            "scikit-learn", "scipy", "pandas", "pillow", "pydicom", "matplotlib")


def _current_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()  # what open(path, "w") gives a new file: 0644 under umask 022


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final`` (same suffix); rename it onto ``final`` on success.

    The file gets the permissions a plain ``open(final, "w")`` would give it (``FILE_MODE``, from the
    umask), not the private 0600 of the temporary file, so shared result folders stay readable.

    Example:
        >>> with atomic_path("out/table.csv") as tmp:   # doctest: +SKIP
        ...     df.to_csv(tmp)
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():  # a writer may have replaced the path with a folder (a SavedModel export)
            os.chmod(tmp, FILE_MODE)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: Path, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path


def plan_run_dir(out: str | Path | None, base: str | Path = "runs") -> Path:
    """Choose the run folder and check it is free, without creating it (nothing is written on bad input).

    ``out=None`` gives a timestamped folder under ``base``; an existing non-empty ``out`` is refused,
    so earlier results are never overwritten.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out, n = Path(base) / f"run-{stamp}", 1
        while out.exists():
            n += 1
            out = Path(base) / f"run-{stamp}-{n}"
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunFolderError(f"{out}: already exists and is not empty; choose another --out "
                             "(earlier results are never overwritten)")
    check_writable(out)
    return out


def check_writable(out: Path) -> None:
    """Refuse a folder that cannot be created or written, before any work is done."""
    parent = out
    while not parent.exists():  # the nearest existing ancestor decides
        parent = parent.parent
    if not parent.is_dir():
        raise RunFolderError(f"{out}: cannot create the run folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunFolderError(f"{out}: cannot write the run folder: {parent} is not writable")


def refuse_existing(*paths: Path) -> None:
    """Stop before any work when an output file exists already (nothing is overwritten silently)."""
    for path in paths:
        if path.exists():
            raise RunFolderError(f"{path}: already exists; choose another --out or move it away")


def create_run_dir(out: Path) -> Path:
    """Create the planned folder and prove it is writable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write the run folder ({exc.strerror or exc})") from None
    return out


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def git_revision() -> str | None:
    """The ctdistill source revision (with ``-dirty`` for local edits), None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def manifest(config: dict, dataset_summary: dict, extra: dict | None = None) -> dict:
    """What is needed to reproduce a run: configuration, seed, versions, data fingerprint, revision."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "seed": config.get("seed"),
        "dataset": dataset_summary,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **(extra or {}),
    }
