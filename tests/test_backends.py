"""Training on another Keras backend (JAX), export from it, and training where TensorFlow is missing.

Each test runs the CLI in a subprocess: the Keras backend is fixed when Keras is first imported.
JAX compiles every model's step on first use (tens of seconds on a CPU), hence ``slow``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
TINY = ["--teachers", "tiny", "--weights", "none", "--image-size", "16", "--epochs", "2", "--patience", "2",
        "--batch-size", "16", "--bootstrap-resamples", "0"]
# Runs the CLI with the tests' tiny teacher and, with --no-tensorflow, as if TensorFlow and LiteRT
# were not installed (a JAX GPU box): importing them fails.
RUNNER = """
import importlib.abc, sys
sys.path.insert(0, {here!r})
if sys.argv[1] == "--no-tensorflow":
    sys.argv.pop(1)
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("tensorflow", "ai_edge_litert"):
                raise ImportError("not installed here: " + name)
    sys.meta_path.insert(0, Block())
    import importlib.util
    importlib.util.find_spec = (lambda real: lambda name, *a: None if name.split(".")[0] in
                                ("tensorflow", "ai_edge_litert") else real(name, *a))(importlib.util.find_spec)
from conftest import register_tiny_teachers
from ctdistill.cli.main import main
register_tiny_teachers()
sys.exit(main(sys.argv[1:]))
"""


def cli(*args, backend="tensorflow", timeout=900) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", RUNNER.format(here=str(HERE)), *map(str, args)],
                           capture_output=True, text=True, env=env, timeout=timeout)


pytestmark = pytest.mark.slow


def test_a_run_trains_on_jax_and_exports_from_it(tmp_path):
    out = tmp_path / "run"
    done = cli("run", *TINY, "--quant-modes", "float16,int8", "--out", out, backend="jax")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"]["backend"] == "jax"
    summary = pd.read_csv(out / "summary.csv").set_index("model")
    assert {"tiny_student_float16", "tiny_student_int8"} <= set(summary.index)
    # the exported files predict what the JAX-trained student predicts
    pred = {m: pd.read_csv(out / "predictions" / f"{m}.csv") for m in
            ("tiny_student", "tiny_student_float16", "tiny_student_int8")}
    float_classes = pred["tiny_student"]["predicted_label"]
    assert (pred["tiny_student_float16"]["predicted_label"] == float_classes).all()
    probs = [c for c in pred["tiny_student"] if c.startswith("prob_")]
    np.testing.assert_allclose(pred["tiny_student_float16"][probs], pred["tiny_student"][probs], atol=2e-3)
    # int8 differs by its quantization error only (a 2-epoch model is nearly uniform, so classes may
    # flip): a wrong export (other weights, other preprocessing) would be far off
    drift = np.abs(pred["tiny_student_int8"][probs].to_numpy() - pred["tiny_student"][probs].to_numpy())
    assert drift.mean() < 0.03, drift.mean()


def test_without_tensorflow_a_run_trains_and_quantize_finishes_it_later(tmp_path):
    out = tmp_path / "run"
    done = cli("--no-tensorflow", "run", *TINY, "--seeds", "0,1", "--out", out, backend="jax")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "quantization deferred" in done.stderr and f"ctdistill quantize {out}" in done.stderr
    assert not list(out.glob("*.tflite")) and (out / "seeds" / "seed1" / "tiny_Student.keras").is_file()
    assert "quantized" not in set(pd.read_csv(out / "summary.csv")["kind"])
    # later, on a machine with TensorFlow and LiteRT (here: the same one, without the block)
    later = cli("quantize", out)
    assert later.returncode == 0, later.stderr[-3000:]
    assert "stage teacher-tiny" not in later.stderr  # nothing is trained again
    summary = pd.read_csv(out / "summary.csv")
    assert {"dynamic", "float16", "int8"} <= set(summary.loc[summary["kind"] == "quantized", "mode"])
    assert (out / "predictions" / "seed1" / "tiny_student_int8.csv").is_file()
    assert len(pd.read_csv(out / "TinyEvalRes_Quant.csv")) >= 3 and (out / "report.html").is_file()
    again = cli("quantize", out)  # finished stages are kept
    assert again.returncode == 0 and "quantize-tiny finished earlier" in again.stderr


def test_quantize_refuses_a_run_that_has_not_trained(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"teachers": ["vgg16"], "weights": "none"}))
    done = cli("quantize", tmp_path / "nowhere")
    assert done.returncode == 2 and "not a ctdistill run folder" in done.stderr
