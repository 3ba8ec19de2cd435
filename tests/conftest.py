"""Shared fixtures: a private decode cache, a tiny registered teacher, small image trees."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chest-ct-scan"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CTDISTILL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def register_tiny_teachers() -> tuple[str, str]:
    """Register teachers ``tiny`` (a two-conv network) and ``tiny_b`` (the same, another name) in the
    teacher table. The table is the only extension point: the pipeline treats them exactly like the
    seven real ones. Also used by ``tiny_cli.py`` for CLI runs in a subprocess."""
    import dataclasses

    import keras
    from keras import layers

    from ctdistill.models.teachers import TEACHERS, TeacherSpec

    def tiny(include_top=False, weights=None, input_shape=None):
        inputs = keras.Input(input_shape)
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
        model = keras.Model(inputs, x)
        if weights not in (None, "imagenet"):  # a local weights file, as keras.applications accepts
            model.load_weights(weights)
        return model

    TEACHERS.setdefault("tiny", TeacherSpec(tiny, lambda x: x / 127.5 - 1.0, 8, "tiny_notop.h5"))
    TEACHERS.setdefault("tiny_b", dataclasses.replace(TEACHERS["tiny"], weights_file="tiny_b_notop.h5"))
    return "tiny", "tiny_b"


@pytest.fixture(scope="session")
def tiny_teacher():
    """Teacher ``tiny`` registered in the teacher table; returns its name."""
    return register_tiny_teachers()[0]


@pytest.fixture(scope="session")
def tiny_teacher_b(tiny_teacher):
    """A second tiny teacher (same builder, other name), for ensembles."""
    return register_tiny_teachers()[1]


def save_image(path: Path, array: np.ndarray, fmt: str | None = None, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path, format=fmt)
    return path


def ct_dicom(path, pixels, slope=1.0, intercept=-1024.0, photometric="MONOCHROME2", **tags):
    """A CT DICOM file of raw ``pixels`` (one frame (H, W) or several (N, H, W)); HU = raw * slope + intercept;
    ``tags``: further attributes (``PatientID="p1"``)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    frames = pixels if pixels.ndim == 3 else pixels[None]
    ds.Rows, ds.Columns = frames.shape[1:]
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = frames.astype(np.uint16).tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_tree(root: Path, splits=("train", "valid", "test"), per_class=3, names=None, size=20) -> Path:
    """A small split tree whose class folder names differ across splits, as in the Kaggle data."""
    rng = np.random.default_rng(0)
    names = names or {
        "train": ["adeno_left.lobe_T2", "normal"], "valid": ["adeno_left.lobe_T2", "normal"],
        "test": ["adeno", "normal"],
    }
    for split in splits:
        for k, folder in enumerate(names[split]):
            for i in range(per_class):
                base = np.full((size, size + 5), (60 + 120 * k) % 256, np.uint8)
                noisy = np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)
                save_image(root / split / folder / f"img{i}.png", noisy, "PNG")
    return root


@pytest.fixture
def image_tree(tmp_path) -> Path:
    return make_tree(tmp_path / "tree")


def require_shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"REAL DATA ABSENT: {SHARED_DATA} not found; real-data tests need ../shared/data/chest-ct-scan")
    return SHARED_DATA


# One finished run shared by every test that only reads a run folder (report, tables, seed files,
# ensemble, seeds): two tiny teachers, their weighted ensemble, a repeated seed, every default PTQ mode.
SHARED_RUN = {"weights": "none", "image_size": 16, "epochs": 3, "patience": 2, "batch_size": 32,
              "synthetic_per_class": (12, 4, 6), "bootstrap_resamples": 200, "seeds": (0, 1),
              "ensemble": "weighted"}


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_teacher, tiny_teacher_b):
    """``(config, run folder)`` of the shared tiny run; tests must not modify the folder (copy it)."""
    from ctdistill.config import Config
    from ctdistill.run.pipeline import run

    cfg = Config(teachers=(tiny_teacher, tiny_teacher_b), **SHARED_RUN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CTDISTILL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return cfg, run(cfg, tmp_path_factory.mktemp("shared") / "run")


def run_cli(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """``ctdistill ARGS...`` in a fresh process, as a user types it (the one helper every CLI test uses)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "ctdistill.cli.main", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


# Calls that start another process: a test whose code makes one is marked ``spawns`` (pyproject.toml), so
# the fast tier (``make test-fast``) can leave out what costs a Python start-up and a TensorFlow import.
SPAWNING = re.compile(r"(?<![\w.])(run_cli|_python|_run|start|cli)\(|\bsubprocess\.")


# Session fixtures that train a run: every test using one goes to the same pytest-xdist worker
# (``--dist loadgroup``, set in the Makefile), so the run is trained once, not once per worker.
SHARED_RUNS = ("finished_run", "tree_run")


def pytest_collection_modifyitems(items):
    for item in items:
        shared = [name for name in SHARED_RUNS if name in getattr(item, "fixturenames", ())]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
        function = getattr(item, "function", None)
        try:
            code = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):  # doctests and generated items: no source to read
            continue
        if SPAWNING.search(code):
            item.add_marker(pytest.mark.spawns)
