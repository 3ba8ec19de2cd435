"""Bad input, case by case: a one-line ``error:`` that names the file or field, a non-zero exit, no
traceback, nothing written. The rule (docs/troubleshooting.md): an unreadable image among
many is skipped and listed (``--strict`` stops instead); anything structural stops the run.

The CLI is called in-process (``cli.main``: the same parsing and error handling as the console
script) to keep the suite fast; ``test_cli.py`` runs it in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from conftest import make_tree, run_cli, save_image
from PIL import Image

from ctdistill.cli.main import main
from ctdistill.core.errors import DataError
from ctdistill.data import load_dataset, write_numpy


def fails(capsys, args: list, fragment: str, out=None, code: int = 2) -> str:
    """Run the CLI; assert the promised failure; return the error line."""
    result = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert result == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, last
    assert "Traceback" not in err
    if out is not None:
        assert not out.exists(), "a failed run must not leave a run folder"
    return last


def run_args(tmp_path, *extra):
    out = tmp_path / "run"
    return ["run", "--weights", "none", "--teachers", "vgg16", "--out", out, *extra], out


# ---- images: skipped and listed by default, --strict stops at the first -----------------------------

def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` pixels and carries none: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _truncated_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()[:-60]


BAD_IMAGES = {
    "zero.png": (b"", "empty file (0 bytes)"),
    "truncated.png": (_truncated_png(), "corrupt or truncated image"),
    "notes.png": (b"patient list, not an image\n", "not a readable image"),
    "drawing.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unknown or unsupported format"),
    "bomb.png": (_png_header(9000, 9000), "image too large to decode safely (9000 x 9000 pixels"),
    "hugebomb.png": (_png_header(30000, 30000), "image too large to decode safely"),  # refused by PIL itself
}


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_a_bad_image_is_skipped_and_listed(tmp_path, name):
    payload, reason = BAD_IMAGES[name]
    tree = make_tree(tmp_path / "tree")
    (tree / "train" / "normal" / name).write_bytes(payload)
    data = load_dataset(tree, 8, 3)
    assert len(data.train) == 6  # the other six train images, the bad one left out
    assert len(data.skipped) == 1 and name in data.skipped[0] and reason in data.skipped[0]
    assert data.summary()["skipped"] == data.skipped  # and the manifest lists it


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_strict_stops_at_a_bad_image_naming_it(tmp_path, capsys, name):
    payload, reason = BAD_IMAGES[name]
    tree = make_tree(tmp_path / "tree")
    (tree / "test" / "adeno" / name).write_bytes(payload)
    args, out = run_args(tmp_path, "--data", tree, "--strict")
    line = fails(capsys, args, reason, out)
    assert f"adeno/{name}" in line and "--strict" in line


def test_strict_refuses_even_when_the_lenient_decode_was_cached(tmp_path):
    tree = make_tree(tmp_path / "tree")
    (tree / "train" / "normal" / "zero.png").write_bytes(b"")
    assert len(load_dataset(tree, 8, 3).skipped) == 1
    with pytest.raises(DataError, match="zero.png: empty file"):
        load_dataset(tree, 8, 3, strict=True)


def test_sixteen_bit_png_and_cmyk_jpeg_load(tmp_path):
    tree = make_tree(tmp_path / "tree")
    Image.fromarray(np.full((20, 24), 50000, np.uint16)).save(tree / "train" / "normal" / "deep.png")
    save_image(tree / "train" / "normal" / "print.jpg", np.full((20, 24, 3), 180, np.uint8), "JPEG", mode="CMYK")
    assert Image.open(tree / "train" / "normal" / "print.jpg").mode == "CMYK"
    data = load_dataset(tree, 8, 3)
    assert not data.skipped and len(data.train) == 8
    assert data.train.x[-2:].min() > 100  # both kept their brightness


def test_a_class_left_empty_by_skipping_stops(tmp_path, capsys):
    tree = make_tree(tmp_path / "tree", per_class=1)
    (tree / "valid" / "normal" / "img0.png").write_bytes(b"")
    with pytest.raises(DataError, match="classes differ between splits after skipping unreadable images"):
        load_dataset(tree, 8, 3)


# ---- folder structure: always stops -----------------------------------------------------------------

def test_empty_class_folder(tmp_path, capsys):
    tree = make_tree(tmp_path / "tree")
    (tree / "valid" / "squamous").mkdir()
    args, out = run_args(tmp_path, "--data", tree)
    fails(capsys, args, "valid/squamous: empty class folder", out)


def test_a_split_missing_a_class(tmp_path, capsys):
    tree = make_tree(tmp_path / "tree")
    for f in (tree / "test" / "normal").iterdir():
        f.unlink()
    (tree / "test" / "normal").rmdir()
    args, out = run_args(tmp_path, "--data", tree)
    fails(capsys, args, "train/normal, valid/normal (nothing in test)", out)


def test_class_sets_that_differ_after_reconciliation(tmp_path, capsys):
    names = {"train": ["adeno_left", "normal"], "valid": ["adeno_right", "normal"], "test": ["adenoma", "normal"]}
    tree = make_tree(tmp_path / "tree", names=names)
    args, out = run_args(tmp_path, "--data", tree)
    fails(capsys, args, "train/adeno_left (nothing in valid, test)", out)


def test_a_single_class(tmp_path, capsys):
    names = {s: ["normal"] for s in ("train", "valid", "test")}
    tree = make_tree(tmp_path / "tree", names=names)
    args, out = run_args(tmp_path, "--data", tree)
    fails(capsys, args, "only one class ('normal') found", out)


def test_data_path_missing_or_a_file(tmp_path, capsys):
    args, out = run_args(tmp_path, "--data", tmp_path / "nowhere")
    fails(capsys, args, "nowhere: data path does not exist", out)
    (tmp_path / "scan.png").write_bytes(b"x")
    args, out = run_args(tmp_path, "--data", tmp_path / "scan.png")
    fails(capsys, args, "scan.png: data path is a file", out)


# ---- the seed's numpy layout --------------------------------------------------------------------------

def _arrays(tmp_path):
    out = tmp_path / "np"
    write_numpy(load_dataset(make_tree(tmp_path / "tree"), 8, 3), out)
    return out


NUMPY_CASES = {
    "nan": ("X_train.npy", lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan,
                                                   x.astype(np.float32)), None),
            "X_train.npy: images contain NaN or infinite values"),
    "inf": ("X_val.npy", lambda x, y: (np.full(x.shape, np.inf, np.float32), None),
            "X_val.npy: images contain NaN or infinite values"),
    "rank": ("X_test.npy", lambda x, y: (x.reshape(len(x), -1), None), "X_test.npy: images must be (N, H, W, C)"),
    "channels": ("X_train.npy", lambda x, y: (x[..., :2], None), "got shape (6, 8, 8, 2)"),
    "length": ("y_test.npy", lambda x, y: (None, y[:4]), "y_test.npy: 4 labels for 6 images"),
    "range": ("y_val.npy", lambda x, y: (None, np.array([-1, 0, 1, 0, 1, 0])), "y_val.npy: labels must be within"),
    "onehot": ("y_train.npy", lambda x, y: (None, y * 0.5),
               "y_train.npy: one-hot rows must be non-negative and sum to 1"),
}


@pytest.mark.parametrize("case", NUMPY_CASES)
def test_numpy_arrays(tmp_path, capsys, case):
    target, change, fragment = NUMPY_CASES[case]
    folder = _arrays(tmp_path)
    split = target.split("_")[1]
    x, y = np.load(folder / f"X_{split}"), np.load(folder / f"y_{split}")
    new_x, new_y = change(x, y)
    if new_x is not None:
        np.save(folder / f"X_{split}", new_x)
    if new_y is not None:
        np.save(folder / f"y_{split}", new_y)
    args, out = run_args(tmp_path, "--data", folder)
    fails(capsys, args, fragment, out)


def test_a_pickled_object_array_is_refused_not_loaded(tmp_path, capsys):
    folder = _arrays(tmp_path)
    np.save(folder / "y_test.npy", np.array([{"a": 1}] * 6, dtype=object), allow_pickle=True)
    args, out = run_args(tmp_path, "--data", folder)
    fails(capsys, args, "y_test.npy: refused to load", out)


# ---- configuration --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,fragment", [
    ("epochs = 3\nbogus = 1\n", "unknown key(s) bogus"),
    ("epochs = 'three'\n", "epochs must be an integer, got 'three'"),
    ("strict = 'maybe'\n", "strict must be true or false"),
    ("temperature = [2]\n", "temperature must be a number"),
])
def test_config_file_key_and_type(tmp_path, capsys, text, fragment):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    args, out = run_args(tmp_path, "--config", config)
    line = fails(capsys, args, fragment, out)
    assert "bad.toml" in line


@pytest.mark.parametrize("flags,fragment", [
    (["--temperature", "0"], "temperature=0.0 must be > 0"),
    (["--temperature", "-1"], "temperature=-1.0 must be > 0"),
    (["--alpha", "1.5"], "alpha=1.5 must be within [0, 1]"),
    (["--alpha", "-0.1"], "alpha=-0.1 must be within [0, 1]"),
    (["--image-size", "4"], "image_size=4 must be between 8 and 1024"),
])
def test_out_of_range_values(tmp_path, capsys, flags, fragment):
    args, out = run_args(tmp_path, *flags)
    fails(capsys, args, fragment, out)


def test_an_image_smaller_than_a_teacher_takes_is_resized_up_not_refused():
    from ctdistill.models.teachers import TEACHERS, build_teacher

    teacher = build_teacher("vgg16", (16, 16, 3), 3, weights=None)  # VGG16 needs 32 px
    assert teacher.get_layer("resize_to_min").output.shape[1:3] == (TEACHERS["vgg16"].min_size,) * 2


# ---- output folder ----------------------------------------------------------------------------------------

def test_output_folder_under_a_file(tmp_path, capsys):
    (tmp_path / "results").write_text("a file, not a folder")
    out = tmp_path / "results" / "run1"
    fails(capsys, ["run", "--weights", "none", "--teachers", "vgg16", "--out", out], "results is a file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere; "
                    "the not-writable case is covered by the folder-under-a-file test")
def test_output_folder_not_writable(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        fails(capsys, ["run", "--weights", "none", "--teachers", "vgg16", "--out", locked / "run"], "not writable")
    finally:
        locked.chmod(0o700)


# ---- models given to predict -----------------------------------------------------------------------------

def _card(model_file):
    model_file.with_name(model_file.name + ".json").write_text(json.dumps(
        {"input": {"height": 8, "channels": 3}, "class_names": ["a", "b"]}))


def test_corrupt_models_given_to_predict(tmp_path, capsys):
    save_image(tmp_path / "in" / "x.png", np.zeros((8, 8), np.uint8), "PNG")
    for name, payload, fragment in (("broken.tflite", b"\x00" * 64, "broken.tflite: not a valid .tflite model"),
                                    ("broken.keras", b"PK\x03\x04 not really", "broken.keras: not a valid .keras")):
        (tmp_path / name).write_bytes(payload)
        _card(tmp_path / name)
        fails(capsys, ["predict", tmp_path / name, tmp_path / "in"], fragment)


def test_a_keras_model_with_a_lambda_layer_is_refused(tmp_path, capsys):
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    model.save(tmp_path / "lambda.keras")
    _card(tmp_path / "lambda.keras")
    save_image(tmp_path / "in" / "x.png", np.zeros((8, 8), np.uint8), "PNG")
    fails(capsys, ["predict", tmp_path / "lambda.keras", tmp_path / "in"], "contains a Lambda layer")


# ---- --debug shows what the one-line error hides -----------------------------------------------------------

def test_debug_shows_the_traceback():
    plain = run_cli("run", "--alpha", "2", timeout=300)
    debug = run_cli("run", "--alpha", "2", "--debug", timeout=300)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_data_prepare_never_overwrites_arrays(tmp_path, capsys):
    folder = _arrays(tmp_path)
    before = (folder / "X_train.npy").read_bytes()
    fails(capsys, ["data", "prepare", make_tree(tmp_path / "tree2"), "--out", folder], "X_train.npy: already exists")
    assert (folder / "X_train.npy").read_bytes() == before
