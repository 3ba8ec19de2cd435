"""The work of each stage of a run: train (or quantize) one model, save it, record its predictions.

``pipeline`` decides the order and puts each of these behind a completion record (``book``);
every function here trains or converts one thing, writes its files into the run folder and returns
the summary row(s) the tables are made from.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ctdistill.assess.metrics import scoring_options
from ctdistill.config import Config
from ctdistill.data import Dataset
from ctdistill.data.dataset import enlarged
from ctdistill.models.inference import keras_logits
from ctdistill.models.teachers import teacher_size, weights_origin
from ctdistill.quantize.convert import convert_all
from ctdistill.quantize.gate import run_gate
from ctdistill.run import folder as rf
from ctdistill.run.folder import write_csv, write_json
from ctdistill.run.outputs import record, save_model
from ctdistill.training.distill import distill_student, ensemble_teacher
from ctdistill.training.fit import train_scratch
from ctdistill.training.teachers import train_teacher

log = logging.getLogger("ctdistill")


def seed_everything(cfg: Config, seed: int | None = None) -> None:
    """Seed Python, NumPy and the backend (called before each stage so stages do not depend on
    order) and, with ``cfg.deterministic`` on TensorFlow, switch to deterministic ops."""
    keras.utils.set_random_seed(cfg.seed if seed is None else seed)
    if cfg.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # the TensorFlow backend is running: importing it costs nothing

        tf.config.experimental.enable_op_determinism()


def scratch_stage(data: Dataset, cfg: Config, run_dir: Path) -> dict:
    """The no-teacher baseline, trained once per run.

    It depends on no teacher (same data, seed, budget and selection rule for every teacher), so
    training it once per teacher would repeat identical work; every distilled student is compared
    with this one model.
    """
    log.info("== baseline: training the student from scratch (no teacher, same budget)")
    seed_everything(cfg)
    scratch, history = train_scratch(data, cfg, "baseline")
    write_csv(history, run_dir / rf.SCRATCH_HISTORY)
    scratch_file = save_model(scratch, run_dir / rf.SCRATCH_MODEL)
    return record(run_dir, data, scoring(cfg), "scratch_student", "scratch", "", "float32", scratch, scratch_file)


def scoring(cfg: Config) -> dict:
    """How every model's metrics are computed in this run (bins, bootstrap, seed)."""
    return scoring_options(cfg.to_dict())


def quant_table_row(name: str, row: dict, teacher_row: dict, student_row: dict) -> dict:
    """One row of the seed's ``TinyEvalRes_Quant.csv``, in the columns ``run.folder.QUANT_COLUMNS`` names."""
    sizes = {"teacher_mb": teacher_row["size_mb"], "student_mb": student_row["size_mb"], "quantized_mb": row["size_mb"]}
    return {c: name if c == "teacher" else sizes[c] if c in sizes else row[c] for c in rf.QUANT_COLUMNS}


def ensemble_step(teachers: dict[str, keras.Model], rows: list[dict], data: Dataset, cfg: Config,
                  run_dir: Path) -> tuple[keras.Model, dict]:
    """Wrap the trained teachers as one teacher whose logits are their (validation-weighted) mean;
    ``rows`` are the teachers' summary rows (their validation accuracy gives the weights)."""
    valid_acc = {row["teacher"]: row["valid_accuracy"] for row in rows if row["kind"] == "teacher"}
    weights = {n: valid_acc[n] if cfg.ensemble == "weighted" else 1.0 for n in teachers}
    log.info("== ensemble: the %s of %s logits (weights %s)",
             "mean" if cfg.ensemble == "mean" else "validation-weighted mean", ", ".join(teachers),
             {n: round(w, 4) for n, w in weights.items()})
    teacher = ensemble_teacher(teachers, weights)
    data = data.at_size(teacher.input_shape[1])  # the largest teacher's side; the others resize inside
    write_json(run_dir / rf.ENSEMBLE, {"rule": cfg.ensemble, "valid_accuracy": valid_acc, "weights": weights})
    teacher_file = save_model(teacher, run_dir / rf.ENSEMBLE_MODEL)
    return teacher, record(run_dir, data, scoring(cfg), "ensemble_teacher", "teacher", "ensemble", "float32", teacher,
                           teacher_file)


