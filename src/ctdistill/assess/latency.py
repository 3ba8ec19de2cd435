"""Inference speed of exported models: batch-1 latency and large-batch throughput, 1 thread and all.

LiteRT models are timed in this process (the interpreter takes a thread count). A Keras model's
thread pool is fixed when TensorFlow starts, so each Keras thread setting runs in a fresh
subprocess (``python -m ctdistill.assess.latency``). Inputs are random images of the model's input size
(speed does not depend on pixel values). Numbers only; the CLI prints them and ``report`` plots them.

Example:
    >>> table = bench_models([Path("runs/ct1/resnet50_student_int8.tflite")])   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ctdistill.core.errors import CtdistillError

BENCH_COLUMNS = ["model", "file", "format", "threads", "latency_ms_median", "latency_ms_p95", "throughput_img_s",
                 "batch", "calls", "size_mb"]


def time_calls(call, x1: np.ndarray, xb: np.ndarray, calls: int, warmup: int) -> dict:
    """Median and 95th-percentile latency of ``call(x1)``, and images per second of ``call(xb)``."""
    for _ in range(warmup):
        call(x1)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call(x1)
        times.append(time.perf_counter() - t0)
    call(xb)  # warm the large batch shape
    rounds, t0 = 0, time.perf_counter()
    while rounds < 3 or time.perf_counter() - t0 < 1.0:
        call(xb)
        rounds += 1
    return {"latency_ms_median": 1e3 * float(np.median(times)), "latency_ms_p95": 1e3 * float(np.percentile(times, 95)),
            "throughput_img_s": rounds * len(xb) / (time.perf_counter() - t0), "calls": calls}


def _inputs(shape: tuple[int, ...], batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    xb = rng.integers(0, 256, (batch, *shape)).astype(np.float32)
    return xb[:1], xb


def bench_tflite(path: Path, threads: int, calls: int, warmup: int, batch: int) -> dict:
    from ctdistill.models.inference import LiteRTModel

    model = LiteRTModel(path, num_threads=threads)
    x1, xb = _inputs(tuple(model.input["shape"][1:]), batch)
    return time_calls(lambda x: model.logits(x, batch_size=len(x)), x1, xb, calls, warmup)


# ``Model.predict`` on a whole array, as users call it: KERAS_PREDICT_BATCHES batches per call, so its
# per-call set-up (a data adapter, a tf.data pipeline) is shared the way it is on a real test set.
KERAS_PREDICT_BATCHES = 8


def bench_keras_here(path: Path, calls: int, warmup: int, batch: int) -> dict:
    """Time a Keras model in this process (with whatever threads TensorFlow started with), two ways:
    ``predict_on_batch`` (Keras' leanest inference path) and ``predict`` (what users call), keyed by
    format."""
    from ctdistill.models.inference import load_model

    model = load_model(path)
    x1, xb = _inputs(tuple(model.input_shape[1:]), batch)
    lean = time_calls(model.predict_on_batch, x1, xb, calls, warmup)
    many = np.concatenate([xb] * KERAS_PREDICT_BATCHES)
    call = lambda x: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
    timed = time_calls(call, x1, many, max(calls // 4, 10), max(warmup // 4, 3))
    return {"keras float32": lean, "keras float32 predict": timed}


def bench_keras(path: Path, threads: int, calls: int, warmup: int, batch: int) -> dict:
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(min(threads, 2)),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "ctdistill.assess.latency", str(path), str(calls), str(warmup),
                           str(batch)],
                          capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise CtdistillError(f"{path}: Keras benchmark failed ({done.stderr.strip().splitlines()[-1:]})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_files(paths: list[str | Path]) -> list[Path]:
    """Model files as given, and every student model with a card in a given run folder (teachers only when
    given as files: they are not what a deployment runs)."""
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p.with_name(p.name[:-5]) for p in path.glob("*.json")
                            if p.name[:-5].endswith((".tflite", ".keras")) and p.with_name(p.name[:-5]).is_file()
                            and "_Teacher." not in p.name)
        elif path.is_file() and path.suffix in (".tflite", ".keras"):
            files.append(path)
        else:
            raise CtdistillError(f"{path}: not a .tflite or .keras file, nor a run folder")
    if not files:
        raise CtdistillError(f"{', '.join(map(str, paths))}: no model to benchmark")
    return files


def bench_models(paths: list[str | Path], threads: tuple[int, ...] | None = None, calls: int = 200, warmup: int = 20,
                 batch: int = 256, progress=None) -> pd.DataFrame:
    """One row per (model, thread count): latency and throughput (see ``BENCH_COLUMNS``)."""
    from ctdistill.models.inference import check_model_file

    threads = threads or tuple(sorted({1, os.cpu_count() or 1}))
    files = model_files(paths)
    for path in files:  # every file checked before any is timed: a broken one is named at once
        check_model_file(path)
    rows = []
    for path in files:
        fmt = f"litert {path.stem.rsplit('_', 1)[-1]}"
        for n in threads:
            if progress:
                progress(f"{path.name}: {n} thread(s)")
            timings = (bench_keras(path, n, calls, warmup, batch) if path.suffix == ".keras"
                       else {fmt: bench_tflite(path, n, calls, warmup, batch)})
            rows += [{"model": path.name.rsplit(".", 1)[0], "file": path.name, "format": how, "threads": n, **timing,
                      "batch": batch, "size_mb": path.stat().st_size / 1e6}
                     for how, timing in timings.items()]
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


if __name__ == "__main__":  # the Keras worker: python -m ctdistill.assess.latency MODEL CALLS WARMUP BATCH
    import ctdistill.core.quiet as _quiet

    _quiet.import_backend_quietly()
    model_path, n_calls, n_warmup, n_batch = Path(sys.argv[1]), *map(int, sys.argv[2:5])
    print(json.dumps(bench_keras_here(model_path, n_calls, n_warmup, n_batch)))
