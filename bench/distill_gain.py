"""The distillation gain of a finished run with ``--seeds``: per seed and pooled over seeds, float and int8.

Reads a run folder's saved predictions (nothing is retrained) and compares, on the same test images,
each seed's distilled student (and its int8 model) with the same seed's scratch student: accuracy on
the official test split and its de-duplicated view, and the macro-F1 gain with a paired bootstrap 95%
interval (``ctdistill.assess.compare.paired_gain``). The pooled row resamples test images once per round and
averages the gain over the seeds on those images, so its interval is that of the seed-mean gain.

    python bench/distill_gain.py runs/lite0 --teacher efficientnet_lite0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def scores(run_dir: Path, model: str, class_names: list[str], seed: int | None):
    from ctdistill.run.folder import predictions_dir, read_predictions, split_arrays

    y, proba, dedup = split_arrays(read_predictions(predictions_dir(run_dir, seed), model), "test", class_names)
    return y, proba.argmax(axis=1), dedup


def gain_table(run_dir: Path, teacher: str, n_resamples: int = 1000) -> list[dict]:
    from ctdistill.run.folder import repeated_seeds

    config = json.loads((run_dir / "config.json").read_text())
    class_names = json.loads((run_dir / "manifest.json").read_text())["dataset"]["class_names"]
    seeds = [None, *repeated_seeds(run_dir)]
    rows = []
    for kind, model in (("float", f"{teacher}_student"), ("int8", f"{teacher}_student_int8")):
        pairs = []
        for seed in seeds:
            y, base, dedup = scores(run_dir, "scratch_student", class_names, seed)
            _, pred, _ = scores(run_dir, model, class_names, seed)
            pairs.append((config["seed"] if seed is None else seed, base, pred))
        rows += gains(kind, y, dedup, pairs, len(class_names), n_resamples)
    return rows


def gains(kind: str, y: np.ndarray, dedup: np.ndarray | None, pairs: list[tuple], n_classes: int,
          n_resamples: int = 1000) -> list[dict]:
    """One row per seed and a pooled row: accuracy (official, de-duplicated) and the macro-F1 gain over the scratch
    student with its paired bootstrap 95% interval; ``pairs`` holds ``(seed, scratch predictions, predictions)``
    on the same test images ``y`` (class indices)."""
    from ctdistill.assess.compare import paired_gain
    from ctdistill.assess.metrics import bootstrap_ci, macro_f1

    rows, eye = [], np.eye(n_classes)
    for seed, base, pred in pairs:
        g = paired_gain(y, eye[pred], eye[base], n_classes, n_resamples)
        right = pred == y
        rows.append({"model": kind, "seed": seed, "acc": 100 * right.mean(),
                     "acc_dedup": 100 * right[dedup].mean() if dedup is not None else np.nan,
                     "scratch_acc": 100 * np.mean(base == y), "f1_gain": 100 * g["f1_gain"],
                     "f1_gain_lo": 100 * g["f1_gain_lo"], "f1_gain_hi": 100 * g["f1_gain_hi"]})

    def pooled(i):
        return np.array([np.mean([macro_f1(y[i], p[i], n_classes) - macro_f1(y[i], b[i], n_classes)
                                  for _, b, p in pairs])])

    low, high = bootstrap_ci(pooled, len(y), n_resamples)
    rows.append({"model": kind, "seed": "pooled", "acc": np.mean([r["acc"] for r in rows]),
                 "acc_std": np.std([r["acc"] for r in rows], ddof=1) if len(rows) > 1 else 0.0,
                 "acc_dedup": np.mean([r["acc_dedup"] for r in rows]),
                 "scratch_acc": np.mean([r["scratch_acc"] for r in rows]),
                 "f1_gain": 100 * pooled(np.arange(len(y)))[0], "f1_gain_lo": 100 * low[0],
                 "f1_gain_hi": 100 * high[0]})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| student | seed | test acc % | dedup acc % | scratch acc % | macro-F1 gain (95% CI) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        spread = r.get("acc_std", np.nan)  # NaN on a seed's row read back from a CSV
        acc = f"{r['acc']:.1f}" + ("" if np.isnan(spread) else f" ± {spread:.1f}")
        lines.append(f"| {r['model']} | {r['seed']} | {acc} | {r['acc_dedup']:.1f} | {r['scratch_acc']:.1f} | "
                     f"{r['f1_gain']:+.1f} ({r['f1_gain_lo']:+.1f} to {r['f1_gain_hi']:+.1f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--teacher", required=True, help="the teacher whose students are compared")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    print(markdown(gain_table(args.run_dir, args.teacher, args.resamples)))


if __name__ == "__main__":
    main()
