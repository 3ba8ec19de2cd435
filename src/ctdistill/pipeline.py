"""The recipe: data -> scratch baseline -> per teacher (fit teacher, distil student, quantize) -> tables.

``run()`` reads top to bottom as the pipeline; each step logs what it does. Every model is
evaluated once, right after training selected it on the valid split: its valid and test
predictions are saved, and the test numbers go into the tables.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import keras
import pandas as pd

from ctdistill import plots, report
from ctdistill.config import Config
from ctdistill.data import SPLITS, Dataset, load_dataset
from ctdistill.data.audit import audit_cached, dedup_test_mask
from ctdistill.data.split import carve_validation, grouped_split
from ctdistill.distill import distill_student, ensemble_teacher, train_scratch
from ctdistill.models.teachers import check_weights
from ctdistill.quantgate import run_gate
from ctdistill.quantize import convert_all
from ctdistill.records import record, save_model
from ctdistill.repeats import repeat_students
from ctdistill.runfolder import create_run_dir, manifest, plan_run_dir, write_json
from ctdistill.train import train_teacher

log = logging.getLogger("ctdistill")


def run(cfg: Config, out: str | Path | None = None) -> Path:
    """Run the whole pipeline for ``cfg`` into a new run folder; returns that folder.

    Example:
        >>> run(Config(teachers=("resnet50",), weights="none", epochs=3), "runs/demo")  # doctest: +SKIP
    """
    started = time.perf_counter()
    seed_everything(cfg.seed)
    run_dir = plan_run_dir(out)
    for name in cfg.teachers:  # a missing weights file must stop the run before it starts
        check_weights(name, cfg.weights)
    data = load_data(cfg)
    create_run_dir(run_dir)
    log.info("run folder: %s", run_dir)
    data = audit_step(cfg, data, run_dir)
    write_json(run_dir / "config.json", cfg.to_dict())
    write_json(run_dir / "manifest.json", manifest(cfg.to_dict(), data.summary()))
    scratch_row = scratch_stage(data, cfg, run_dir)
    tables = {"rows": [scratch_row], "quant": [], "timings": {"scratch_s": scratch_row.pop("seconds"), "teachers": {}}}
    teachers = {name: teacher_and_student(name, lambda n=name: teacher_step(n, data, cfg, run_dir), data, cfg,
                                          run_dir, tables) for name in cfg.teachers}
    if cfg.ensemble != "none" and len(teachers) > 1:
        make = lambda: ensemble_step(teachers, tables["rows"], data, cfg, run_dir)  # noqa: E731
        teachers["ensemble"] = teacher_and_student("ensemble", make, data, cfg, run_dir, tables)
    summary = write_tables(run_dir, tables["rows"], tables["quant"])
    if cfg.seeds:
        clock = time.perf_counter()
        repeat_students(cfg, data, teachers, run_dir)
        tables["timings"]["seeds_s"] = _lap(clock)[0]
    log.info("== report: metrics with bootstrap intervals, calibration, quantization impact, distillation gain")
    report.build_report(run_dir)
    write_json(run_dir / "timings.json", {"total_s": round(time.perf_counter() - started, 2), **tables["timings"]})
    log.info("finished in %.0fs; results in %s\n%s", time.perf_counter() - started, run_dir,
             report.summary_text(summary))
    return run_dir


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; called before each stage so stages do not depend on order."""
    keras.utils.set_random_seed(seed)


def load_data(cfg: Config) -> Dataset:
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.synthetic_per_class)
    if cfg.data is None:
        log.warning("no --data given: using the built-in SYNTHETIC CT phantoms (not medical data)")
    counts = data.summary()["counts"]
    log.info("data: %s; classes %s; images per split %s", data.source, data.class_names,
             {s: sum(counts[s].values()) for s in SPLITS})
    return data


