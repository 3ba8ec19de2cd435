"""The recipe: data -> scratch baseline -> per teacher (fit teacher, distil student) -> seeds -> quantize -> tables.

``run()`` reads top to bottom as the pipeline; each step logs what it does, and each model stage
(``steps``) sits behind a completion record (``book``), so an interrupted run resumes. Every
model is evaluated once, right after training selected it on the valid split: its valid and test
predictions are saved, and the tables are made from the stages' records.

Quantization needs TensorFlow and LiteRT. Where they are not installed (a GPU box with JAX only)
the run trains everything and defers it: ``quantize_run`` (``ctdistill quantize RUN_DIR``) does the
quantization stages later, on any machine that has them, and rebuilds the tables and the report.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras

from ctdistill.config import Config
from ctdistill.core.caches import enable_compile_cache
from ctdistill.core.errors import ConfigError, CtdistillError
from ctdistill.core.interrupt import pressed, watching
from ctdistill.core.progress import PROGRESS, on_terminal
from ctdistill.data import Dataset
from ctdistill.models.inference import load_model
from ctdistill.models.teachers import check_weights, teacher_size, weights_origin
from ctdistill.quantize.convert import EXPORT_PACKAGES, can_export
from ctdistill.report import build_report
from ctdistill.report.tables import summary_text, verdict_text
from ctdistill.run import folder as rf
from ctdistill.run.book import (
    RunInterrupted,
    Stages,
    check_same_data,
    clear_partial_files,
    resumed_config,
    resumed_key,
    run_key,
    saved_values,
)
from ctdistill.run.data_steps import audit_step, load_data
from ctdistill.run.environment import environment
from ctdistill.run.folder import create_run_dir, plan_run_dir, write_json
from ctdistill.run.plan import builds_ensemble, distilled_names, planned_stages, upstream
from ctdistill.run.preflight import check_executor, check_run, check_tracker
from ctdistill.run.provenance import manifest
from ctdistill.run.repeats import quantize_repeats, repeat_students
from ctdistill.run.steps import (
    distill_step,
    ensemble_step,
    quant_table_row,
    quantize_step,
    scratch_stage,
    seed_everything,
    teacher_step,
    write_tables,
)
from ctdistill.run.tracking import TRACKERS
from ctdistill.training.distill import check_teacher_views

log = logging.getLogger("ctdistill")


def run(cfg: Config, out: str | Path | None = None, resume: bool = False, executor: str = "local",
        ray_address: str | None = None, track: str = "none") -> Path:
    """Run the whole pipeline for ``cfg`` into a new run folder (or continue ``out`` with ``resume``).

    Args:
        cfg: the configuration (for ``resume``, the run's own: see ``run.book.resumed_config``).
        out: the run folder; None = ``runs/run-<timestamp>``.
        resume: continue the interrupted run in ``out``: stages with a valid completion record
            (``book``) are kept, the others run again.
        executor: ``local`` (this process, stage after stage) or ``ray`` (the stages as tasks on a
            Ray cluster, ``ray_executor``); the same results either way, and either may resume the other's run.
        ray_address: the Ray cluster to join (``auto``, ``ray://HOST:PORT``); None starts a local one.
        track: also send the finished run to this tracker (``run.tracking.TRACKERS``; ``none``: nowhere).

    Returns:
        The run folder.

    Example:
        >>> run(Config(teachers=("resnet50",), weights="none", epochs=3), "runs/demo")  # doctest: +SKIP
    """
    started = time.perf_counter()
    check_executor(executor, ray_address)
    check_tracker(track)
    seed_everything(cfg)
    enable_compile_cache(keras.backend.backend())
    run_dir = Path(out) if resume else plan_run_dir(out)
    check_run(cfg, run_dir, resume)
    for name in cfg.teachers:  # a missing weights file must stop the run before it starts (may download)
        check_weights(name, cfg.weights)
        check_teacher_views(cfg, teacher_size(name, cfg.weights, cfg.image_size, cfg.teacher_image_size))
    data = load_data(cfg)
    data = open_run_dir(cfg, data, run_dir, resume)
    book = Stages(run_dir, resumed_key(cfg, run_dir, data.fingerprint) if resume else
                  run_key(cfg.to_dict(), data.fingerprint))
    PROGRESS.plan(planned_stages(cfg))
    with watching():
        try:
            with on_terminal():
                names = EXECUTORS[executor](cfg, data, run_dir, book, ray_address)
            finish(run_dir, book, cfg, names, data, started, resume)  # --resume rewrites the tables and report
            track_step(run_dir, track)
        except KeyboardInterrupt:
            raise RunInterrupted(run_dir) from None
        except Exception:
            if pressed():  # Ctrl-C inside a library can surface as its own error (a half-traced layer's TypeError)
                raise RunInterrupted(run_dir) from None
            raise
    return run_dir


def track_step(run_dir: Path, track: str) -> None:
    """Send the finished run to the tracker ``--track`` names (the run folder stays the source of truth)."""
    if track == "none":
        return
    log.info("== track: the configuration, metrics, stage timings, report and deployable model to %s", track)
    try:
        TRACKERS[track](run_dir)
    except CtdistillError:
        raise
    except Exception as error:  # the tracker's own failure (unreachable server, refused store): one line
        raise CtdistillError(f"{run_dir}: the run finished and its folder is complete, but --track {track} failed: "
                             f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def local_stages(cfg: Config, data: Dataset, run_dir: Path, book: Stages, ray_address: None = None) -> list[str]:
    """Every stage in this process, one after another; returns the teachers' names (with ``ensemble``)."""
    names = train_all(cfg, data, run_dir, book)
    quantize_all(cfg, data, run_dir, book, names)
    return names


def ray_stages(cfg: Config, data: Dataset, run_dir: Path, book: Stages, ray_address: str | None) -> list[str]:
    """Every stage as a task on a Ray cluster (``ray_executor``); returns the teachers' names (with ``ensemble``)."""
    from ctdistill.run.ray_executor import ray_stages  # Ray is an extra: imported only when a run asks for it

    names = distilled_names(cfg)
    ray_stages(cfg, data, run_dir, book, names, ray_address)
    if not can_export():  # no quantization task was planned: say so, with the command that finishes it
        quantize_all(cfg, data, run_dir, book, names)
    return names


EXECUTORS = {"local": local_stages, "ray": ray_stages}  # choices.EXECUTORS names them for the flag


def quantize_run(run_dir: str | Path, data_path: str | None = None, class_map: str | None = None) -> Path:
    """The quantization stages of a run trained where TensorFlow or LiteRT were missing, then its tables.

    Args:
        run_dir: a run folder whose training stages finished (on any machine and Keras backend).
        data_path: the dataset, when it lives elsewhere here than where the run trained (its content
            must be the same: checked by fingerprint).
        class_map: the run's class map file, likewise, when it lives elsewhere here.

    Returns:
        The run folder.
    """
    started, run_dir = time.perf_counter(), Path(run_dir)
    if not can_export():
        raise ConfigError(f"quantization needs {' and '.join(EXPORT_PACKAGES)} installed (a plain "
                          "`pip install ctdistill` brings both); run this where they are")
    moved = {k: v for k, v in (("data", data_path), ("class_map", class_map)) if v is not None}
    cfg = resumed_config(run_dir, {}, moved)
    seed_everything(cfg)
    data = open_run_dir(cfg, load_data(cfg), run_dir, resume=True, trained_on=saved_values(run_dir).get("data"))
    book = Stages(run_dir, resumed_key(cfg, run_dir, data.fingerprint))
    names = trained_teachers(cfg, book)
    PROGRESS.plan([s for s in planned_stages(cfg) if s.startswith(("quantize", "seeds-int8"))])
    with on_terminal():
        quantize_all(cfg, data, run_dir, book, names)
    finish(run_dir, book, cfg, names, data, started, resume=True)
    return run_dir


def finish(run_dir: Path, book: Stages, cfg: Config, names: list[str], data: Dataset, started: float,
           resume: bool) -> None:
    """Tables from every stage's record, the report, timings, and the closing summary."""
    tables = collect_tables(book, cfg, names)
    summary = write_tables(run_dir, tables)
    log.info("== report: metrics with bootstrap intervals, calibration, quantization impact, distillation gain")
    build_report(run_dir)
    write_json(run_dir / rf.TIMINGS, {"total_s": round(time.perf_counter() - started, 2), "resumed": resume,
                                          **tables["timings"]})
    if data.skipped:
        log.warning("%d unreadable image(s) were skipped (listed in manifest.json):\n  %s", len(data.skipped),
                    "\n  ".join(data.skipped))
    log.info("finished in %.0fs; results in %s\n%s", time.perf_counter() - started, run_dir,
             summary_text(summary))
    found = rf.read_json(run_dir, rf.VERDICT)
    log.info("== verdict\n%s", "\n".join(f"  {line}" for line in verdict_text(found)))
    deploy = found.get("deploy")
    log.info("report: %s (open it in a browser, e.g. xdg-open %s)", run_dir / rf.REPORT_HTML,
             run_dir / rf.REPORT_HTML)
    if deploy:
        log.info("deploy: %s  (ctdistill predict %s IMAGES... uses it)", run_dir / deploy["file"], run_dir)


def open_run_dir(cfg: Config, data: Dataset, run_dir: Path, resume: bool, trained_on: str | None = None) -> Dataset:
    """Create the run folder (or check the one to resume), audit and split the data, write the manifest.
    ``trained_on``: the data path the run started with, when the same data now lives elsewhere."""
    if resume:
        check_same_data(run_dir, data.fingerprint)
        for stray in clear_partial_files(run_dir):
            log.info("resume: removed the half-written %s", stray)
        log.info("resuming %s", run_dir)
    else:
        create_run_dir(run_dir)
        log.info("run folder: %s", run_dir)
    data = audit_step(cfg, data, run_dir, resume, trained_on)
    if not resume:
        write_json(run_dir / rf.CONFIG, cfg.to_dict())
        origins = {n: weights_origin(n, cfg.weights) for n in cfg.teachers}  # where each teacher's weights came from
        write_json(run_dir / rf.MANIFEST, manifest(cfg.to_dict(), data.summary(), {"backend": environment(),
                                                                                    "teacher_weights": origins}))
        write_json(run_dir / rf.CLASSES, data.classes or {"class_names": data.class_names, "source": data.source})
    return data


def train_all(cfg: Config, data: Dataset, run_dir: Path, book: Stages) -> list[str]:
    """Every training stage, each behind its completion record; returns the teachers' names
    (with ``ensemble`` when one was built)."""
    book.run("scratch", lambda: (None, scratch_stage(data, cfg, run_dir)))
    teachers, rows = {}, []
    for name in cfg.teachers:
        teachers[name], row = teacher_and_student(name, lambda n=name: teacher_step(n, data, cfg, run_dir), data,
                                                  cfg, run_dir, book)
        rows.append(row)
    if builds_ensemble(cfg):
        make = lambda: ensemble_step(dict(teachers), rows, data, cfg, run_dir)  # noqa: E731
        teachers["ensemble"], _ = teacher_and_student("ensemble", make, data, cfg, run_dir, book)
    if cfg.seeds:
        book.run("seeds", lambda: (None, repeat_students(cfg, data, teachers, run_dir)),
                 after=upstream("seeds", cfg, list(teachers)))
    return list(teachers)


def teacher_and_student(name: str, make_teacher, data: Dataset, cfg: Config, run_dir: Path, book: Stages
                        ) -> tuple[keras.Model, dict]:
    """Get a teacher from ``make_teacher()`` (train one, or build the ensemble from the trained
    teachers), then distil its student, each behind its completion record; returns the teacher and
    its summary row."""
    restore = lambda row: load_model(run_dir / row["file"])  # noqa: E731
    teacher, teacher_row = book.run(f"teacher-{name}", make_teacher, restore,
                                    after=upstream(f"teacher-{name}", cfg, []))
    book.run(f"distill-{name}", lambda: distill_step(name, teacher, data, cfg, run_dir),
             after=upstream(f"distill-{name}", cfg, []))
    return teacher, teacher_row


def quantize_all(cfg: Config, data: Dataset, run_dir: Path, book: Stages, names: list[str]) -> None:
    """Quantize every distilled student (and the repeated seeds' int8 models), each behind its
    completion record; deferred, with the command that finishes it, where TensorFlow or LiteRT is missing."""
    if not cfg.quant_modes:
        return
    if not can_export():
        log.warning("quantization deferred: %s not installed here; every model is trained and saved. Finish with: "
                    "ctdistill quantize %s (on a machine with both)", " / ".join(EXPORT_PACKAGES), run_dir)
        return
    for name in names:
        def convert(n=name):
            row = book.result(f"distill-{n}", upstream(f"distill-{n}", cfg, names))
            return None, quantize_step(n, load_model(run_dir / row["file"]), row, data, cfg, run_dir)

        book.run(f"quantize-{name}", convert, after=upstream(f"quantize-{name}", cfg, names))
    seeds = book.result("seeds", upstream("seeds", cfg, names)) if cfg.seeds else None
    if seeds is not None:
        book.run("seeds-int8", lambda: (None, quantize_repeats(cfg, data, run_dir, seeds, names)),
                 after=upstream("seeds-int8", cfg, names))


def trained_teachers(cfg: Config, book: Stages) -> list[str]:
    """The teachers of a run whose training finished, in run order; refuses a run with any training
    stage unfinished (naming them), so its tables are never written as if it were complete."""
    names = distilled_names(cfg)
    stages = ["scratch", *(f"distill-{n}" for n in names), *(["seeds"] if cfg.seeds else [])]
    missing = [s for s in stages if book.result(s, upstream(s, cfg, names)) is None]
    if missing:
        raise ConfigError(f"{book.run_dir}: training has not finished (stages {', '.join(missing)}); resume the run "
                          f"first: ctdistill run --resume {book.run_dir}")
    return names


def collect_tables(book: Stages, cfg: Config, names: list[str]) -> dict:
    """The summary rows, ``TinyEvalRes_Quant`` rows, gate decisions and timings, from the stages' records."""
    # The records are reported as they are: a teacher's model file may stay on the machine that trained it.
    result = lambda stage: book.result(stage, upstream(stage, cfg, names), verify_files=False)  # noqa: E731
    tables = {"rows": [result("scratch")], "quant": [], "gates": {},
              "timings": {"scratch_s": book.seconds("scratch"), "teachers": {}}}
    for name in names:
        teacher_row, student_row = result(f"teacher-{name}"), result(f"distill-{name}")
        quant = result(f"quantize-{name}") or {"rows": [], "gate": None}
        tables["rows"] += [teacher_row, student_row, *quant["rows"]]
        tables["quant"] += [quant_table_row(name, row, teacher_row, student_row) for row in quant["rows"]]
        if quant["gate"]:
            tables["gates"][name] = quant["gate"]
        tables["timings"]["teachers"][name] = {f"{k}_s": book.seconds(f"{k}-{name}")
                                               for k in ("teacher", "distill", "quantize")}
    for stage in ("seeds", "seeds-int8"):
        if book.seconds(stage) is not None:
            tables["timings"][f"{stage.replace('-', '_')}_s"] = book.seconds(stage)
    return tables
