"""The command line, run as a user runs it: in a subprocess."""

import numpy as np
import pytest
from conftest import run_cli

from ctdistill.cli.main import RUN_OPTIONS


def test_help_explains_every_option():
    top = run_cli("--help")
    assert top.returncode == 0 and "run" in top.stdout and "data" in top.stdout
    run_help = run_cli("run", "--help")
    assert run_help.returncode == 0
    for flag, *_ in RUN_OPTIONS:
        assert flag in run_help.stdout, flag
    assert "--out" in run_help.stdout and "--config" in run_help.stdout


@pytest.mark.parametrize("args,fragment", [
    (["run", "--temperature", "0"], "temperature=0.0 must be > 0"),
    (["run", "--alpha", "2"], "alpha=2.0 must be within [0, 1]"),
    (["run", "--teachers", "alexnet"], "unknown teacher 'alexnet'"),
    (["run", "--data", "/no/such/folder", "--weights", "none"], "/no/such/folder: data path does not exist"),
    (["run", "--teachers", "resnet50", "--weights", "/no/weights/dir"],
     "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, args, fragment):
    out = tmp_path / "run"
    result = run_cli(*args, "--out", out)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {result.stderr.strip().splitlines()[-1][7:]}"
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_data_inspect_and_prepare(image_tree, tmp_path):
    inspect = run_cli("data", "inspect", image_tree)
    assert inspect.returncode == 0, inspect.stderr
    assert "train: 6 images  3 adeno, 3 normal" in inspect.stdout and "PNG (.png): 18" in inspect.stdout
    out = tmp_path / "arrays"
    prep = run_cli("data", "prepare", image_tree, "--out", out, "--image-size", 12)
    assert prep.returncode == 0, prep.stderr
    x = np.load(out / "X_train.npy")
    assert x.shape == (6, 12, 12, 3) and x.dtype == np.uint8
    assert run_cli("data", "inspect", out).stdout.startswith("X_train.npy: shape [6, 12, 12, 3] uint8")


@pytest.mark.slow
def test_cli_run_end_to_end_with_a_real_teacher(tmp_path):
    """A real keras.applications teacher through the whole CLI (tiny data, one epoch)."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("synthetic_per_class = [4, 2, 2]\nimage_size = 16\nbatch_size = 16\n")
    out = tmp_path / "run"
    result = run_cli("run", "--config", cfg, "--teachers", "vgg16", "--weights", "none", "--epochs", 1,
                       "--quant-modes", "int8", "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(out)
    assert "SYNTHETIC" in result.stderr and "vgg16_student_int8" in result.stderr
    for noise in ("oneDNN", "XNNPACK", "absl", "HDF5", "Assets written", "retracing"):
        assert noise not in result.stderr, noise  # native/library chatter stays off the terminal
    for name in ("vgg16_Student.keras", "vgg16_student_int8.tflite", "TinyEvalRes_Quant.csv", "summary.csv"):
        assert (out / name).is_file(), name


def test_a_reader_that_leaves_early_gets_no_error_line(monkeypatch, capsys):
    """`ctdistill predict ... | head`: a closed pipe ends the command quietly, with no `error: Broken pipe`."""
    from ctdistill.cli import main as cli
    def reader_left(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli.COMMANDS, ("doctor", None), reader_left)
    assert cli.main(["doctor"]) == 1
    assert "Broken pipe" not in capsys.readouterr().err


def test_a_teacher_at_its_own_size_with_the_teacher_on_every_batch_stops_before_training(tmp_path):
    done = run_cli("run", "--teachers", "efficientnet_lite0", "--teacher-views", "0", "--out", tmp_path / "run")
    assert done.returncode == 2, done.stderr
    assert "teacher_views=0" in done.stderr and "(224)" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
