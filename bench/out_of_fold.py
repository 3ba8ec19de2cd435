"""Soft targets the teacher did not learn: distil from out-of-fold predictions of scratch students.

    python bench/out_of_fold.py [--data DIR] [--folds 3] [--seeds 0,1,2] [--epochs 300] [--batch-size 32]
                                [--temperature 4] [--models DIR] [--out rows.csv]

``bench/student_ensemble.py`` found that an ensemble of scratch students (86.7% test) distils into
a student no better than scratch: its members trained on the very images the student learns from,
so their targets there are nearly the labels. Here every training image is labelled by a member
that never saw it. Train + valid are pooled and cut into ``--folds`` folds by copy groups
(``StratifiedGroupKFold``, as ``ctdistill``'s splits); member k trains on the other folds with the
default recipe and selects on fold k. A student (one per ``--seeds``, its validation carved as in
``ctdistill run``) is then distilled with the run's distiller from cached logits: for each of the
run's augmented views (``teacher_views``) of an image, the logits of the member that held that
image out (cross-fitting, as in stacking; no test image is touched). Members are saved to
``--models`` and reused. Rows go to ``--out``: each member on its held-out fold and on test, the
members' mean on test, each student in float and int8. ``--train-fold K`` trains member K only, so
members can be trained in parallel processes first.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import DEFAULT_DATA, use_checkout


def pool_folds(data, data_dir: str, folds: int) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Train + valid pooled: (paths, labels, path -> fold), folds by the audit's near-copy groups."""
    from sklearn.model_selection import StratifiedGroupKFold

    from ctdistill.data.audit import audit_cached

    paths = data.train.paths + data.valid.paths
    y = np.concatenate([data.train.y, data.valid.y])
    near = audit_cached(data_dir, data.fingerprint).table.set_index("path")["near_group"].loc[paths].to_numpy()
    groups = np.where(near >= 0, near, -np.arange(1, len(y) + 1))
    fold_of = {}
    for k, (_, held) in enumerate(StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(y, y, groups)):
        fold_of.update({paths[i]: k for i in held})
    return paths, y, fold_of


def train_members(args, out: list[dict]) -> tuple[list, dict[str, int]]:
    """Member k: scratch student trained on the pool without fold k, selected on fold k."""
    from recipe_variants import score_on_test
    from student_ensemble import prepared

    from ctdistill.data.dataset import Split
    from ctdistill.models.inference import load_model, predict_keras
    from ctdistill.run.outputs import save_model
    from ctdistill.training.distill import ensemble_teacher
    from ctdistill.training.fit import train_scratch

    cfg, data = prepared(args.data, 0, args.epochs, args.batch_size)
    paths, y, fold_of = pool_folds(data, args.data, args.folds)
    x = np.concatenate([data.train.x, data.valid.x])
    members = []
    for k in range(args.folds):
        path = args.models / f"fold-{k}-of-{args.folds}.keras"
        if args.train_fold is not None and k != args.train_fold:
            continue
        if path.exists():
            members.append(load_model(path))
            continue
        held = np.array([fold_of[p] == k for p in paths])
        kept = [p for p, h in zip(paths, held, strict=True) if not h]
        part = dataclasses.replace(data, train=Split(x[~held], y[~held], kept),
                                   valid=Split(x[held], y[held], [p for p, h in zip(paths, held, strict=True) if h]))
        clock = time.perf_counter()
        model, history = train_scratch(part, cfg, f"fold {k}")
        seconds = round(time.perf_counter() - clock, 1)
        fold_acc = float((predict_keras(model, part.valid.x).argmax(1) == part.valid.y).mean())
        out.append({"model": f"member {k} (without fold {k})", "seed": 0, **score_on_test(model, data),
                    "held_out_acc": fold_acc, "epochs_run": len(history), "seconds": seconds})
        args.models.mkdir(parents=True, exist_ok=True)
        save_model(model, path)
        members.append(model)
    if args.train_fold is not None:
        return members, fold_of
    for k, model in enumerate(members):
        model.name = f"member_{k}"  # all are "scratch_student"; one graph needs unique names
    mean = ensemble_teacher({m.name: m for m in members}, {m.name: 1.0 for m in members})
    out.append({"model": f"mean of the {args.folds} members", "seed": 0, **score_on_test(mean, data)})
    return members, fold_of


