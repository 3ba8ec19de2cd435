"""Checks before a run trains anything: a missing piece must cost seconds, not hours.

In order of how cheap they are and how often they are the real mistake: the data path, the run
folder, the packages later stages import, free disk space for the files the run will write, and
the teachers' weights (which may need a download: checked last, so a wrong ``--data`` is never
hidden behind a download error).

Example:
    >>> check_run(Config(data="no/such/folder"), Path("runs/x"))        # doctest: +SKIP
    Traceback (most recent call last):
    DataError: no/such/folder: data path does not exist
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from ctdistill.config import Config
from ctdistill.core.choices import EXECUTORS, TRACKERS
from ctdistill.core.errors import ConfigError, DataError, RunFolderError

# Modules imported only by later stages (report, plots, audit, export), with the stage that needs them.
LATE_IMPORTS = {"tabulate": "report.md tables", "matplotlib": "plots", "imagehash": "the data audit",
                "scipy": "statistics", "sklearn": "metrics"}
# Rough float32 parameter counts (millions) of each teacher with the seed's head, for the disk check;
# a teacher not listed counts as the largest.
TEACHER_PARAMS_M = {"vgg16": 15.0, "vgg19": 20.3, "resnet50": 24.6, "densenet121": 7.6, "efficientnetb3": 11.6,
                    "nasnetmobile": 4.8, "xception": 21.9}
STUDENT_FILES_MB = 12.0  # .keras, .h5 and the .tflite files of one student at 32 px (measured ~9 MB)


def check_run(cfg: Config, run_dir: Path, resume: bool = False) -> None:
    """Raise a one-line error for the first thing that would stop ``cfg``'s run later.

    Args:
        cfg: the run's configuration.
        run_dir: the planned run folder (it may not exist yet).
        resume: the run continues: part of its files exist, so the disk estimate does not apply.
    """
    check_data_path(cfg.data)
    check_imports()
    if not resume:
        check_disk_space(run_dir, expected_mb(cfg))


def check_data_path(path: str | None) -> None:
    if path is None:
        return
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: data path does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: data path is a file; give the folder that holds the images or arrays")


def check_imports() -> None:
    """Every package a later stage imports is installed (found, not imported: that takes seconds).
    TensorFlow and LiteRT are not required: without them quantization is deferred (``pipeline``)."""
    missing = [f"{module} ({why})" for module, why in LATE_IMPORTS.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"missing package(s) a later stage needs: {', '.join(missing)}; reinstall ctdistill "
                          "(pip install ctdistill) so that its dependencies are installed")


def expected_mb(cfg: Config) -> float:
    """Megabytes a run will write: each teacher's model file and, per seed, each student's files."""
    teachers = sum(TEACHER_PARAMS_M.get(t, max(TEACHER_PARAMS_M.values())) * 4 for t in cfg.teachers)
    # The seed student's Flatten -> Dense grows with the input area; the pooling head does not.
    area = (cfg.image_size / 32) ** 2 if cfg.student == "seed" else 1.0
    seeds = len(set(cfg.seeds) | {cfg.seed})
    students = (len(cfg.teachers) + 1 + (cfg.ensemble != "none")) * seeds * STUDENT_FILES_MB * area
    return teachers + students


def check_disk_space(run_dir: Path, needed_mb: float) -> None:
    """Refuse to start when the run folder's disk has less than ``needed_mb`` (+ 10%) free."""
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    try:  # a folder that cannot be written (read-only, /proc, permissions) reports 0 MB free: say why instead
        with tempfile.TemporaryFile(dir=existing if existing.is_dir() else existing.parent):
            pass
    except OSError as exc:
        raise RunFolderError(f"{run_dir}: cannot write there ({exc.strerror or exc})") from None
    free_mb = shutil.disk_usage(existing).free / 1e6
    if free_mb < needed_mb * 1.1:
        raise RunFolderError(f"{run_dir}: {free_mb:.0f} MB free on its disk, the run writes about "
                             f"{needed_mb:.0f} MB; free space or choose another --out")


# Keras 3's backends and the package each one needs (KERAS_BACKEND or --backend names one).
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
                    "openvino": "openvino"}


def check_backend(name: str | None) -> None:
    """Refuse a Keras backend that does not exist or whose package is not installed, in one line
    (Keras itself fails at import with a traceback). ``name``: ``--backend`` or ``$KERAS_BACKEND``; None: default.

    Example:
        >>> check_backend("bogus")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ctdistill.core.errors.ConfigError: Keras backend 'bogus' (--backend or $KERAS_BACKEND): choose from ...
    """
    if name is None:
        return
    if name not in BACKEND_PACKAGES:
        raise ConfigError(f"Keras backend {name!r} (--backend or $KERAS_BACKEND): choose from "
                          f"{', '.join(BACKEND_PACKAGES)}")
    if importlib.util.find_spec(BACKEND_PACKAGES[name]) is None:
        raise ConfigError(f"the Keras backend {name} needs {BACKEND_PACKAGES[name]} installed "
                          f"(pip install {BACKEND_PACKAGES[name]}), or choose another with --backend")


def check_tracker(track: str) -> None:
    """Refuse an unknown tracker, and one whose package is not installed, before the run starts.

    Example:
        >>> check_tracker("none")
        >>> check_tracker("wandb")
        Traceback (most recent call last):
        ctdistill.core.errors.ConfigError: --track 'wandb': choose from none, mlflow
    """
    if track not in TRACKERS:
        raise ConfigError(f"--track {track!r}: choose from {', '.join(TRACKERS)}")
    if track != "none" and importlib.util.find_spec(track) is None:
        raise ConfigError(f"--track {track} needs {track}: pip install 'ctdistill[{track}]'")


def check_executor(executor: str, address: str | None) -> None:
    """Refuse an unknown executor, ``--ray-address`` without ``--executor ray``, and Ray not installed.

    Example:
        >>> check_executor("local", "auto")
        Traceback (most recent call last):
        ctdistill.core.errors.ConfigError: --ray-address needs --executor ray
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"executor {executor!r}: choose from {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("--executor ray needs Ray: pip install 'ctdistill[ray]'")
