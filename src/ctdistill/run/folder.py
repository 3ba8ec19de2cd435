"""The run folder: every file name and format of a run, their writers and readers, atomic writes.

This module is the contract between the stages that write a run and everything that reads one
(``report``, the model cards, ``predict``, ``bench``, resume). A run folder holds::

    config.json, manifest.json, classes.json, splits.json   what ran, on what (provenance.manifest)
    audit.csv, audit.json, neighbours.csv                    the data audit (data.audit, data.neighbours)
    stages/<stage>.json                                      completion records (resume)
    <teacher>_Teacher.keras, <teacher>_Student.keras (.h5), <teacher>_student_<mode>.tflite,
    Scratch_Student.keras, ensemble_Teacher.keras            the models; <model file>.json: its card
    Scratch_history.csv, <teacher>_teachermodel.csv, <teacher>_Distiller_history.csv   training curves
    predictions/<model>.csv, predictions/<model>_metrics.json   every model's valid/test predictions
                                                             and its metrics, computed once (records)
    seeds/seed<k>/, predictions/seed<k>/                     repeated seeds' students (repeats)
    summary.csv, TinyEvalRes_Quant.csv, quant_gate.json, ensemble.json, timings.json, bench.csv
    verdict.json, metrics.csv, per_class.csv, ..., Plots/, report.html, report.md   the report (report)

Every file goes through :func:`atomic_path`: it is written under a temporary name in the same folder
and renamed into place, so an interrupted run never leaves a half-written CSV, model or plot.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctdistill.core.errors import RunFolderError

CONFIG, MANIFEST, CLASSES, SPLITS_FILE = "config.json", "manifest.json", "classes.json", "splits.json"
SUMMARY, QUANT_TABLE, QUANT_GATE = "summary.csv", "TinyEvalRes_Quant.csv", "quant_gate.json"
ENSEMBLE, TIMINGS, BENCH, METRICS_TABLE = "ensemble.json", "timings.json", "bench.csv", "metrics.csv"
VERDICT, NEIGHBOURS = "verdict.json", "neighbours.csv"
PREDICTIONS, PLOTS, SEEDS, STAGES = "predictions", "Plots", "seeds", "stages"
REPORT_HTML, REPORT_MD = "report.html", "report.md"
SCRATCH_MODEL, SCRATCH_HISTORY = "Scratch_Student.keras", "Scratch_history.csv"
ENSEMBLE_MODEL = "ensemble_Teacher.keras"

# Test metrics twice: on the official test split, and (*_dedup) on the test images that have no exact or
# near copy in train or valid (NaN when the data was not audited, e.g. the synthetic phantoms).
# accuracy_student_view: a teacher larger than the student, on the student's test images enlarged to its size.
SUMMARY_COLUMNS = ["model", "kind", "teacher", "mode", "accuracy", "precision", "recall", "f1", "accuracy_dedup",
                   "precision_dedup", "recall_dedup", "f1_dedup", "n_test", "n_test_dedup", "size_mb", "params",
                   "valid_accuracy", "file", "accuracy_student_view"]
QUANT_COLUMNS = ["teacher", "mode", "accuracy", "precision", "recall", "teacher_mb", "student_mb", "quantized_mb",
                 "accuracy_dedup", "precision_dedup", "recall_dedup"]


def teacher_model(name: str) -> str:
    return f"{name}_Teacher.keras"


def student_model(name: str, suffix: str = ".keras") -> str:
    return f"{name}_Student{suffix}"


def quantized_model(name: str, mode: str) -> str:
    return f"{name}_student_{mode}.tflite"


def teacher_history(name: str) -> str:
    return f"{name}_teachermodel.csv"


def distill_history(name: str) -> str:
    return f"{name}_Distiller_history.csv"


def card_path(model_file: Path) -> Path:
    """A model's card: ``<model file>.json`` beside it."""
    return model_file.with_name(model_file.name + ".json")


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Where seed ``seed``'s students are kept (``seeds/seed<k>/``)."""
    return Path(run_dir) / SEEDS / f"seed{seed}"


def predictions_dir(run_dir: Path, seed: int | None = None) -> Path:
    """``predictions/`` (the run's own seed) or ``predictions/seed<k>/`` (a repeated seed)."""
    folder = Path(run_dir) / PREDICTIONS
    return folder if seed is None else folder / f"seed{seed}"


def repeated_seeds(run_dir: Path) -> list[int]:
    """The repeated seeds whose predictions a run holds, in order."""
    folder = predictions_dir(run_dir)
    return sorted(int(f.name[4:]) for f in folder.glob("seed*") if f.is_dir()) if folder.is_dir() else []


def predictions_frame(y_true: np.ndarray, proba: np.ndarray, class_names: list[str],
                      files: list[str] | None = None) -> pd.DataFrame:
    """One row per image: (file,) true label, predicted label, one probability column per class."""
    names = np.asarray(class_names)
    frame = pd.DataFrame({"true_label": names[y_true], "predicted_label": names[proba.argmax(axis=1)]})
    for i, name in enumerate(class_names):
        frame[f"prob_{name}"] = proba[:, i]
    if files is not None:
        frame.insert(0, "file", files)
    return frame


