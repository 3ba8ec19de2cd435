"""Runs side by side: what differs in their configurations, their headline numbers, and the paired
difference of their chosen models where they were tested on the same images.

Each run is represented by the model its verdict chose to deploy (the best distilled student when
none was fit to deploy or none was quantized): its test accuracy and macro-F1 with their 95%
intervals, from the run's ``metrics.csv``. Two runs whose test splits hold the same files are
compared image by image, against the first run given: the difference in accuracy and macro-F1 with
a paired bootstrap interval (``assess.compare.paired_gain``, as the distillation gain) and McNemar's
exact test on the images where exactly one of them is right.

Example:
    >>> found = compare_runs([Path("runs/crop"), Path("runs/whole")])        # doctest: +SKIP
    >>> found["differs"]                                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ctdistill.assess.compare import mcnemar_exact, paired_gain
from ctdistill.core.errors import RunFolderError
from ctdistill.run import folder as rf
from ctdistill.run.book import saved_values

HEADLINE = ("accuracy", "accuracy_lo", "accuracy_hi", "f1", "f1_lo", "f1_hi", "n")
IGNORED = ("data", "preset")  # keys that name a source or a recipe's name, not what was computed


def chosen_model(run_dir: Path) -> str:
    """The model a run stands for: its verdict's deployed model, else its best distilled student."""
    verdict = rf.read_json(run_dir, rf.VERDICT, {})
    if verdict.get("deploy"):
        return verdict["deploy"]["model"]
    summary = rf.read_summary(run_dir)
    students = summary[summary["kind"] == "distilled"].sort_values("valid_accuracy", ascending=False)
    if students.empty:
        raise RunFolderError(f"{run_dir}: no distilled student to compare; is it a finished ctdistill run?")
    return str(students["model"].iloc[0])


def differing_keys(configs: dict[str, dict]) -> pd.DataFrame:
    """The configuration keys whose values differ between the runs: one row per key, one column per run."""
    keys = sorted({k for c in configs.values() for k in c} - set(IGNORED))
    rows = [{"key": k, **{name: json.dumps(c.get(k)) for name, c in configs.items()}} for k in keys]
    table = pd.DataFrame(rows)
    return table[table.drop(columns="key").nunique(axis=1) > 1].reset_index(drop=True) if rows else table


def _test_predictions(run_dir: Path, model: str, class_names: list[str]) -> pd.DataFrame:
    frame = rf.read_predictions(rf.predictions_dir(run_dir), model)
    return frame[frame["split"] == "test"].set_index("file")[["true_label", *(f"prob_{c}" for c in class_names)]]


def compare_runs(run_dirs: list[Path], n_resamples: int = 1000, seed: int = 0) -> dict:
    """Compare finished runs (see the module docstring).

    Args:
        run_dirs: two or more finished run folders; the first is the reference of the paired differences.
        n_resamples: bootstrap resamples of the paired intervals (0: none).
        seed: seeds the bootstrap.

    Returns:
        ``{"differs": DataFrame (key, one column per run), "headline": DataFrame (run, model, HEADLINE
        columns, the differing keys' values), "paired": DataFrame (run, against, n_shared, accuracy and
        F1 differences with intervals, McNemar's p and counts; empty where no test images are shared)}``.
    """
    names = [Path(r).name or str(r) for r in run_dirs]
    if len(set(names)) < len(names):
        names = [str(r) for r in run_dirs]
    configs = {n: saved_values(Path(r)) for n, r in zip(names, run_dirs, strict=True)}
    models = {n: chosen_model(Path(r)) for n, r in zip(names, run_dirs, strict=True)}
    headline = []
    for name, run_dir in zip(names, run_dirs, strict=True):
        metrics = pd.read_csv(Path(run_dir) / rf.METRICS_TABLE).set_index("model")
        row = metrics.loc[models[name]]
        headline.append({"run": name, "model": models[name], **{k: row.get(k, np.nan) for k in HEADLINE}})
    differs = differing_keys(configs)
    return {"differs": differs, "headline": pd.DataFrame(headline), "paired": _paired(run_dirs, names, models,
                                                                                      n_resamples, seed)}


def _paired(run_dirs: list[Path], names: list[str], models: dict[str, str], n_resamples: int, seed: int
            ) -> pd.DataFrame:
    first = Path(run_dirs[0])
    classes = rf.class_names(first)
    reference = _test_predictions(first, models[names[0]], classes)
    rows = []
    for name, run_dir in zip(names[1:], run_dirs[1:], strict=True):
        if rf.class_names(Path(run_dir)) != classes:
            continue
        other = _test_predictions(Path(run_dir), models[name], classes)
        shared = reference.index.intersection(other.index)
        if len(shared) == 0:
            continue
        y = np.array([classes.index(c) for c in reference.loc[shared, "true_label"]])
        columns = [f"prob_{c}" for c in classes]
        mine, base = other.loc[shared, columns].to_numpy(), reference.loc[shared, columns].to_numpy()
        rows.append({"run": name, "against": names[0], "n_shared": len(shared),
                     **paired_gain(y, mine, base, len(classes), n_resamples, seed=seed),
                     **mcnemar_exact(y, mine.argmax(axis=1), base.argmax(axis=1))})
    return pd.DataFrame(rows)
