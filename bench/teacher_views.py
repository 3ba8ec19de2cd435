"""Distillation from a pool of augmented views (``--teacher-views K``) against the teacher on every
batch, on real trained teachers: re-distils the student of finished runs with the pool and compares
with the student each run distilled itself (same teacher, data split, seed and recipe).

    python bench/teacher_views.py RUN_DIR [RUN_DIR ...] [--views 8]

Each RUN_DIR is a finished ``ctdistill run`` whose config had augmentation on (teacher on every
batch). Prints one row per run and the mean test accuracy of both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import ctdistill  # noqa: F401  (TensorFlow settings first)
from ctdistill.config import Config
from ctdistill.models.inference import load_model, predict_keras
from ctdistill.run.book import saved_values
from ctdistill.run.data_steps import audit_step, load_data
from ctdistill.run.steps import seed_everything
from ctdistill.training.distill import distill_student


def one(run_dir: Path, views: int) -> dict:
    cfg = Config.from_mapping(saved_values(run_dir), "config.json")  # with the legacy values of an older run
    cfg = dataclasses.replace(cfg, teacher_views=views)
    (name,) = cfg.teachers
    data = load_data(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, data, Path(tmp))  # the run's own split (seeded)
    teacher = load_model(run_dir / f"{name}_Teacher.keras")
    seed_everything(cfg)
    clock = time.perf_counter()
    student, history = distill_student(teacher, data, cfg, f"{name} views={views}")
    seconds = time.perf_counter() - clock
    accuracy = float((predict_keras(student, data.test.x).argmax(1) == data.test.y).mean())
    summary = {r["model"]: r for r in _rows(run_dir / "summary.csv")}
    live = json.loads((run_dir / "timings.json").read_text())["teachers"][name]
    return {"run": run_dir.name, "seed": cfg.seed, "live_accuracy": float(summary[f"{name}_student"]["accuracy"]),
            "live_s": live.get("distill_s"), "live_epochs": _epochs(run_dir / f"{name}_Distiller_history.csv"),
            "pool_accuracy": accuracy, "pool_s": round(seconds, 1), "pool_epochs": len(history)}


def _rows(path: Path) -> list[dict]:
    import pandas as pd

    return pd.read_csv(path).to_dict(orient="records")


def _epochs(path: Path) -> int:
    return len(_rows(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--views", type=int, default=8)
    args = parser.parse_args()
    rows = [one(r, args.views) for r in args.runs]
    print(f"| run | seed | teacher on every batch: test % | s | epochs | pool of {args.views} views: test % | s | "
          "epochs |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['run']} | {r['seed']} | {100 * r['live_accuracy']:.1f} | {r['live_s']} | {r['live_epochs']} | "
              f"{100 * r['pool_accuracy']:.1f} | {r['pool_s']} | {r['pool_epochs']} |")
    print(f"mean test accuracy: teacher on every batch {100 * statistics.mean(r['live_accuracy'] for r in rows):.1f}, "
          f"pool {100 * statistics.mean(r['pool_accuracy'] for r in rows):.1f}")


if __name__ == "__main__":
    main()
