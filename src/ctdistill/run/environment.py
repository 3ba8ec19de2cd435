"""What ctdistill runs on: the Keras backend, its devices, the versions of the stack, what can export.

``ctdistill doctor`` prints it; every run's manifest records it (``backend``), so a result says
whether it was trained on TensorFlow or JAX, on a CPU or a GPU.

Example (on the GPU machine of BENCHMARKS.md):
    >>> info = environment()                 # doctest: +SKIP
    >>> info["backend"], info["devices"]     # doctest: +SKIP
    ('jax', ['gpu:0 NVIDIA H200'])
"""

from __future__ import annotations

import importlib.util
import os
import platform

from ctdistill.run.provenance import package_versions

BACKENDS = ("tensorflow", "jax", "torch")


def devices(backend: str) -> list[str]:
    """The backend's compute devices, e.g. ``["cpu:0", "cuda:0 NVIDIA H200"]``."""
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return [f"{d.device_type.lower()}:{d.name.rsplit(':', 1)[-1]}" for d in tf.config.list_physical_devices()]
    if backend == "torch":
        import torch

        return ["cpu:0"] + [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    return []


def environment() -> dict:
    """Backend, devices, versions, and whether this machine can export (quantize) models."""
    import keras

    from ctdistill.quantize.convert import EXPORT_PACKAGES, can_export

    backend = keras.backend.backend()
    return {"backend": backend, "devices": devices(backend), "keras_backend_env": os.environ.get("KERAS_BACKEND"),
            "can_export": can_export(),
            "export_packages": {p: importlib.util.find_spec(p) is not None for p in EXPORT_PACKAGES},
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "versions": package_versions()}


def environment_text(info: dict) -> str:
    """``ctdistill doctor``'s report."""
    lines = [f"backend: {info['backend']} (KERAS_BACKEND={info['keras_backend_env'] or 'unset'})",
             f"devices: {', '.join(info['devices']) or 'none found'}",
             "quantization (LiteRT export): " + ("available" if info["can_export"] else
                                                 "NOT available here (missing: " + ", ".join(
                                                     p for p, ok in info["export_packages"].items() if not ok)
                                                 + "); runs defer it to `ctdistill quantize RUN_DIR`"),
             f"python {info['python']} on {info['platform']}, {info['cpus']} CPU(s)"]
    lines += [f"  {name} {version}" for name, version in info["versions"].items()]
    return "\n".join(lines)


def caches_text(backend: str) -> str:
    """``ctdistill doctor``'s lines on the cache folders: where they are and how much they hold."""
    from ctdistill.core.caches import cache_root, compile_cache_dir, folder_size

    root = cache_root()
    images = folder_size(root) if root.is_dir() else (0, 0)
    compiled = compile_cache_dir(backend)
    lines = [f"cache: {root} ({images[0]} files, {images[1] / 1e6:.1f} MB in all; $CTDISTILL_CACHE or --cache-dir)"]
    if compiled is None:
        lines.append("  compiled training steps: off (CTDISTILL_COMPILE_CACHE=off)")
    else:
        files, size = folder_size(compiled)
        note = "" if backend == "jax" else " (used only where Keras compiles with XLA: a GPU)" \
            if backend == "tensorflow" else " (not used: this backend does not compile)"
        lines.append(f"  compiled training steps ({backend}): {compiled}, {files} files, {size / 1e6:.1f} MB{note}")
    return "\n".join(lines)

