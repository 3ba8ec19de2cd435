"""Seconds per teacher epoch from scratch: the seed's procedure against ctdistill's recipe, and what
each of the recipe's differences costs (issue #30: ctdistill's teacher stage was 1.3x the reference's).

    python bench/teacher_stage.py [--data DIR] [--teachers resnet50,densenet121] [--epochs 5]
                                  [--settings reference,ctdistill,...]

Each (teacher, setting) trains in a fresh process, one after another (run it on an otherwise idle
machine), on the real data cropped to the body as ``bench/pipeline_runs.py --crop body`` does, for
``--epochs`` epochs at batch 32; it prints the first epoch's seconds (compilation included) and the
median of the later ones. Settings:

- ``reference``: ``reference_seed.fit_fixed`` on the given splits (613 training, 72 validation
  images), no augmentation, no determinism: the seed's procedure's teacher epoch;
- ``ctdistill``: the run's own ``train_teacher`` with the default recipe (the carved validation
  split, 548 / 137 images; augmentation in the training step; deterministic ops);
- ``no-augment``, ``given-valid``, ``not-deterministic``, ``no-weight-decay``: ctdistill with one
  difference removed; ``constant-adam``: without the schedule, its warm-up and weight decay;
- ``seed-recipe``: ctdistill's training code (``train_teacher``) with ``--preset seed``'s recipe at
  batch 32: what is left is the code, not the recipe.
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

from _common import DEFAULT_DATA, HERE

SETTINGS = {
    "reference": None,
    "ctdistill": {},
    "no-augment": {"augment": "none"},
    "given-valid": {"validation": "given"},
    "not-deterministic": {"deterministic": False},
    "no-weight-decay": {"weight_decay": 0.0},
    "constant-adam": {"lr_schedule": "constant", "warmup_epochs": 0, "weight_decay": 0.0},
    # ctdistill's code with the seed's recipe (no augmentation, constant Adam, the given splits) at batch 32
    "seed-recipe": {"preset": "seed", "crop": "body", "batch_size": 32},
}


def child(teacher: str, setting: str, data_dir: str, epochs: int) -> list[float]:
    """In the measuring process: train ``teacher`` under ``setting``; returns each epoch's seconds."""
    from ctdistill.config import Config

    cfg = Config.from_mapping({"data": data_dir, "weights": "none", "teachers": teacher, "teacher_epochs": epochs,
                               "epochs": epochs, "patience": epochs, "finetune_learning_rate": 1e-3, "crop": "body",
                               **(SETTINGS[setting] or {})})
    return reference_epochs(teacher, cfg, epochs) if SETTINGS[setting] is None else ctdistill_epochs(teacher, cfg)


def reference_epochs(teacher: str, cfg, epochs: int) -> list[float]:
    """The seed's procedure, as ``bench/pipeline_runs.py`` runs it: the given splits, no determinism."""
    import keras
    from distill_epoch import EpochTimer
    from reference_seed import fit_on_splits, load_inputs

    from ctdistill.models.teachers import build_teacher

    data = load_inputs(cfg)
    keras.utils.set_random_seed(cfg.seed)
    model, timer = build_teacher(teacher, data.input_shape, data.n_classes, weights=None), EpochTimer()
    fit_on_splits(model, data, cfg, cfg.finetune_learning_rate, epochs, callbacks=[timer])
    return timer.times


def ctdistill_epochs(teacher: str, cfg) -> list[float]:
    """The run's own data steps and ``train_teacher``; the epoch seconds its history records."""
    from ctdistill.run.data_steps import audit_step, load_data
    from ctdistill.run.steps import seed_everything
    from ctdistill.training.teachers import train_teacher

    seed_everything(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, load_data(cfg), Path(tmp))
    return train_teacher(teacher, data, cfg)[1]["seconds"].tolist()


def measure(teacher: str, setting: str, data_dir: str, epochs: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps([teacher, setting, data_dir, epochs])],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{teacher} {setting}: {done.stderr.strip().splitlines()[-1:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return {"teacher": teacher, "setting": setting, "first epoch s": round(seconds[0], 1),
            "later epoch s": round(statistics.median(seconds[1:]), 2), "epochs": len(seconds)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--teachers", default="resnet50,densenet121")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per measurement (at least 2)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated: {', '.join(SETTINGS)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    settings = args.settings.split(",")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown or args.epochs < 2:
        parser.error(f"unknown settings {unknown}" if unknown else "--epochs must be at least 2")
    import pandas as pd

    rows = []
    for teacher in args.teachers.split(","):
        for setting in settings:
            rows.append(measure(teacher, setting, args.data, args.epochs))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    base = table[table["setting"] == "reference"].set_index("teacher")["later epoch s"]
    if len(base):
        table["vs reference"] = (table["later epoch s"] / table["teacher"].map(base)).round(2)
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