def audit_step(cfg: Config, data: Dataset, run_dir: Path) -> Dataset:
    """Audit the data for copies (cached), store the findings, re-split by copy groups as configured
    (``split``, ``validation``), and mark the de-duplicated test view; returns the dataset to train on."""
    table = None
    if cfg.data is None:
        log.info("audit: skipped for the synthetic phantoms (each image is drawn independently)")
    else:
        result = audit_cached(cfg.data, data.fingerprint)
        log.info("data audit (audit.csv, audit.json):\n%s", report.audit_text(result.summary))
        report.write_audit(result.table, result.summary, run_dir)
        table = result.table
    if table is not None and (cfg.split == "grouped" or (cfg.split == "auto" and not data.given_splits)):
        data = grouped_split(data, table, cfg.seed)
        log.info("split by duplicate groups (StratifiedGroupKFold, seed %d): %s", cfg.seed, _sizes(data))
    elif cfg.validation == "carved":
        data = carve_validation(data, table, cfg.valid_fraction, cfg.seed)
        log.info("validation carved from train+valid by copy groups (%.0f%%, seed %d; test as given): %s",
                 100 * cfg.valid_fraction, cfg.seed, _sizes(data))
    if data.train.paths:
        write_json(run_dir / "splits.json", {s: data.split(s).paths for s in SPLITS})
    if table is not None:
        data.dedup_test = dedup_test_mask(table, data.train.paths + data.valid.paths, data.test.paths)
        log.info("de-duplicated test view: %d of %d test images have no copy in train or valid; every test "
                 "metric is reported on both (columns *_dedup)", data.dedup_test.sum(), len(data.test))
    return data


def _sizes(data: Dataset) -> dict[str, int]:
    return {s: len(data.split(s)) for s in SPLITS}


def scratch_stage(data: Dataset, cfg: Config, run_dir: Path) -> dict:
    """The no-teacher baseline, trained once per run.

    It depends on no teacher (same data, seed, budget and selection rule for every teacher), so
    training it once per teacher would repeat identical work; every distilled student is compared
    with this one model.
    """
    clock = time.perf_counter()
    log.info("== baseline: training the student from scratch (no teacher, same budget)")
    seed_everything(cfg.seed)
    scratch, history = train_scratch(data, cfg, "baseline")
    report.write_csv(history, run_dir / "Scratch_history.csv")
    plots.plot_history(history, "student trained from scratch", run_dir / "Plots" / "scratch_curves.png")
    scratch_file = save_model(scratch, run_dir / "Scratch_Student.keras")
    row = record(run_dir, data, "scratch_student", "scratch", "", "float32", scratch, scratch_file)
    return {**row, "seconds": _lap(clock)[0]}


def teacher_and_student(name: str, make_teacher, data: Dataset, cfg: Config, run_dir: Path,
                        tables: dict) -> keras.Model:
    """Get a teacher from ``make_teacher()`` (train one, or build the ensemble), then distil and
    quantize its student; appends the summary rows, quantization rows and timings to ``tables``."""
    clock = time.perf_counter()
    teacher, teacher_row = make_teacher()
    teacher_s = _lap(clock)[0]
    rows, quant_rows, times = student_stage(name, teacher, teacher_row, data, cfg, run_dir)
    tables["rows"] += [teacher_row, *rows]
    tables["quant"] += quant_rows
    tables["timings"]["teachers"][name] = {"teacher_s": teacher_s, **times}
    return teacher


def student_stage(name: str, teacher: keras.Model, teacher_row: dict, data: Dataset, cfg: Config,
                  run_dir: Path) -> tuple[list[dict], list[dict], dict]:
    """Distil and quantize a student of one teacher; returns summary rows, ``TinyEvalRes_Quant`` rows
    and stage timings."""
    clock, times = time.perf_counter(), {}
    student, student_row = distill_step(name, teacher, data, cfg, run_dir)
    times["distill_s"], clock = _lap(clock)
    quant_rows = quantize_step(name, student, student_row, data, cfg, run_dir)
    times["quantize_s"], clock = _lap(clock)
    table = [{"teacher": name, "mode": row["mode"],
              **{k: row[k] for k in ("accuracy", "precision", "recall", "accuracy_dedup", "precision_dedup",
                                     "recall_dedup")},
              "teacher_mb": teacher_row["size_mb"], "student_mb": student_row["size_mb"],
              "quantized_mb": row["size_mb"]} for row in quant_rows]
    return [student_row, *quant_rows], table, times