def write_predictions(folder: Path, model_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Save a model's predictions (``predictions_frame`` rows with a ``split`` column, and ``dedup`` on
    test rows when audited); returns them as every reader will see them (read back)."""
    write_csv(frame, Path(folder) / f"{model_id}.csv")
    return read_predictions(folder, model_id)


def write_metrics(folder: Path, model_id: str, metrics: dict) -> Path:
    """Save a model's metrics beside its predictions (``<model_id>_metrics.json``)."""
    return write_json(Path(folder) / f"{model_id}_metrics.json", metrics)


def split_arrays(frame: pd.DataFrame, split: str, class_names: list[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels, probabilities and (on an audited test split) the de-duplicated mask of one split."""
    rows = frame[frame["split"] == split]
    index = {name: i for i, name in enumerate(class_names)}
    dedup = rows["dedup"].astype(bool).to_numpy() if "dedup" in rows and rows["dedup"].notna().all() else None
    return (rows["true_label"].map(index).to_numpy(), rows[[f"prob_{n}" for n in class_names]].to_numpy(dtype=float),
            dedup)


def read_predictions(folder: Path, model_id: str) -> pd.DataFrame:
    path = Path(folder) / f"{model_id}.csv"
    if not path.is_file():
        raise RunFolderError(f"{path}: missing; is {Path(folder).parent} a finished ctdistill run?")
    return pd.read_csv(path)


def read_metrics(folder: Path, model_id: str) -> dict | None:
    """The metrics stored with a model's predictions (None when absent)."""
    path = Path(folder) / f"{model_id}_metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_json(run_dir: Path, name: str, default: Any = RunFolderError) -> Any:
    """A JSON file of the run; a missing file is ``default`` or a one-line error naming it."""
    path = Path(run_dir) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if default is RunFolderError:
            raise RunFolderError(f"{run_dir}: not a finished ctdistill run ({name} is missing)") from None
        return default
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc})") from None


def read_summary(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        raise RunFolderError(f"{run_dir}: not a finished ctdistill run ({SUMMARY} is missing)")
    return pd.read_csv(path)


def class_names(run_dir: Path) -> list[str]:
    try:
        return read_json(run_dir, MANIFEST)["dataset"]["class_names"]
    except KeyError:
        raise RunFolderError(f"{Path(run_dir) / MANIFEST}: holds no dataset class names") from None


def write_csv(frame: pd.DataFrame, path: Path, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)
    return path


def _current_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()  # what open(path, "w") gives a new file: 0644 under umask 022


_WATCHERS: list[set[Path]] = []  # the open watch_writes() sets: every file atomic_path puts in place


@contextlib.contextmanager
def watch_writes() -> Iterator[set[Path]]:
    """Collect every file :func:`atomic_path` puts in place while the block runs (in this process).

    Where stages run side by side on one run folder (``ray_executor``), a before/after listing of the
    folder would mix their files; each worker process runs one stage at a time and knows its own.

    Example:
        >>> with watch_writes() as written:   # doctest: +SKIP
        ...     write_json(run_dir / "x.json", {})
        >>> written                            # doctest: +SKIP
        {PosixPath('run/x.json')}
    """
    written: set[Path] = set()
    _WATCHERS.append(written)
    try:
        yield written
    finally:
        _WATCHERS.remove(written)


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final`` (same suffix); rename it onto ``final`` on success.

    The file gets the permissions a plain ``open(final, "w")`` would give it (``FILE_MODE``, from the
    umask), not the private 0600 of the temporary file, so shared result folders stay readable.

    Example:
        >>> with atomic_path("out/table.csv") as tmp:   # doctest: +SKIP
        ...     df.to_csv(tmp)
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():  # a writer may have replaced the path with a folder (a SavedModel export)
            os.chmod(tmp, FILE_MODE)
        os.replace(tmp, final)
        for watcher in _WATCHERS:
            watcher.add(final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: Path, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path


def plan_run_dir(out: str | Path | None, base: str | Path = "runs") -> Path:
    """Choose the run folder and check it is free, without creating it (nothing is written on bad input).

    ``out=None`` gives a timestamped folder under ``base``; an existing non-empty ``out`` is refused,
    so earlier results are never overwritten.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out, n = Path(base) / f"run-{stamp}", 1
        while out.exists():
            n += 1
            out = Path(base) / f"run-{stamp}-{n}"
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunFolderError(f"{out}: already exists and is not empty; choose another --out "
                             "(earlier results are never overwritten)")
    check_writable(out)
    return out


def check_writable(out: Path) -> None:
    """Refuse a folder that cannot be created or written, before any work is done."""
    parent = out
    while not parent.exists():  # the nearest existing ancestor decides
        parent = parent.parent
    if not parent.is_dir():
        raise RunFolderError(f"{out}: cannot create the run folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunFolderError(f"{out}: cannot write the run folder: {parent} is not writable")


def refuse_existing(*paths: Path) -> None:
    """Stop before any work when an output file exists already (nothing is overwritten silently)."""
    for path in paths:
        if path.exists():
            raise RunFolderError(f"{path}: already exists; choose another --out or move it away")


def create_run_dir(out: Path) -> Path:
    """Create the planned folder and prove it is writable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write the run folder ({exc.strerror or exc})") from None
    return out
