"""Distillation settings tried on a finished run's teacher: temperature, alpha, the view pool, patience.

    python bench/kd_settings.py RUN --teacher NAME [--seeds 0,1,2] [--int8] [--out rows.csv] \
        --setting temperature=4,alpha=0.1 [--setting ...]

A run trains its teachers once, at the run's own distillation settings (T 2, alpha 0.5, a pool of 8
views). This loads the run's saved teacher (``<NAME>_Teacher.keras``, or ``ensemble_Teacher.keras``)
and the data as the run made them (its ``config.json``: the same decoding, crop, audit and carved
validation), distils one student per seed and setting with the run's own ``distill_student``, and
compares each, on the same test images, with that seed's scratch student from the run (its saved
predictions): accuracy and the paired macro-F1 gain, per seed and pooled over seeds
(``distill_gain.gains``). The run's own setting is the row ``run``, read from its predictions.
Nothing in the run folder changes; rows go to ``--out`` as they finish.

A setting is ``key=value`` pairs of ``Config`` keys joined by commas (``temperature``, ``alpha``,
``teacher_views``, ``patience``, ``epochs``, ...), checked by the same rules as the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import use_checkout


def setting(text: str) -> dict:
    """``"temperature=4,alpha=0.1"`` -> ``{"temperature": "4", "alpha": "0.1"}`` (``Config`` coerces the values)."""
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() for p in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: expected key=value[,key=value...]")
    return {k.strip(): v.strip() for k, v in pairs}


def run_data(run_dir: Path):
    """The run's configuration and the dataset it trained on (decoded, cropped, audited and split as it did)."""
    from ctdistill.config import Config
    from ctdistill.run.book import saved_values
    from ctdistill.run.data_steps import audit_step, load_data

    cfg = Config.from_mapping(saved_values(run_dir), str(run_dir / "config.json"))
    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, load_data(cfg), Path(tmp))
    return cfg, data


def teacher_of(run_dir: Path, name: str):
    from ctdistill.models.inference import load_model
    from ctdistill.run.folder import ENSEMBLE_MODEL, teacher_model

    return load_model(run_dir / (ENSEMBLE_MODEL if name == "ensemble" else teacher_model(name)))


def distil(teacher, data, cfg, seed: int, int8: bool) -> tuple[np.ndarray, dict]:
    """One student distilled at ``cfg`` with ``seed``: its test predictions (class indices) and figures."""
    import keras
    from recipe_variants import int8_figures

    from ctdistill.models.inference import predict_keras
    from ctdistill.training.distill import distill_student

    keras.utils.set_random_seed(seed)
    clock = time.perf_counter()
    student, history = distill_student(teacher, data, dataclasses.replace(cfg, seed=seed), f"seed {seed}")
    figures = {"epochs_run": len(history), "seconds": round(time.perf_counter() - clock, 1)}
    if int8:
        with tempfile.TemporaryDirectory() as tmp:
            figures["int8_acc"] = 100 * int8_figures(student, data, Path(tmp))["int8_acc"]
    return predict_keras(student, data.test.x).argmax(axis=1), figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--teacher", required=True, help="a teacher of the run, or 'ensemble'")
    parser.add_argument("--setting", type=setting, action="append", required=True,
                        help="Config keys to change, e.g. temperature=4,alpha=0.1 (repeat for more settings)")
    parser.add_argument("--seeds", default="0,1,2", help="student seeds; each needs the run's scratch student")
    parser.add_argument("--int8", action="store_true", help="also convert each student to full int8 and score it")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("kd_settings.csv"))
    args = parser.parse_args(argv)
    from distill_gain import gains, markdown, scores

    from ctdistill.config import Config

    cfg, data = run_data(args.run_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    run_seed = {s: (None if s == cfg.seed else s) for s in seeds}  # the run's own seed lives at the top level
    names = data.class_names
    scratch = {s: scores(args.run_dir, "scratch_student", names, run_seed[s]) for s in seeds}
    y, _, dedup = scratch[seeds[0]]
    if not np.array_equal(y, data.test.y):
        raise SystemExit(f"{args.run_dir}: the test split rebuilt from config.json differs from the run's predictions")
    run_pairs = [(s, scratch[s][1], scores(args.run_dir, f"{args.teacher}_student", names, run_seed[s])[1])
                 for s in seeds]
    rows = [{"setting": "run", **r} for r in gains("float", y, dedup, run_pairs, len(names), args.resamples)]
    teacher = teacher_of(args.run_dir, args.teacher)
    for change in args.setting:
        changed = Config.from_mapping({**cfg.to_dict(), **change}, "--setting")
        label = ",".join(f"{k}={v}" for k, v in change.items())
        pairs, extra = [], []
        for seed in seeds:
            pred, figures = distil(teacher, data, changed, seed, args.int8)
            pairs.append((seed, scratch[seed][1], pred))
            extra.append(figures)
            print(label, seed, figures, f"test acc {100 * np.mean(pred == y):.1f}", flush=True)
        found = gains("float", y, dedup, pairs, len(names), args.resamples)
        for row, figures in zip(found, [*extra, {}], strict=True):
            rows.append({"setting": label, **row, **figures})
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(json.dumps({"run": str(args.run_dir), "teacher": args.teacher, "seeds": seeds}))
    for label, group in pd.DataFrame(rows).groupby("setting", sort=False):
        print(f"\n{label}\n" + markdown(group.to_dict("records")))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")  # progress
    use_checkout()
    main()
