"""Provenance: what a run's ``manifest.json`` records so it can be reproduced (configuration, seed,
package versions, dataset fingerprint, git revision, platform)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = ("ctdistill", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "ai-edge-litert", "numpy",
            "scikit-learn", "scipy", "pandas", "pillow", "pydicom", "matplotlib", "imagehash", "ray")


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
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config": config,
        "seed": config.get("seed"),
        "dataset": dataset_summary,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **(extra or {}),
    }
