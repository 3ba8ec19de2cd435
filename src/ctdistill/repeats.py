"""Repeat the student stages with more seeds (``--seeds``): how much of a difference is luck.

On a few hundred images two trainings of the same student can differ by several points, so one
run's "distillation gained 5 points" may be noise. With ``seeds = [0, 1, 2]`` the scratch student,
every distilled student (from the same trained teachers) and its int8 model are trained again for
each extra seed; their predictions go to ``predictions/seed<k>/`` and the report gives mean ± std
across seeds (``seeds.csv``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import keras

from ctdistill.config import Config
from ctdistill.data import Dataset
from ctdistill.distill import distill_student, train_scratch
from ctdistill.quantize import convert_all
from ctdistill.records import record, save_model

log = logging.getLogger("ctdistill")


def repeat_students(cfg: Config, data: Dataset, teachers: dict[str, keras.Model], run_dir: Path) -> list[int]:
    """Train the students again for every seed in ``cfg.seeds`` other than ``cfg.seed``; returns those seeds."""
    extra = [s for s in cfg.seeds if s != cfg.seed]
    for seed in extra:
        scfg = dataclasses.replace(cfg, seed=seed)
        folder = run_dir / "predictions" / f"seed{seed}"
        log.info("== seed %d: repeating the student stages (scratch, %s)", seed, ", ".join(teachers))
        keras.utils.set_random_seed(seed)
        scratch, _ = train_scratch(data, scfg, f"seed {seed}")
        _record(run_dir, data, "scratch_student", "scratch", "", scratch, folder)
        for name, teacher in teachers.items():
            keras.utils.set_random_seed(seed)
            student, _ = distill_student(teacher, data, scfg, f"{name} seed {seed}")
            _record(run_dir, data, f"{name}_student", "distilled", name, student, folder)
            if "int8" in cfg.quant_modes:
                with tempfile.TemporaryDirectory() as tmp:
                    path = convert_all(student, ("int8",), data.train.x, lambda m: Path(tmp) / f"{name}_{m}.tflite")
                    record(run_dir, data, f"{name}_student_int8", "quantized", name, "int8", path["int8"],
                           path["int8"], params=student.count_params(), folder=folder)
    return extra


def _record(run_dir: Path, data: Dataset, model_id: str, kind: str, teacher: str, model: keras.Model,
            folder: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:  # only the predictions are kept; the size is the model's
        file = save_model(model, Path(tmp) / f"{model_id}.keras")
        record(run_dir, data, model_id, kind, teacher, "float32", model, file, folder=folder)
