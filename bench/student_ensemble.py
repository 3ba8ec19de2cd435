"""A teacher worth distilling without ImageNet weights? The mean of several scratch students.

    python bench/student_ensemble.py [--data DIR] [--members 0,1,2] [--seeds 0,1,2] [--epochs 300]
                                     [--batch-size 32] [--models DIR] [--out rows.csv]

Born-again students (``bench/born_again.py``) gained nothing from a teacher of their own accuracy.
An ensemble is usually better than any of its members, and its averaged logits are the classic
target for distillation (Hinton, Vinyals & Dean 2015, section 3; "Born-again" ensembles,
Furlanello et al. 2018). Here the members are scratch students trained with the default recipe,
one per seed in ``--members`` (a member whose ``<models>/scratch-s<seed>.keras`` exists is loaded,
not retrained, so members can be trained in parallel processes first). Their logits are averaged
by the run's own ``ensemble_teacher``; then one student per ``--seeds`` is distilled from it with
the run's ``distill_student`` (T, alpha, the view pool: all defaults) and converted to full int8.

Each member's validation split is carved with its own seed, so the ensemble has seen the whole of
train + valid; the official test split is never seen by any model. Rows (one per model, 0..1
scores on the official test split and its de-duplicated view) are added to ``--out``; each
distillation's history goes beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import DEFAULT_DATA, use_checkout


def prepared(data_dir: str, seed: int, epochs: int, batch_size: int, **overrides):
    """The run's config and data for one seed (the same calls as ``ctdistill run``)."""
    from ctdistill.config import Config
    from ctdistill.run.data_steps import audit_step, load_data
    from ctdistill.run.steps import seed_everything

    cfg = Config.from_mapping({"data": data_dir, "weights": "none", "teachers": ["vgg16"], "epochs": epochs,
                               "batch_size": batch_size, "seed": seed, **overrides})
    seed_everything(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, load_data(cfg), Path(tmp))
    return cfg, data


def member(args, seed: int, out: list[dict]):
    """Load ``scratch-s<seed>.keras`` from ``--models`` or train (and save) it."""
    from recipe_variants import score_on_test  # bench/ is on sys.path when a bench script runs

    from ctdistill.models.inference import load_model
    from ctdistill.run.outputs import save_model
    from ctdistill.training.fit import train_scratch

    path = args.models / f"scratch-s{seed}.keras"
    if path.exists():
        return load_model(path)
    cfg, data = prepared(args.data, seed, args.epochs, args.batch_size)
    clock = time.perf_counter()
    model, history = train_scratch(data, cfg, f"member seed {seed}")
    out.append({"model": "scratch student (member)", "seed": seed, **score_on_test(model, data),
                "epochs_run": len(history), "seconds": round(time.perf_counter() - clock, 1)})
    args.models.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    return model


def distilled(args, members: dict, seed: int) -> list[dict]:
    """Score the ensemble teacher, distil one student from it, score the student in float and int8."""
    from recipe_variants import int8_figures, score_on_test

    from ctdistill.run.steps import seed_everything
    from ctdistill.training.distill import distill_student, ensemble_teacher

    kd = {k: v for k, v in (("teacher_views", args.teacher_views), ("alpha", args.alpha),
                            ("temperature", args.temperature), ("patience", args.patience))
          if v is not None}  # unset: the run's defaults
    cfg, data = prepared(args.data, seed, args.epochs, args.batch_size, **kd)
    teacher = ensemble_teacher(members, {name: 1.0 for name in members})
    rows = [{"model": f"ensemble teacher ({len(members)} students)", "seed": seed, **score_on_test(teacher, data)}]
    seed_everything(cfg)
    clock = time.perf_counter()
    student, history = distill_student(teacher, data, cfg, f"seed {seed} from the ensemble")
    seconds = round(time.perf_counter() - clock, 1)
    history.to_csv(args.out.with_name(f"{args.out.stem}-history-s{seed}.csv"), index=False)
    with tempfile.TemporaryDirectory() as tmp:
        int8 = int8_figures(student, data, Path(tmp))
    rows.append({"model": "ensemble-distilled student", "seed": seed, **kd, **score_on_test(student, data),
                 "int8_acc": int8["int8_acc"], "epochs_run": len(history), "seconds": seconds})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--members", default="0,1,2", help="seeds of the scratch students averaged as the teacher")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the distilled students; empty: members only")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--teacher-views", type=int, help="default: the run's (8); 0 runs the teacher on every batch")
    parser.add_argument("--alpha", type=float, help="weight of the hard-label loss; default: the run's (0.5)")
    parser.add_argument("--temperature", type=float, help="default: the run's (2)")
    parser.add_argument("--patience", type=int,
                        help="the distilled students' early-stopping patience; default: the run's (50)")
    parser.add_argument("--models", type=Path, default=Path("ensemble-members"))
    parser.add_argument("--out", type=Path, default=Path("student_ensemble.csv"))
    args = parser.parse_args(argv)
    rows: list[dict] = []

    earlier = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame()

    def keep(new: list[dict]) -> None:  # rows differ in columns: rewrite the file with their union
        for row in new:
            rows.append(row)
            print(row, flush=True)
        pd.concat([earlier, pd.DataFrame(rows)], ignore_index=True).to_csv(args.out, index=False)

    members = {}
    for seed in (int(s) for s in args.members.split(",")):
        trained: list[dict] = []
        members[f"s{seed}"] = member(args, seed, trained)
        members[f"s{seed}"].name = f"member_s{seed}"  # all are "scratch_student"; a graph needs unique names
        keep(trained)
    for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
        keep(distilled(args, members, seed))
    for model, group in pd.DataFrame(rows).groupby("model", sort=False):  # mean ± std over seeds, in %
        columns = [c for c in ("test_acc", "dedup_acc", "test_f1", "int8_acc") if c in group and group[c].notna().any()]
        cells = [f"{c} {100 * group[c].mean():.1f} ± {100 * group[c].std(ddof=1) if len(group) > 1 else 0:.1f}"
                 for c in columns]
        print(f"{model} ({len(group)} seeds): " + ", ".join(cells))


if __name__ == "__main__":
    use_checkout()
    main()
