"""ctdistill's cache folders: the root, and the persistent cache of compiled training steps, so a second
run of the same model does not compile again (the decoded-image cache is ``data.cache``).

On JAX every ``fit`` compiles its training step with XLA; for a big teacher that is minutes (issue
#30: DenseNet121 on one GPU, 223-317 s). JAX can keep the compiled programs on disk: its key hashes
the program itself (so the model, input shapes and dtypes), the JAX and jaxlib versions, the device
kind and the compiler's options and flags, so a change of any of them misses and compiles afresh,
never reusing a stale entry. TensorFlow keeps XLA's compilations with
``--tf_xla_persistent_cache_directory``, which matters only where Keras compiles with XLA (a GPU;
on a CPU Keras' TensorFlow trainer traces a graph, which is not compiled code and is not cached).
Keras' torch backend does not compile.

The folder is ``compiled/<backend>`` under ctdistill's cache (``$CTDISTILL_CACHE``, default
``~/.cache/ctdistill``; ``ctdistill run --cache-dir``); ``CTDISTILL_COMPILE_CACHE=off``
(``ctdistill run --no-compile-cache``) turns it off. ``ctdistill doctor`` shows its size.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

CACHE_ENV = "CTDISTILL_CACHE"           # the root of every ctdistill cache (decoded images, compiled steps)
SWITCH_ENV = "CTDISTILL_COMPILE_CACHE"  # "off" turns the compiled-step cache off
OFF = ("0", "off", "false", "no", "none")
# JAX stores only programs that took at least this long to compile (its default: 1 s). Every one: a
# DenseNet121 teacher's first epoch compiles 113 programs, 110 of them under a second but 9 s together;
# keeping them all (4.5 MB) took the warm first epoch from 23.0 to 19.9 s (BENCHMARKS.md, "Compile time").
MIN_COMPILE_SECONDS = 0.0

log = logging.getLogger("ctdistill")


def cache_root() -> Path:
    """ctdistill's cache folder: ``$CTDISTILL_CACHE``, else ``~/.cache/ctdistill``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ctdistill")


def compile_cache_dir(backend: str) -> Path | None:
    """Where ``backend``'s compiled steps are kept, or None when the cache is off.

    Example:
        >>> os.environ[SWITCH_ENV] = "off"; compile_cache_dir("jax") is None
        True
        >>> del os.environ[SWITCH_ENV]; compile_cache_dir("jax").parts[-2:]
        ('compiled', 'jax')
    """
    if os.environ.get(SWITCH_ENV, "").strip().lower() in OFF:
        return None
    return cache_root() / "compiled" / backend


def tensorflow_flags() -> None:
    """Point TensorFlow's XLA at its folder (before TensorFlow starts: XLA reads its flags once)."""
    folder = compile_cache_dir("tensorflow")
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if folder is not None and "tf_xla_persistent_cache_directory" not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={folder}".strip()


def enable_compile_cache(backend: str) -> Path | None:
    """Turn the persistent cache on for the running backend; returns its folder (None: off or not applicable).

    Call before the first compilation (``run.pipeline.run`` does, at its start). Idempotent.
    """
    folder = compile_cache_dir(backend)
    if folder is None or backend not in ("jax", "tensorflow"):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "jax":
        import jax

        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    log.debug("compiled-step cache: %s", folder)
    return folder


def folder_size(folder: Path) -> tuple[int, int]:
    """``(files, bytes)`` under ``folder`` (0, 0 when absent)."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)
