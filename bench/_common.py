"""The prologue every bench script shares: where the checkout and the real data are, and how to use
the checkout's ctdistill (not an installed copy) with its TensorFlow settings applied first.

A bench script runs as ``python bench/<script>.py``, so this folder is on ``sys.path`` and
``from _common import ...`` works; the scripts' names never shadow a ctdistill module.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent  # bench/
ROOT = HERE.parent                      # the checkout
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "chest-ct-scan"  # the real dataset beside the checkout


def use_checkout() -> None:
    """Import ctdistill from this checkout's ``src/`` (first, so its TensorFlow settings apply)."""
    sys.path.insert(0, str(ROOT / "src"))
    import ctdistill  # noqa: F401  (sets TensorFlow's oneDNN switch before TensorFlow loads)
