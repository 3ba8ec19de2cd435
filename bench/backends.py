"""Epoch times of the three kinds of training on each Keras backend, side by side, on this machine.

    python bench/backends.py [--data DIR] [--backends tensorflow,jax] [--teacher densenet121] [--epochs 4]

For every backend, in a fresh process each (the backend is fixed at import), the run's own
functions train the scratch student, the teacher (from scratch) and a distilled student for
``--epochs`` epochs each on the real data (crop to the body, 32 px, batch 32, the default
augmentation), and report the first epoch's seconds (which include compiling the training step)
and the median of the others. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import DEFAULT_DATA, use_checkout


def measure(data_dir: str, teacher_name: str, epochs: int) -> dict:
    """One backend (the one this process imported): seconds per epoch of each kind of training."""
    import keras

    from ctdistill.config import Config
    from ctdistill.run.data_steps import audit_step, load_data
    from ctdistill.run.steps import seed_everything
    from ctdistill.training.distill import distill_student
    from ctdistill.training.fit import train_scratch
    from ctdistill.training.teachers import train_teacher

    cfg = Config(data=data_dir, weights="none", teachers=(teacher_name,), epochs=epochs, teacher_epochs=epochs,
                 patience=epochs, warmup_epochs=0)
    seed_everything(cfg)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, load_data(cfg), Path(tmp))
    rows = {}
    _, history = train_scratch(data, cfg, "bench")
    rows["scratch student"] = history["seconds"].tolist()
    teacher, history = train_teacher(teacher_name, data, cfg)
    rows[f"{teacher_name} teacher"] = history["seconds"].tolist()
    _, history = distill_student(teacher, data, cfg, "bench")
    rows["distilled student"] = history["seconds"].tolist()
    return {"backend": keras.backend.backend(), "epochs": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--teacher", default="densenet121")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(measure(args.data, args.teacher, args.epochs)), flush=True)
        return
    results = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([sys.executable, __file__, "--child", "--data", args.data, "--teacher", args.teacher,
                               "--epochs", str(args.epochs)], capture_output=True, text=True, env=env)
        line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            sys.exit(f"{backend} failed: {done.stderr[-2000:]}")
        results.append(json.loads(line[0][7:]))
    print("| training | " + " | ".join(f"{r['backend']}: first epoch s | {r['backend']}: median later epoch s"
                                       for r in results) + " |")
    print("|---|" + "---|---|" * len(results))
    for kind in results[0]["epochs"]:
        cells = []
        for r in results:
            seconds = r["epochs"][kind]
            later = sorted(seconds[1:])
            cells += [f"{seconds[0]:.1f}", f"{later[len(later) // 2]:.2f}" if later else "-"]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    use_checkout()
    main()
