"""Compile time of the teachers' training step: before and after a change, cold and warm cache, per backend.

    python bench/compile_time.py [--teachers densenet121,resnet50] [--backends jax,tensorflow]
                                 [--src OLD/src ...] [--epochs 3] [--out compile.csv]

Each measurement is a fresh process (the backend is fixed at import, and a compiled step lives in
its process) that trains one teacher from scratch with the run's own ``train_teacher`` on synthetic
phantoms shaped like the Kaggle split (612 training and 72 validation images, 32 px, batch 32: both
splits ended in a partial batch before issue #30; now training batches are full and validation goes
in three batches of 24) for ``--epochs`` epochs. It reports the first epoch's seconds, the
median of the later ones, and their difference: the compile time (tracing and compiling the
training and evaluation steps). ``cold`` starts from an empty cache folder; ``warm`` repeats the run
with the folder the cold run filled, on JAX (TensorFlow compiles no XLA on a CPU, so nothing is
cached there; a tree without the compiled-step cache has no warm row). ``--src``
adds source trees to compare (``git worktree add /tmp/old REV``, then ``--src /tmp/old/src``); the
checkout's own ``src`` is always measured. The trees and teachers run one after another, not
interleaved: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT

PER_CLASS = (153, 18, 10)  # train, valid, test per class: 612 / 72 / 40 images, as the Kaggle split


def child(teacher: str, epochs: int) -> None:
    """In the measuring process: train ``teacher`` and print its epoch seconds as JSON."""
    import keras

    from ctdistill.config import Config
    from ctdistill.data.synthetic import load_synthetic
    from ctdistill.training.teachers import train_teacher

    try:
        from ctdistill.core.caches import enable_compile_cache  # absent before issue #30
        folder = enable_compile_cache(keras.backend.backend())
    except ImportError:
        folder = None
    cfg = Config(weights="none", teachers=(teacher,), image_size=32, teacher_epochs=epochs, epochs=epochs,
                 patience=epochs, warmup_epochs=0, batch_size=32)
    keras.utils.set_random_seed(0)
    data = load_synthetic(32, 3, PER_CLASS)
    _, history = train_teacher(teacher, data, cfg)
    print(json.dumps({"seconds": history["seconds"].tolist(), "cache": str(folder) if folder else None}))


def measure(src: Path, backend: str, teacher: str, epochs: int, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "KERAS_BACKEND": backend, "CTDISTILL_CACHE": str(cache),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, __file__, "--child", teacher, "--epochs", str(epochs)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{src} {backend} {teacher}: {done.stderr.strip().splitlines()[-1:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    first, later = found["seconds"][0], statistics.median(found["seconds"][1:])
    return {"first epoch s": round(first, 1), "later epoch s": round(later, 2),
            "compile s": round(first - later, 1), "cached": found["cache"] is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teachers", default="densenet121,resnet50")
    parser.add_argument("--backends", default="jax,tensorflow")
    parser.add_argument("--src", action="append", default=[], help="another source tree to measure")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", help="CSV file for the table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.epochs)
    import pandas as pd

    rows = []
    for src in [*map(Path, args.src), ROOT / "src"]:
        revision = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip()
        for backend in args.backends.split(","):
            for teacher in args.teachers.split(","):
                with tempfile.TemporaryDirectory() as cache:
                    for state in ("cold", "warm"):
                        row = measure(src, backend, teacher, args.epochs, Path(cache))
                        rows.append({"tree": f"{src} ({revision})", "backend": backend, "teacher": teacher,
                                     "cache": state, **row})
                        print(rows[-1], flush=True)
                        if not row["cached"] or backend != "jax":
                            break  # no cache in this tree, or TensorFlow on a CPU (no XLA): warm = cold
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