def oof_logits(members: list, fold: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row i: the logits of the member that held image i out (``fold[i]``)."""
    from ctdistill.models.inference import keras_logits

    every = np.stack([keras_logits(m, x) for m in members])  # (members, N, classes)
    return every[fold, np.arange(len(x))]


def distil_one(args, members: list, fold_of: dict[str, int], seed: int) -> dict:
    """One student distilled from the out-of-fold logits of its own training and validation images."""
    from recipe_variants import int8_figures, score_on_test
    from student_ensemble import prepared

    from ctdistill.run.steps import seed_everything
    from ctdistill.training.distill import augmented_views, make_distiller, new_student
    from ctdistill.training.fit import as_float, fit
    from ctdistill.training.recipe import steps_per_epoch, training_batches

    overrides = {} if args.temperature is None else {"temperature": args.temperature}
    cfg, data = prepared(args.data, seed, args.epochs, args.batch_size, **overrides)
    seed_everything(cfg)
    views = augmented_views(data, cfg)  # the same views as the run's pool
    fold = np.tile([fold_of[p] for p in data.train.paths], cfg.teacher_views)
    train = {"image": views, "teacher_logits": oof_logits(members, fold, views)}
    valid_x = as_float(data.valid.x)
    valid_fold = np.array([fold_of[p] for p in data.valid.paths])
    valid = {"image": valid_x, "teacher_logits": oof_logits(members, valid_fold, valid_x)}
    # The views are augmented already: a continuous stream over them, an epoch as long as one pass over train.
    stream = training_batches(train, np.tile(data.train.y, cfg.teacher_views), data.n_classes, cfg,
                              steps=steps_per_epoch(data.train.y, cfg))
    distiller = make_distiller(members[0], new_student(data, cfg, "student"), cfg, data.train.y)  # logits cached
    clock = time.perf_counter()
    history = fit(distiller, data, cfg, f"seed {seed} out-of-fold", inputs={"train": None, "valid": valid},
                  train=stream)
    seconds = round(time.perf_counter() - clock, 1)
    history.to_csv(args.out.with_name(f"{args.out.stem}-history-s{seed}.csv"), index=False)
    with tempfile.TemporaryDirectory() as tmp:
        int8 = int8_figures(distiller.student, data, Path(tmp))
    teacher_acc = float((train["teacher_logits"].argmax(1) == np.tile(data.train.y, cfg.teacher_views)).mean())
    return {"model": "out-of-fold-distilled student", "seed": seed, "temperature": cfg.temperature,
            **score_on_test(distiller.student, data), "int8_acc": int8["int8_acc"],
            "teacher_acc_on_views": teacher_acc, "epochs_run": len(history), "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the distilled students; empty: members only")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--temperature", type=float, help="default: the run's (2)")
    parser.add_argument("--train-fold", type=int, help="only train (or load) member K, then stop: members in parallel")
    parser.add_argument("--models", type=Path, default=Path("oof-members"))
    parser.add_argument("--out", type=Path, default=Path("out_of_fold.csv"))
    args = parser.parse_args(argv)
    earlier = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame()
    rows: list[dict] = []

    def keep(new: list[dict]) -> None:  # rows differ in columns: rewrite the file with their union
        rows.extend(new)
        for row in new:
            print(row, flush=True)
        pd.concat([earlier, pd.DataFrame(rows)], ignore_index=True).to_csv(args.out, index=False)

    trained: list[dict] = []
    members, fold_of = train_members(args, trained)
    keep(trained)
    if args.train_fold is not None:
        return
    for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
        keep([distil_one(args, members, fold_of, seed)])
    students = pd.DataFrame([r for r in rows if r["model"] == "out-of-fold-distilled student"])
    if len(students):
        spread = (lambda c: 100 * students[c].std(ddof=1)) if len(students) > 1 else (lambda c: 0.0)
        cells = [f"{c} {100 * students[c].mean():.1f} ± {spread(c):.1f}"
                 for c in ("test_acc", "dedup_acc", "test_f1", "int8_acc")]
        print(f"out-of-fold-distilled student ({len(students)} seeds): " + ", ".join(cells))


if __name__ == "__main__":
    use_checkout()
    main()
