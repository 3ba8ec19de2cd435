"""Repeat the student stages with more seeds (``--seeds``): how much of a difference is luck.

On a few hundred images two trainings of the same student can differ by several points, so one
run's "distillation gained 5 points" may be noise. With ``seeds = [0, 1, 2]`` the scratch student,
every distilled student (from the same trained teachers) and its int8 model are trained again for
each extra seed; the students are kept in ``seeds/seed<k>/``, their predictions go to
``predictions/seed<k>/`` and the report gives mean ± std across seeds (``seeds.csv``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import keras

from ctdistill.assess.metrics import scoring_options
from ctdistill.config import Config
from ctdistill.data import Dataset
from ctdistill.models.inference import load_model
from ctdistill.quantize.convert import convert_all
from ctdistill.run.folder import SCRATCH_MODEL, predictions_dir, quantized_model, seed_dir, student_model
from ctdistill.run.outputs import record, save_model
from ctdistill.training.distill import distill_student
from ctdistill.training.fit import train_scratch

log = logging.getLogger("ctdistill")


def repeat_students(cfg: Config, data: Dataset, teachers: dict[str, keras.Model], run_dir: Path) -> list[int]:
    """Train the students again for every seed in ``cfg.seeds`` other than ``cfg.seed``; returns those seeds.

    Each student is saved (``seeds/seed<k>/<name>_Student.keras``, so :func:`quantize_repeats` can
    convert it later, also on another machine) and its predictions go to ``predictions/seed<k>/``.
    Every student is one unit (:func:`repeat_scratch`, :func:`repeat_distill`) that seeds itself,
    so ``ray_executor`` can run the units side by side and get the same files.
    """
    for seed in extra_seeds(cfg):
        log.info("== seed %d: repeating the student stages (scratch, %s)", seed, ", ".join(teachers))
        repeat_scratch(cfg, data, run_dir, seed)
        for name, teacher in teachers.items():
            repeat_distill(cfg, data, name, teacher, run_dir, seed)
    return extra_seeds(cfg)


def extra_seeds(cfg: Config) -> list[int]:
    """The seeds of ``cfg.seeds`` whose students are trained again (all but the run's own seed)."""
    return [s for s in cfg.seeds if s != cfg.seed]


def repeat_scratch(cfg: Config, data: Dataset, run_dir: Path, seed: int) -> None:
    """Seed ``seed``'s scratch student (``seeds/seed<k>/Scratch_Student.keras`` and its predictions)."""
    keras.utils.set_random_seed(seed)
    scratch, _ = train_scratch(data, dataclasses.replace(cfg, seed=seed), f"seed {seed}")
    _record(run_dir, data, cfg, seed, "scratch_student", "scratch", "", scratch, SCRATCH_MODEL)


def repeat_distill(cfg: Config, data: Dataset, name: str, teacher: keras.Model, run_dir: Path, seed: int) -> None:
    """Seed ``seed``'s student distilled from teacher ``name`` (``seeds/seed<k>/<name>_Student.keras``)."""
    keras.utils.set_random_seed(seed)
    student, _ = distill_student(teacher, data, dataclasses.replace(cfg, seed=seed), f"{name} seed {seed}")
    _record(run_dir, data, cfg, seed, f"{name}_student", "distilled", name, student, student_model(name))


def quantize_repeats(cfg: Config, data: Dataset, run_dir: Path, seeds: list[int], teachers: list[str]) -> list[int]:
    """The int8 model of every repeated seed's distilled students (when ``int8`` is a configured mode)."""
    if "int8" not in cfg.quant_modes:
        return []
    for seed in seeds:
        for name in teachers:
            student = load_model(seed_dir(run_dir, seed) / student_model(name))
            with tempfile.TemporaryDirectory() as tmp:  # only the predictions are kept
                path = convert_all(student, ("int8",), data.train.x,
                                   lambda m, n=name: Path(tmp) / quantized_model(n, m))
                record(run_dir, data, scoring_options(cfg.to_dict()), f"{name}_student_int8", "quantized", name,
                       "int8", path["int8"], path["int8"], params=student.count_params(),
                       folder=predictions_dir(run_dir, seed))
    return seeds


def _record(run_dir: Path, data: Dataset, cfg: Config, seed: int, model_id: str, kind: str, teacher: str,
            model: keras.Model, file_name: str) -> None:
    """Save seed ``seed``'s student in ``seeds/seed<k>/`` and its predictions in ``predictions/seed<k>/``
    (scored as the run scores every model, so the report reuses the stored metrics)."""
    file = save_model(model, seed_dir(run_dir, seed) / file_name)
    record(run_dir, data, scoring_options(cfg.to_dict()), model_id, kind, teacher, "float32", model, file,
           folder=predictions_dir(run_dir, seed))
