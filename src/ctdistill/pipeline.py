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
from ctdistill.errors import DataError
from ctdistill.models.teachers import check_weights
from ctdistill.predict import load_model
from ctdistill.preflight import check_run
from ctdistill.quantgate import run_gate
from ctdistill.quantize import convert_all
from ctdistill.records import record, save_model
from ctdistill.repeats import repeat_students
from ctdistill.runfolder import create_run_dir, manifest, plan_run_dir, write_json
from ctdistill.stages import RunInterrupted, Stages, check_same_data, clear_partial_files, run_key
from ctdistill.train import train_teacher

log = logging.getLogger("ctdistill")


def run(cfg: Config, out: str | Path | None = None, resume: bool = False) -> Path:
    """Run the whole pipeline for ``cfg`` into a new run folder (or continue ``out`` with ``resume``).

    Args:
        cfg: the configuration (for ``resume``, the run's own: see ``stages.resumed_config``).
        out: the run folder; None = ``runs/run-<timestamp>``.
        resume: continue the interrupted run in ``out``: stages with a valid completion record
            (``stages``) are kept, the others run again.

    Returns:
        The run folder.

    Example:
        >>> run(Config(teachers=("resnet50",), weights="none", epochs=3), "runs/demo")  # doctest: +SKIP
    """
    started = time.perf_counter()
    seed_everything(cfg)
    run_dir = Path(out) if resume else plan_run_dir(out)
    check_run(cfg, run_dir)
    for name in cfg.teachers:  # a missing weights file must stop the run before it starts (may download)
        check_weights(name, cfg.weights)
    data = load_data(cfg)
    data = open_run_dir(cfg, data, run_dir, resume)
    book = Stages(run_dir, run_key(cfg.to_dict(), data.fingerprint))
    try:
        tables = train_and_quantize(cfg, data, run_dir, book)
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir) from None
    summary = write_tables(run_dir, tables)
    log.info("== report: metrics with bootstrap intervals, calibration, quantization impact, distillation gain")
    report.build_report(run_dir)
    write_json(run_dir / "timings.json", {"total_s": round(time.perf_counter() - started, 2), "resumed": resume,
                                          **tables["timings"]})
    if data.skipped:
        log.warning("%d unreadable image(s) were skipped (listed in manifest.json):\n  %s", len(data.skipped),
                    "\n  ".join(data.skipped))
    log.info("finished in %.0fs; results in %s\n%s", time.perf_counter() - started, run_dir,
             report.summary_text(summary))
    return run_dir


def open_run_dir(cfg: Config, data: Dataset, run_dir: Path, resume: bool) -> Dataset:
    """Create the run folder (or check the one to resume), audit and split the data, write the manifest."""
    if resume:
        check_same_data(run_dir, data.fingerprint)
        for stray in clear_partial_files(run_dir):
            log.info("resume: removed the half-written %s", stray)
        log.info("resuming %s", run_dir)
    else:
        create_run_dir(run_dir)
        log.info("run folder: %s", run_dir)
    data = audit_step(cfg, data, run_dir, resume)
    if not resume:
        write_json(run_dir / "config.json", cfg.to_dict())
        write_json(run_dir / "manifest.json", manifest(cfg.to_dict(), data.summary()))
        write_json(run_dir / "classes.json", data.classes or {"class_names": data.class_names, "source": data.source})
    return data


def train_and_quantize(cfg: Config, data: Dataset, run_dir: Path, book: Stages) -> dict:
    """Every training stage, each behind its completion record; returns the tables' rows and timings."""
    _, scratch_row = book.run("scratch", lambda: (None, scratch_stage(data, cfg, run_dir)))
    tables = {"rows": [scratch_row], "quant": [], "gates": {},
              "timings": {"scratch_s": book.seconds("scratch"), "teachers": {}}}
    teachers = {name: teacher_and_student(name, lambda n=name: teacher_step(n, data, cfg, run_dir), data, cfg,
                                          run_dir, tables, book) for name in cfg.teachers}
    if cfg.ensemble != "none" and len(teachers) > 1:
        make = lambda: ensemble_step(teachers, tables["rows"], data, cfg, run_dir)  # noqa: E731
        teachers["ensemble"] = teacher_and_student("ensemble", make, data, cfg, run_dir, tables, book,
                                                   after=tuple(f"teacher-{n}" for n in teachers))
    if cfg.seeds:
        book.run("seeds", lambda: (None, repeat_students(cfg, data, teachers, run_dir)),
                 after=tuple(f"teacher-{n}" for n in teachers))
        tables["timings"]["seeds_s"] = book.seconds("seeds")
    return tables


