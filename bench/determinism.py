"""What TensorFlow's deterministic ops cost: student training time with ``deterministic`` on and off.

Determinism is switched on process-wide and cannot be switched off again, so each measurement runs
in a fresh process; the two settings alternate (on, off, on, off, ...) so machine noise hits both.

    python bench/determinism.py [--data ../shared/data/chest-ct-scan] [--epochs 20] [--repeats 3]

Prints one row per process and, last, ``determinism_cost=<median on / median off>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import DEFAULT_DATA


def child(data: str, epochs: int, deterministic: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import dataclasses

    from ctdistill.config import Config
    from ctdistill.data import load_dataset
    from ctdistill.run.steps import seed_everything
    from ctdistill.training.fit import train_scratch

    cfg = Config(data=data, weights="none", teachers=("vgg16",), epochs=epochs, patience=epochs,
                 deterministic=deterministic)
    ds = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed)
    seed_everything(cfg)
    train_scratch(ds, dataclasses.replace(cfg, epochs=1), "warm-up")  # tracing, not measured
    seed_everything(cfg)
    start = time.perf_counter()
    _, history = train_scratch(ds, cfg, "timed")
    seconds = time.perf_counter() - start
    print(json.dumps({"deterministic": deterministic, "epochs": len(history), "seconds": round(seconds, 2),
                      "s_per_epoch": round(seconds / len(history), 3),
                      "best_val_accuracy": round(float(history["val_accuracy"].max()), 4)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.epochs, args.child == "on")
        return
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for setting in ("on", "off"):
            out = subprocess.run([sys.executable, __file__, "--child", setting, "--data", args.data, "--epochs",
                                  str(args.epochs)], capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            times[setting].append(row["s_per_epoch"])
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    print(f"median s/epoch: deterministic {on:.3f}, not {off:.3f}")
    print(f"determinism_cost={on / off:.2f}")


if __name__ == "__main__":
    main()
