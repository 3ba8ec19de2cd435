"""Resume: completion records (when a finished stage is trusted, and when it runs again), then
interruptions (Ctrl-C and SIGKILL in the middle of a real CLI run, then ``--resume``)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctdistill.core.errors import ConfigError, DataError
from ctdistill.run.book import Stages, check_same_data, clear_partial_files, resumed_config, run_key

# ---- completion records ------------------------------------------------------------------------------------

def stage(run_dir, name, calls, text="weights"):
    def compute():
        calls.append(name)
        (run_dir / f"{name}.bin").write_text(f"{text} {len(calls)}")
        return f"model {name}", {"accuracy": np.float64(0.5), "n": np.int64(3)}
    return compute


def test_a_finished_stage_is_restored_not_recomputed(tmp_path):
    calls = []
    book = Stages(tmp_path, "key")
    obj, result = book.run("teacher-a", stage(tmp_path, "a", calls), restore=lambda r: f"loaded {r['n']}")
    assert obj == "model a" and result == {"accuracy": 0.5, "n": 3}  # NumPy scalars stored as numbers
    record = json.loads((tmp_path / "stages" / "teacher-a.json").read_text())
    assert list(record["files"]) == ["a.bin"] and record["seconds"] >= 0
    obj, again = Stages(tmp_path, "key").run("teacher-a", stage(tmp_path, "a", calls),
                                             restore=lambda r: f"loaded {r['n']}")
    assert calls == ["a"] and obj == "loaded 3" and again == result


def test_a_changed_file_or_key_runs_the_stage_again(tmp_path):
    calls = []
    Stages(tmp_path, "key").run("s", stage(tmp_path, "a", calls))
    (tmp_path / "a.bin").write_text("edited by hand")
    Stages(tmp_path, "key").run("s", stage(tmp_path, "a", calls))
    assert calls == ["a", "a"]
    Stages(tmp_path, "other config").run("s", stage(tmp_path, "a", calls))
    assert calls == ["a", "a", "a"]


def test_rerunning_a_stage_invalidates_the_stages_built_on_it(tmp_path):
    calls = []
    book = Stages(tmp_path, "key")
    book.run("teacher", stage(tmp_path, "t", calls))
    book.run("student", stage(tmp_path, "s", calls), after=("teacher",))
    (tmp_path / "t.bin").unlink()  # the teacher must be trained again ...
    book.run("teacher", stage(tmp_path, "t", calls))
    book.run("student", stage(tmp_path, "s", calls), after=("teacher",))  # ... and so its student
    assert calls == ["t", "s", "t", "s"]


def test_resume_refuses_a_changed_config_and_changed_data(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 4, "weights": "none", "teachers": ["vgg16"]}))
    assert resumed_config(tmp_path, {"epochs": 4}).epochs == 4
    with pytest.raises(ConfigError, match=r"different configuration \(alpha: 0.5 -> 0.9; epochs: 4 -> 9\)"):
        resumed_config(tmp_path, {"epochs": 9, "alpha": 0.9})
    with pytest.raises(ConfigError, match="not a ctdistill run folder"):
        resumed_config(tmp_path / "elsewhere", {})
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": {"fingerprint": "a" * 64}}))
    check_same_data(tmp_path, "a" * 64)
    with pytest.raises(DataError, match="the dataset changed since the run started"):
        check_same_data(tmp_path, "b" * 64)


def test_run_key_and_partial_files(tmp_path):
    assert run_key({"a": 1, "b": 2}, "f") == run_key({"b": 2, "a": 1}, "f") != run_key({"a": 1, "b": 2}, "g")
    (tmp_path / "Plots").mkdir()
    (tmp_path / "Plots" / ".curves.x1.tmp.png").write_bytes(b"half")
    (tmp_path / "summary.csv").write_text("kept")
    assert [p.name for p in clear_partial_files(tmp_path)] == [".curves.x1.tmp.png"]
    assert (tmp_path / "summary.csv").is_file()


def test_an_older_runs_config_resumes_with_the_values_it_ran_with(tmp_path):
    """A config.json written before a key existed (here ``crop``) resumes with that key's legacy
    value, never with today's default: the run is not silently retrained another way."""
    import json

    from ctdistill.run.book import resumed_config

    (tmp_path / "config.json").write_text(json.dumps({"teachers": ["vgg16"], "weights": "none", "batch_size": 256}))
    cfg = resumed_config(tmp_path, {})
    assert cfg.crop == "none" and cfg.batch_size == 256


