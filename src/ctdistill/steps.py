"""The work of each stage of a run: train (or quantize) one model, save it, record its predictions.

``pipeline`` decides the order and puts each of these behind a completion record (``stages``);
every function here trains or converts one thing, writes its files into the run folder and returns
the summary row(s) the tables are made from.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
import pandas as pd

from ctdistill import plots, report
from ctdistill.config import Config
from ctdistill.data import Dataset
from ctdistill.distill import distill_student, ensemble_teacher, train_scratch
from ctdistill.quantgate import run_gate
from ctdistill.quantize import convert_all
from ctdistill.records import record, save_model
from ctdistill.runfolder import write_json
from ctdistill.train import train_teacher

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
    report.write_csv(history, run_dir / "Scratch_history.csv")
    plots.plot_history(history, "student trained from scratch", run_dir / "Plots" / "scratch_curves.png")
    scratch_file = save_model(scratch, run_dir / "Scratch_Student.keras")
    row = record(run_dir, data, "scratch_student", "scratch", "", "float32", scratch, scratch_file)
    return row


def quant_table_row(name: str, row: dict, teacher_row: dict, student_row: dict) -> dict:
    """One row of the seed's ``TinyEvalRes_Quant.csv``."""
    return {"teacher": name, "mode": row["mode"],
            **{k: row[k] for k in ("accuracy", "precision", "recall", "accuracy_dedup", "precision_dedup",
                                   "recall_dedup")},
            "teacher_mb": teacher_row["size_mb"], "student_mb": student_row["size_mb"], "quantized_mb": row["size_mb"]}


def ensemble_step(teachers: dict[str, keras.Model], rows: list[dict], data: Dataset, cfg: Config,
                  run_dir: Path) -> tuple[keras.Model, dict]:
    """Wrap the trained teachers as one teacher whose logits are their (validation-weighted) mean;
    ``rows`` are the teachers' summary rows (their validation accuracy gives the weights)."""
    valid_acc = {row["teacher"]: row["valid_accuracy"] for row in rows if row["kind"] == "teacher"}
    weights = {n: valid_acc[n] if cfg.ensemble == "weighted" else 1.0 for n in teachers}
    log.info("== ensemble: %s mean of %s logits (weights %s)", cfg.ensemble, ", ".join(teachers),
             {n: round(w, 4) for n, w in weights.items()})
    teacher = ensemble_teacher(teachers, weights)
    write_json(run_dir / "ensemble.json", {"rule": cfg.ensemble, "valid_accuracy": valid_acc, "weights": weights})
    teacher_file = save_model(teacher, run_dir / "ensemble_Teacher.keras")
    return teacher, record(run_dir, data, "ensemble_teacher", "teacher", "ensemble", "float32", teacher, teacher_file)


def teacher_step(name: str, data: Dataset, cfg: Config, run_dir: Path) -> tuple[keras.Model, dict]:
    log.info("== %s: fine-tuning teacher (weights=%s)", name, cfg.weights)
    seed_everything(cfg)
    teacher, history = train_teacher(name, data, cfg)
    report.write_csv(history, run_dir / f"{name}_teachermodel.csv")
    plots.plot_history(history, f"{name} teacher", run_dir / "Plots" / f"{name}_teacher_curves.png")
    teacher_file = save_model(teacher, run_dir / f"{name}_Teacher.keras")
    return teacher, record(run_dir, data, f"{name}_teacher", "teacher", name, "float32", teacher, teacher_file)


def distill_step(name: str, teacher: keras.Model, data: Dataset, cfg: Config, run_dir: Path) -> tuple[keras.Model, dict]:
    log.info("== %s: distilling the student (T=%g, alpha=%g)", name, cfg.temperature, cfg.alpha)
    seed_everything(cfg)
    student, history = distill_student(teacher, data, cfg, name)
    report.write_csv(history, run_dir / f"{name}_Distiller_history.csv")
    plots.plot_history(history, f"{name} distilled student", run_dir / "Plots" / f"{name}_distiller_curves.png")
    student_file = save_model(student, run_dir / f"{name}_Student.keras")
    save_model(student, run_dir / f"{name}_Student.h5")
    row = record(run_dir, data, f"{name}_student", "distilled", name, "float32", student, student_file)
    write_seed_student_files(run_dir, name, data)
    return student, row


def quantize_step(name: str, student: keras.Model, student_row: dict, data: Dataset, cfg: Config,
                  run_dir: Path) -> dict:
    """Export every PTQ mode, run the safety gate; returns ``{"rows": summary rows, "gate": record}``."""
    log.info("== %s: quantizing the student (%s)", name, ", ".join(cfg.quant_modes))
    out = lambda m: run_dir / f"{name}_student_{m}.tflite"  # noqa: E731
    files = convert_all(student, cfg.quant_modes, data.train.x, out)
    gate = None
    if "int8" in files and cfg.max_quant_drop >= 0:
        decision, attempts = run_gate(student, files, data.train.x, data.valid.x, data.valid.y, cfg.max_quant_drop,
                                      out)
        files.update({a.mode: run_dir / a.file for a in attempts})
        gate = {"max_drop_points": cfg.max_quant_drop, "decision": decision,
                "attempts": [dataclasses.asdict(a) for a in attempts]}
    rows = [record(run_dir, data, f"{name}_student_{mode}", "quantized", name, mode, path, path,
                   params=student_row["params"]) for mode, path in files.items()]
    return {"rows": rows, "gate": gate}


def write_seed_student_files(run_dir: Path, name: str, data: Dataset) -> None:
    """The seed's per-teacher student files, from the distilled student's saved test predictions."""
    frame = pd.read_csv(run_dir / "predictions" / f"{name}_student.csv")
    test = frame[frame["split"] == "test"].drop(columns="split")
    metrics = _metrics_file(run_dir, f"{name}_student")
    report.write_csv(report.classification_report_frame(metrics), run_dir / f"{name}_student_classification_report.csv",
                     index=True)
    confusion = report.confusion_frame(metrics, data.class_names)
    report.write_csv(confusion, run_dir / f"{name}_student_Confusion.csv", index=True)
    plots.plot_confusion(confusion, f"{name}-distilled student, test split", run_dir / f"{name}_student_confusion_matrix.png")
    report.write_csv(test, run_dir / f"{name}_predictions.csv")


def write_tables(run_dir: Path, tables: dict) -> pd.DataFrame:
    """``summary.csv``, the seed's ``TinyEvalRes_Quant.csv`` and ``quant_gate.json`` from every stage's rows."""
    summary = pd.DataFrame(tables["rows"], columns=report.SUMMARY_COLUMNS)
    report.write_csv(summary, run_dir / "summary.csv")
    report.write_csv(pd.DataFrame(tables["quant"], columns=report.QUANT_COLUMNS), run_dir / "TinyEvalRes_Quant.csv")
    if tables["gates"]:
        write_json(run_dir / "quant_gate.json", tables["gates"])
    return summary


def _metrics_file(run_dir: Path, model_id: str) -> dict:
    return json.loads((run_dir / "predictions" / f"{model_id}_metrics.json").read_text())
