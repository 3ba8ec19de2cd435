"""A teacher worth distilling without ImageNet weights? The trained scratch student as its own teacher.

    python bench/born_again.py [--data DIR] [--seeds 0,1,2] [--epochs 300] [--batch-size 32] [--out rows.csv]

"Born-again networks" (Furlanello et al., ICML 2018): a student distilled from a trained model of
its own architecture can beat that model. Per seed: train the seed student from scratch with the
default recipe (the run's own ``train_scratch``), then distil a fresh student from it with the
run's own ``distill_student`` (T, alpha, the view pool: all defaults). Both are scored on the
official test split and its de-duplicated view; rows are appended to ``--out`` as they finish.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import DEFAULT_DATA, use_checkout


def one_seed(data_dir: str, seed: int, epochs: int, batch_size: int) -> list[dict]:
    from recipe_variants import score_on_test  # bench/ is on sys.path when a bench script runs

    from ctdistill.config import Config
    from ctdistill.run.data_steps import audit_step, load_data
    from ctdistill.run.steps import seed_everything
    from ctdistill.training.distill import distill_student
    from ctdistill.training.fit import train_scratch

    cfg = Config.from_mapping({"data": data_dir, "weights": "none", "teachers": ["vgg16"], "epochs": epochs,
                               "batch_size": batch_size, "seed": seed})
    seed_everything(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, load_data(cfg), Path(tmp))
    rows = []
    clock = time.perf_counter()
    teacher, history = train_scratch(data, cfg, f"seed {seed}")
    rows.append({"model": "scratch student", "seed": seed, **score_on_test(teacher, data), "epochs_run": len(history),
                 "seconds": round(time.perf_counter() - clock, 1)})
    seed_everything(cfg)
    clock = time.perf_counter()
    student, history = distill_student(teacher, data, cfg, f"seed {seed} born-again")
    rows.append({"model": "born-again student", "seed": seed, **score_on_test(student, data),
                 "epochs_run": len(history),
                 "seconds": round(time.perf_counter() - clock, 1)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("born_again.csv"))
    args = parser.parse_args(argv)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for row in one_seed(args.data, seed, args.epochs, args.batch_size):
            rows.append(row)
            pd.DataFrame([row]).to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
            print(row, flush=True)
    for model, group in pd.DataFrame(rows).groupby("model", sort=False):  # mean ± std over seeds, in %
        cells = [f"{c} {100 * group[c].mean():.1f} ± {100 * group[c].std(ddof=1) if len(group) > 1 else 0:.1f}"
                 for c in ("test_acc", "dedup_acc", "test_f1")]
        print(f"{model} ({len(group)} seeds): " + ", ".join(cells))


if __name__ == "__main__":
    use_checkout()
    main()