def teacher_step(name: str, data: Dataset, cfg: Config, run_dir: Path) -> tuple[keras.Model, dict]:
    """Train teacher ``name`` on the images at its own side (``teacher_size``), save and score it there;
    a teacher larger than the student is also scored on the student's view (``student_view_accuracy``)."""
    student_view, data = data, data.at_size(teacher_size(name, cfg.weights, cfg.image_size, cfg.teacher_image_size))
    origin = weights_origin(name, cfg.weights)
    log.info("== %s: fine-tuning teacher at %d px (weights=%s%s)", name, data.input_shape[0], cfg.weights,
             f": {origin['file']}, sha256 {origin['sha256']}" if origin else "")
    seed_everything(cfg)
    teacher, history = train_teacher(name, data, cfg)
    write_csv(history, run_dir / rf.teacher_history(name))
    teacher_file = save_model(teacher, run_dir / rf.teacher_model(name))
    row = record(run_dir, data, scoring(cfg), f"{name}_teacher", "teacher", name, "float32", teacher, teacher_file)
    if data is not student_view and cfg.teacher_view == "decoded":  # enlarged: the student's view is its own
        row["accuracy_student_view"] = student_view_accuracy(teacher, student_view, data.input_shape[0])
        log.info("[%s] test accuracy %.1f%% at %d px; %.1f%% on the student's %d px images enlarged", name,
                 100 * row["accuracy"], data.input_shape[0], 100 * row["accuracy_student_view"],
                 student_view.input_shape[0])
    return teacher, row


def student_view_accuracy(teacher: keras.Model, student_view: Dataset, side: int) -> float:
    """The teacher's test accuracy on the student's images enlarged to its own ``side``: roughly the most
    it can pass on through its outputs to a student that sees only those (issue #26: a 224 px Lite0
    teacher scored 94.3% on its images and 52.4% on the 32 px ones enlarged)."""
    test = enlarged(student_view.test, side)
    return float(np.mean(keras_logits(teacher, test.x).argmax(axis=1) == test.y)) if len(test) else float("nan")


def distill_step(name: str, teacher: keras.Model, data: Dataset, cfg: Config,
                 run_dir: Path) -> tuple[keras.Model, dict]:
    log.info("== %s: distilling the student (T=%g, alpha=%g)", name, cfg.temperature, cfg.alpha)
    seed_everything(cfg)
    student, history = distill_student(teacher, data, cfg, name)
    write_csv(history, run_dir / rf.distill_history(name))
    student_file = save_model(student, run_dir / rf.student_model(name))
    save_model(student, run_dir / rf.student_model(name, ".h5"))
    return student, record(run_dir, data, scoring(cfg), f"{name}_student", "distilled", name, "float32", student,
                           student_file)


def quantize_step(name: str, student: keras.Model, student_row: dict, data: Dataset, cfg: Config,
                  run_dir: Path) -> dict:
    """Export every PTQ mode, run the safety gate; returns ``{"rows": summary rows, "gate": record}``."""
    log.info("== %s: quantizing the student (%s)", name, ", ".join(cfg.quant_modes))
    out = lambda m: run_dir / rf.quantized_model(name, m)  # noqa: E731
    files = convert_all(student, cfg.quant_modes, data.train.x, out)
    gate = None
    if "int8" in files and cfg.max_quant_drop >= 0:
        decision, attempts = run_gate(student, files, data.train.x, data.valid.x, data.valid.y, cfg.max_quant_drop,
                                      out)
        files.update({a.mode: run_dir / a.file for a in attempts})
        gate = {"max_drop_points": cfg.max_quant_drop, "decision": decision,
                "attempts": [dataclasses.asdict(a) for a in attempts]}
    rows = [record(run_dir, data, scoring(cfg), f"{name}_student_{mode}", "quantized", name, mode, path, path,
                   params=student_row["params"]) for mode, path in files.items()]
    return {"rows": rows, "gate": gate}


def write_tables(run_dir: Path, tables: dict) -> pd.DataFrame:
    """``summary.csv``, the seed's ``TinyEvalRes_Quant.csv`` and ``quant_gate.json`` from every stage's rows."""
    summary = pd.DataFrame(tables["rows"], columns=rf.SUMMARY_COLUMNS)
    write_csv(summary, run_dir / rf.SUMMARY)
    write_csv(pd.DataFrame(tables["quant"], columns=rf.QUANT_COLUMNS), run_dir / rf.QUANT_TABLE)
    if tables["gates"]:
        write_json(run_dir / rf.QUANT_GATE, tables["gates"])
    return summary
