"""Bad input, round two (issue #31): cases that used to exit 0 with a wrong result, or crash with an
``internal error`` naming no file. Each now ends in one line naming the file or flag, a non-zero exit
and nothing written, or (where the input is usable) a warning that says what was assumed.

The CLI runs in-process (``cli.main``), as in ``test_bad_input.py``; argparse's refusals exit 2 with
``error: argument --flag: ...``.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import ct_dicom, make_tree, save_image

from ctdistill.cli.main import main
from ctdistill.core.errors import ConfigError

TINY = ["--weights", "none", "--teachers", "vgg16"]


def refused(capsys, args: list, fragment: str, code: int = 2) -> str:
    """The CLI refuses ``args`` with ``fragment`` in its last line (argparse or ctdistill), no traceback."""
    try:
        result = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse: usage, then "ctdistill CMD: error: argument --x: ..."
        result = exit_.code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert result == code, err
    assert "error: " in last and fragment in last, last
    assert "Traceback" not in err
    return last


# ---- numbers: finite and in range, checked where each option is declared -----------------------------

@pytest.mark.parametrize("flags,fragment", [
    (["--lr", "inf"], "learning_rate=inf must be a finite number"),
    (["--temperature", "inf"], "temperature=inf must be a finite number"),
    (["--max-quant-drop", "nan"], "max_quant_drop=nan must be a finite number"),
    (["--seeds", "0,-1"], "seeds=(0, -1) must be distinct seeds between 0 and"),
    (["--seed", "-3"], "seed=-3 must be between 0 and"),
    (["--seeds", "0,,1"], "--seeds: seeds must be a list"),   # blames the flag, not a config file
    (["--teachers", "nonexistent"], "--teachers: unknown teacher 'nonexistent'"),
])
def test_run_flags_that_would_train_nonsense_are_refused_naming_the_flag(tmp_path, capsys, flags, fragment):
    refused(capsys, ["run", *TINY, *flags, "--out", tmp_path / "run"], fragment)
    assert not (tmp_path / "run").exists()


def test_a_flag_beside_a_config_file_is_blamed_on_the_flag(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("epochs = 2\n")
    refused(capsys, ["run", "--config", config, "--seeds", "0,,1", "--out", tmp_path / "run"], "--seeds:")


@pytest.mark.parametrize("args,fragment", [
    (["data", "audit", "DATA", "--threshold", "-1"], "argument --threshold: -1 must be between 0 and 64"),
    (["data", "audit", "DATA", "--threshold", "65"], "argument --threshold: 65 must be between 0 and 64"),
    (["predict", "MODEL", "x.png", "--window-width", "nan"], "argument --window-width: nan must be a finite number"),
    (["predict", "MODEL", "x.png", "--window-level", "inf"], "argument --window-level: inf must be a finite"),
    (["predict", "MODEL", "x.png", "--window-width", "0"], "argument --window-width: 0 must be >= 1"),
    (["bench", "MODEL", "--threads", "0"], "argument --threads: 0 must be >= 1"),
    (["bench", "MODEL", "--threads", "abc"], "argument --threads: 'abc' is not a whole number"),
    (["bench", "MODEL", "--calls", "0"], "argument --calls: 0 must be >= 1"),
    (["bench", "MODEL", "--batch", "0"], "argument --batch: 0 must be >= 1"),
    (["report", "RUN", "--resamples", "-1"], "argument --resamples: -1 must be 0 (no intervals) or >= 100"),
    (["report", "RUN", "--bins", "1"], "argument --bins: 1 must be between 2 and 100"),
    (["compare", "RUN", "RUN", "--resamples", "5"], "argument --resamples: 5 must be 0 (no intervals) or >= 100"),
    (["data", "prepare", "DATA", "--out", "o", "--image-size", "4"], "argument --image-size: 4 must be between 8"),
])
def test_other_commands_numeric_flags_are_checked_before_anything_runs(tmp_path, capsys, args, fragment):
    refused(capsys, args, fragment)


# ---- report never rewrites a run's numbers in place --------------------------------------------------

def test_report_with_other_statistics_refuses_to_rewrite_the_run_and_writes_elsewhere(finished_run, tmp_path,
                                                                                     capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run[1], run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    refused(capsys, ["report", run_dir, "--resamples", "0"], "--resamples change the run's numbers")
    refused(capsys, ["report", run_dir, "--ci-method", "BCa", "--bins", "5"], "--bins, --ci-method change")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert main(["report", str(run_dir), "--resamples", "0", "--out", str(tmp_path / "other")]) == 0
    assert "accuracy_lo" not in (tmp_path / "other" / "metrics.csv").read_text()
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


# ---- folder trees ------------------------------------------------------------------------------------

def test_valid_and_val_side_by_side_are_refused_not_one_ignored(tmp_path, capsys):
    tree = make_tree(tmp_path / "tree")
    shutil.copytree(tree / "valid", tree / "val")
    refused(capsys, ["data", "inspect", tree], "valid/ and val/ are both a valid split")
    refused(capsys, ["run", *TINY, "--data", tree, "--out", tmp_path / "run"], "valid/ and val/ are both")
    assert not (tmp_path / "run").exists()


def test_images_in_subfolders_of_a_class_are_counted_with_a_warning(tmp_path, capsys, caplog):
    tree = make_tree(tmp_path / "tree")
    save_image(tree / "train" / "normal" / "rejected" / "old" / "x.png", np.zeros((20, 25), np.uint8), "PNG")
    with caplog.at_level(logging.WARNING):
        assert main(["data", "inspect", str(tree)]) == 0
    assert "file(s) in subfolders (rejected/old) are counted as class normal" in caplog.text


def test_a_class_too_small_to_split_is_named(tmp_path, capsys):
    for i in range(6):
        save_image(tmp_path / "flat" / "big" / f"{i}.png", np.full((20, 20), 40 * i, np.uint8), "PNG")
    save_image(tmp_path / "flat" / "lonely" / "0.png", np.full((20, 20), 250, np.uint8), "PNG")
    line = refused(capsys, ["run", *TINY, "--data", tmp_path / "flat", "--out", tmp_path / "run"],
                   "too few images to split into train, valid and test (big: 6, lonely: 1")
    assert "scikit" not in line and not (tmp_path / "run").exists()


def test_inspect_reads_dicom_and_refuses_bombs_as_the_decoders_do(tmp_path, capsys):
    from test_bad_input import _png_header

    for i, label in enumerate(("contrast", "plain", "contrast", "plain")):
        ct_dicom(tmp_path / "dcm" / label / f"{i}.dcm", np.full((16, 16), 1000 + i, np.uint16))
    assert main(["data", "inspect", str(tmp_path / "dcm"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["unreadable"] == [] and info["formats"] == {"DICOM (.dcm)": 4} and info["width"]["max"] == 16
    tree = make_tree(tmp_path / "tree")
    (tree / "train" / "normal" / "bomb.png").write_bytes(_png_header(30000, 30000))
    assert main(["data", "inspect", str(tree), "--json"]) == 0
    [line] = json.loads(capsys.readouterr().out)["unreadable"]
    assert "bomb.png: image too large to decode safely" in line


# ---- numpy layouts -----------------------------------------------------------------------------------

def _layout(root, labels=(0, 1), x_train=None):
    root.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        np.save(root / f"X_{split}.npy", rng.integers(0, 255, (n, 16, 16, 3), np.uint8))
        np.save(root / f"y_{split}.npy", np.array(list(labels) * (n // 2)))
    if x_train is not None:
        np.save(root / "X_train.npy", x_train, allow_pickle=True)
    return root


def test_labels_that_skip_classes_are_refused(tmp_path, capsys):
    root = _layout(tmp_path / "npy", labels=(0, 5))
    for args in (["data", "audit", root, "--out", tmp_path / "audit"], ["run", *TINY, "--data", root, "--out",
                                                                         tmp_path / "run"]):
        refused(capsys, args, "class(es) class_1, class_2, class_3, class_4 have no training image")
    assert not (tmp_path / "audit" / "audit.json").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("case,fragment", [("object", "refused to load an array of Python objects"),
                                           ("truncated", "not a readable .npy file, truncated or corrupt")])
def test_object_or_truncated_arrays_are_named_by_inspect_and_audit(tmp_path, capsys, case, fragment):
    root = _layout(tmp_path / "npy", x_train=np.array([None] * 6, dtype=object) if case == "object" else None)
    if case == "truncated":
        data = (root / "X_train.npy").read_bytes()
        (root / "X_train.npy").write_bytes(data[:len(data) // 2])
    for command in (["data", "inspect", root], ["data", "audit", root, "--out", tmp_path / "audit"]):
        assert "X_train.npy: " + fragment in refused(capsys, command, fragment)


# ---- caches, completion records and run configurations that were cut short --------------------------

def test_a_half_written_cache_entry_is_decoded_again(tmp_path, caplog, monkeypatch):
    from ctdistill.data import cache, load_dataset

    monkeypatch.setenv("CTDISTILL_CACHE", str(tmp_path / "cache"))
    tree = make_tree(tmp_path / "tree")
    first = load_dataset(tree, 8, 3)
    [entry] = (tmp_path / "cache").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:200])  # a run killed while writing it, before atomic writes
    with caplog.at_level(logging.WARNING):
        again = load_dataset(tree, 8, 3)
    assert "is unreadable" in caplog.text and np.array_equal(again.train.x, first.train.x)
    assert cache.load(entry.stem) is not None  # stored again, whole


def test_a_corrupt_completion_record_reruns_its_stage_and_a_corrupt_config_is_named(tmp_path, caplog):
    from ctdistill.run.book import Stages, resumed_config

    book = Stages(tmp_path, "key")
    book.run("scratch", lambda: (None, {"accuracy": 0.5}))
    assert book.result("scratch") == {"accuracy": 0.5}
    (tmp_path / "stages" / "scratch.json").write_text('{"key": "key", "files": {')
    with caplog.at_level(logging.WARNING):
        assert book.result("scratch") is None and book.seconds("scratch") is None
    assert "completion record" in caplog.text and "running stage scratch again" in caplog.text
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json: not a readable run configuration .* cannot be resumed"):
        resumed_config(tmp_path, {})


# ---- models and predict ------------------------------------------------------------------------------

def test_predict_on_an_empty_folder_is_refused(finished_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    refused(capsys, ["predict", finished_run[1], tmp_path / "empty"], "empty: no files in this folder")


def test_a_tiny_image_is_predicted_with_a_warning_that_it_was_enlarged(finished_run, tmp_path, capsys):
    save_image(tmp_path / "one.png", np.full((1, 1), 128, np.uint8), "PNG")
    assert main(["predict", str(finished_run[1]), str(tmp_path / "one.png")]) == 0
    assert "1 image(s) are smaller than the model's 16x16 input and were enlarged" in capsys.readouterr().err


def test_a_broken_card_of_another_model_does_not_stop_the_choice(finished_run, tmp_path, capsys, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run[1], run_dir)
    (run_dir / "tiny_b_Teacher.keras.json").write_text("{cut")
    with caplog.at_level(logging.WARNING):
        assert main(["predict", str(run_dir), str(finished_run[1] / "Plots" / "per_class.png")]) == 0
    assert "tiny_b_Teacher.keras.json: model card is not valid JSON" in caplog.text


def test_a_truncated_keras_file_is_named(tmp_path, finished_run, capsys):
    source = finished_run[1] / "tiny_Student.keras"
    target = tmp_path / "cut.keras"
    target.write_bytes(source.read_bytes()[:1000])
    shutil.copy(source.with_name(source.name + ".json"), target.with_name("cut.keras.json"))
    save_image(tmp_path / "in" / "x.png", np.zeros((8, 8), np.uint8), "PNG")
    refused(capsys, ["predict", target, tmp_path / "in"], "cut.keras: not a valid .keras file")


# ---- environment -------------------------------------------------------------------------------------

def test_an_unknown_keras_backend_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "bogus")
    refused(capsys, ["doctor"], "Keras backend 'bogus' (--backend or $KERAS_BACKEND): choose from")


def test_an_out_folder_that_cannot_be_written_says_so_not_zero_megabytes(capsys):
    line = refused(capsys, ["run", *TINY, "--out", "/proc/ctdistill-run"], "/proc/ctdistill-run: cannot write there",
                   code=2)
    assert "MB free" not in line

