"""Interruptions: Ctrl-C and SIGKILL in the middle of a real CLI run, then ``--resume``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

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