def seed_everything(cfg: Config, seed: int | None = None) -> None:
    """Seed Python, NumPy and the backend (called before each stage so stages do not depend on
    order) and, with ``cfg.deterministic``, switch TensorFlow to deterministic ops."""
    keras.utils.set_random_seed(cfg.seed if seed is None else seed)
    if cfg.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # data loading and export need TensorFlow anyway

        tf.config.experimental.enable_op_determinism()


def load_data(cfg: Config) -> Dataset:
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.synthetic_per_class, cfg.strict,
                        cfg.class_map, cfg.crop)
    if cfg.data is None:
        log.warning("no --data given: using the built-in SYNTHETIC CT phantoms (not medical data)")
    counts = data.summary()["counts"]
    log.info("data: %s; classes %s; images per split %s", data.source, data.class_names,
             {s: sum(counts[s].values()) for s in SPLITS})
    return data


def audit_step(cfg: Config, data: Dataset, run_dir: Path, resume: bool = False) -> Dataset:
    """Audit the data for copies (cached), store the findings, re-split by copy groups as configured
    (``split``, ``validation``), and mark the de-duplicated test view; returns the dataset to train on."""
    table = None
    if cfg.data is None:
        log.info("audit: skipped for the synthetic phantoms (each image is drawn independently)")
    else:
        result = audit_cached(cfg.data, data.fingerprint, class_map=cfg.class_map)
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
        write_splits(run_dir / "splits.json", {s: data.split(s).paths for s in SPLITS}, resume)
    if table is not None:
        data.dedup_test = dedup_test_mask(table, data.train.paths + data.valid.paths, data.test.paths)
        log.info("de-duplicated test view: %d of %d test images have no copy in train or valid; every test "
                 "metric is reported on both (columns *_dedup)", data.dedup_test.sum(), len(data.test))
    return data


def write_splits(path: Path, splits: dict, resume: bool) -> None:
    """Write the split lists; on resume, refuse when they differ from the run's own."""
    if resume and path.is_file():
        if json.loads(path.read_text(encoding="utf-8")) != splits:
            raise DataError(f"{path}: refused to resume: the data splits differ from the interrupted run's")
        return
    write_json(path, splits)


def _sizes(data: Dataset) -> dict[str, int]:
    return {s: len(data.split(s)) for s in SPLITS}


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


def teacher_and_student(name: str, make_teacher, data: Dataset, cfg: Config, run_dir: Path, tables: dict,
                        book: Stages, after: tuple[str, ...] = ()) -> keras.Model:
    """Get a teacher from ``make_teacher()`` (train one, or build the ensemble from the stages
    ``after``), then distil and quantize its student, each stage behind its completion record;
    appends the summary rows, quantization rows, gate decisions and timings to ``tables``."""
    restore = lambda row: load_model(run_dir / row["file"])  # noqa: E731
    stage = {k: f"{k}-{name}" for k in ("teacher", "distill", "quantize")}
    teacher, teacher_row = book.run(stage["teacher"], make_teacher, restore, after=after)
    student, student_row = book.run(stage["distill"], lambda: distill_step(name, teacher, data, cfg, run_dir),
                                    restore, after=(stage["teacher"],))
    _, quant = book.run(stage["quantize"], lambda: (None, quantize_step(name, student, student_row, data, cfg,
                                                                        run_dir)), after=(stage["distill"],))
    tables["rows"] += [teacher_row, student_row, *quant["rows"]]
    tables["quant"] += [quant_table_row(name, row, teacher_row, student_row) for row in quant["rows"]]
    if quant["gate"]:
        tables["gates"][name] = quant["gate"]
    tables["timings"]["teachers"][name] = {f"{k}_s": book.seconds(v) for k, v in stage.items()}
    return teacher


def quant_table_row(name: str, row: dict, teacher_row: dict, student_row: dict) -> dict:
    """One row of the seed's ``TinyEvalRes_Quant.csv``."""
    return {"teacher": name, "mode": row["mode"],
            **{k: row[k] for k in ("accuracy", "precision", "recall", "accuracy_dedup", "precision_dedup",
                                   "recall_dedup")},
            "teacher_mb": teacher_row["size_mb"], "student_mb": student_row["size_mb"], "quantized_mb": row["size_mb"]}


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