def test_moved_data_resumes_with_the_saved_run_key(tmp_path):
    import json

    from ctdistill.config import Config
    from ctdistill.run.book import resumed_config, resumed_key, run_key

    saved = Config(teachers=("vgg16",), weights="none", data=str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    moved = resumed_config(tmp_path, {}, {"data": str(elsewhere)})
    assert moved.data == str(elsewhere)
    assert resumed_key(moved, tmp_path, "fp") == run_key(saved.to_dict(), "fp")


def test_quantize_refuses_a_run_whose_training_has_not_finished(tmp_path):
    from ctdistill.config import Config
    from ctdistill.core.errors import ConfigError
    from ctdistill.run.book import Stages
    from ctdistill.run.pipeline import trained_teachers

    cfg = Config(teachers=("vgg16", "resnet50"), weights="none", ensemble="mean", seeds=(0, 1))
    with pytest.raises(ConfigError, match=r"stages scratch, distill-vgg16, distill-resnet50, distill-ensemble, seeds"):
        trained_teachers(cfg, Stages(tmp_path, "key"))


# ---- interruptions of a real run --------------------------------------------------------------------------

TINY_CLI = Path(__file__).resolve().parent / "tiny_cli.py"
CONFIG = """teachers = ["tiny", "tiny_b"]
weights = "none"
image_size = 16
epochs = 4
patience = 2
batch_size = 32
synthetic_per_class = [12, 4, 6]
bootstrap_resamples = 100
"""


def start(*args) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored across
    # exec (CI may run us so): give the run the default disposition, as a terminal would.
    return subprocess.Popen([sys.executable, str(TINY_CLI), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Poll until ``path`` exists (the stage's completion record), failing if the run ends first."""
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, f"the run ended before {path.name}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout}s"
        time.sleep(0.1)


def fingerprint(run_dir: Path, names) -> dict[str, tuple[int, str]]:
    return {n: ((run_dir / n).stat().st_mtime_ns, hashlib.sha256((run_dir / n).read_bytes()).hexdigest())
            for n in names}


@pytest.mark.slow
def test_ctrl_c_then_kill_then_resume_completes_without_redoing_finished_stages(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    run_dir = tmp_path / "run"

    # Ctrl-C after the scratch baseline: exit 130 and a one-line hint that says how to resume.
    proc = start("run", "--config", config, "--out", run_dir)
    wait_for(run_dir / "stages" / "scratch.json", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert f"Resume with: ctdistill run --resume {run_dir}" in err.strip().splitlines()[-1]
    assert "Traceback" not in err

    # SIGKILL (no chance to clean up) once the first teacher has finished.
    proc = start("run", "--resume", run_dir)
    wait_for(run_dir / "stages" / "teacher-tiny.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not (run_dir / "summary.csv").exists(), "the run finished before it could be killed"
    teacher_files = json.loads((run_dir / "stages" / "teacher-tiny.json").read_text())["files"]
    assert "tiny_Teacher.keras" in teacher_files and "predictions/tiny_teacher.csv" in teacher_files
    before = fingerprint(run_dir, teacher_files)
    scratch_before = fingerprint(run_dir, ["Scratch_Student.keras"])

    # A different configuration is refused, naming the differing key; nothing is touched.
    refused = start("run", "--resume", run_dir, "--epochs", "9")
    _, err = refused.communicate(timeout=300)
    assert refused.returncode == 2 and "refused to resume with a different configuration (epochs: 4 -> 9)" in err

    done = start("run", "--resume", run_dir)
    out, err = done.communicate(timeout=900)
    assert done.returncode == 0, err[-3000:]
    assert out.strip().splitlines()[-1] == str(run_dir)
    assert "stage teacher-tiny finished earlier" in err and "stage scratch finished earlier" in err
    assert fingerprint(run_dir, teacher_files) == before  # not rewritten
    assert fingerprint(run_dir, ["Scratch_Student.keras"]) == scratch_before

    # The outputs are complete: every stage recorded, both teachers in every table, no temporary files.
    stages = sorted(p.stem for p in (run_dir / "stages").glob("*.json"))
    assert stages == sorted(["scratch"] + [f"{k}-{t}" for t in ("tiny", "tiny_b")
                                           for k in ("teacher", "distill", "quantize")])
    summary = pd.read_csv(run_dir / "summary.csv")
    assert set(summary["model"]) >= {"scratch_student", "tiny_teacher", "tiny_student", "tiny_b_teacher",
                                      "tiny_b_student", "tiny_student_int8", "tiny_b_student_int8"}
    assert set(pd.read_csv(run_dir / "TinyEvalRes_Quant.csv")["teacher"]) == {"tiny", "tiny_b"}
    assert (run_dir / "report.html").is_file() and (run_dir / "quant_gate.json").is_file()
    assert json.loads((run_dir / "timings.json").read_text())["resumed"] is True
    assert not list(run_dir.rglob(".*.tmp*"))
    for row in summary.itertuples():
        assert (run_dir / row.file).is_file(), row.file