def ensemble_step(teachers: dict[str, keras.Model], rows: list[dict], data: Dataset, cfg: Config,
                  run_dir: Path) -> tuple[keras.Model, dict]:
    """Wrap the trained teachers as one teacher whose logits are their (validation-weighted) mean."""
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
    seed_everything(cfg.seed)
    teacher, history = train_teacher(name, data, cfg)
    report.write_csv(history, run_dir / f"{name}_teachermodel.csv")
    plots.plot_history(history, f"{name} teacher", run_dir / "Plots" / f"{name}_teacher_curves.png")
    teacher_file = save_model(teacher, run_dir / f"{name}_Teacher.keras")
    return teacher, record(run_dir, data, f"{name}_teacher", "teacher", name, "float32", teacher, teacher_file)


def distill_step(name: str, teacher: keras.Model, data: Dataset, cfg: Config, run_dir: Path) -> tuple[keras.Model, dict]:
    log.info("== %s: distilling the student (T=%g, alpha=%g)", name, cfg.temperature, cfg.alpha)
    seed_everything(cfg.seed)
    student, history = distill_student(teacher, data, cfg, name)
    report.write_csv(history, run_dir / f"{name}_Distiller_history.csv")
    plots.plot_history(history, f"{name} distilled student", run_dir / "Plots" / f"{name}_distiller_curves.png")
    student_file = save_model(student, run_dir / f"{name}_Student.keras")
    save_model(student, run_dir / f"{name}_Student.h5")
    row = record(run_dir, data, f"{name}_student", "distilled", name, "float32", student, student_file)
    write_seed_student_files(run_dir, name, data)
    return student, row


def quantize_step(name: str, student: keras.Model, student_row: dict, data: Dataset, cfg: Config,
                  run_dir: Path) -> list[dict]:
    log.info("== %s: quantizing the student (%s)", name, ", ".join(cfg.quant_modes))
    out = lambda m: run_dir / f"{name}_student_{m}.tflite"  # noqa: E731
    files = convert_all(student, cfg.quant_modes, data.train.x, out)
    if "int8" in files and cfg.max_quant_drop >= 0:
        decision, attempts = run_gate(student, files, data.train.x, data.valid.x, data.valid.y, cfg.max_quant_drop,
                                      out)
        files.update({a.mode: run_dir / a.file for a in attempts})
        gate_file = run_dir / "quant_gate.json"
        gate = json.loads(gate_file.read_text()) if gate_file.is_file() else {}
        gate[name] = {"max_drop_points": cfg.max_quant_drop, "decision": decision,
                      "attempts": [dataclasses.asdict(a) for a in attempts]}
        write_json(gate_file, gate)
    return [record(run_dir, data, f"{name}_student_{mode}", "quantized", name, mode, path, path,
                   params=student_row["params"]) for mode, path in files.items()]


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


def write_tables(run_dir: Path, rows: list[dict], quant_rows: list[dict]) -> pd.DataFrame:
    summary = pd.DataFrame(rows, columns=report.SUMMARY_COLUMNS)
    report.write_csv(summary, run_dir / "summary.csv")
    report.write_csv(pd.DataFrame(quant_rows, columns=report.QUANT_COLUMNS), run_dir / "TinyEvalRes_Quant.csv")
    return summary


def _metrics_file(run_dir: Path, model_id: str) -> dict:
    return json.loads((run_dir / "predictions" / f"{model_id}_metrics.json").read_text())


def _lap(clock: float) -> tuple[float, float]:
    now = time.perf_counter()
    return round(now - clock, 2), now

