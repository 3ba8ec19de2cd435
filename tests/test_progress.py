"""Progress while a run works: stage k of n and the time left, as a bar on a terminal, as plain lines elsewhere."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from ctdistill.core.progress import PROGRESS, EpochProgress, RunProgress, duration

TESTS = Path(__file__).resolve().parent


def test_the_run_estimate_uses_finished_stages_of_the_same_kind():
    progress = RunProgress()
    progress.plan(["scratch", "teacher-a", "distill-a", "quantize-a"])
    progress.start("scratch")
    assert progress.position() == "stage 1/4"
    assert progress.run_left(10).startswith("run: at least 10s")  # nothing measured yet
    progress.finish("scratch", 60)
    progress.finish("teacher-a", 120)
    progress.start("distill-a")
    # the quantization stage has no measured kind: the estimate is a lower bound
    assert progress.position() == "stage 3/4" and progress.run_left(30) == "run: at least 30s left"
    progress.plan(["scratch", "distill-a", "distill-b", "quantize-a"])
    progress.finish("scratch", 60)
    progress.finish("quantize-x", 5)
    progress.start("distill-a")
    assert progress.run_left(30) == "run: ~1m35s left"  # 30 + distill-b as long as scratch + 5 s quantizing


def test_plain_lines_carry_the_stage_and_time_left(caplog, monkeypatch):
    monkeypatch.setenv("CTDISTILL_PROGRESS", "plain")
    PROGRESS.plan(["scratch", "distill-a"])
    PROGRESS.start("scratch")
    with caplog.at_level(logging.INFO, logger="ctdistill"):
        shown = EpochProgress("baseline", 4)
        shown.epoch(0, 0.5, {"loss": 1.2, "accuracy": 0.5, "val_accuracy": 0.4, "total_loss": 1.2})
        shown.close()
    line = caplog.records[-1].getMessage()
    assert "epoch 1/4" in line and "stage at most" in line and "stage 1/2" in line and "run: at least" in line
    assert "total_loss" not in line  # short lines: the CSVs keep every metric


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (5, 75, 4000)] == ["5s", "1m15s", "1h06m"]


@pytest.mark.slow  # a whole pipeline in a subprocess: about 20 s
def test_a_run_in_a_terminal_shows_a_bar_with_the_time_left(tmp_path):
    """A tiny pipeline in a pseudo-terminal: the bar names the stage and says how long is left."""
    config = tmp_path / "tiny.toml"
    config.write_text('teachers = ["tiny"]\nweights = "none"\nimage_size = 16\nsynthetic_per_class = [8, 3, 4]\n'
                      "epochs = 4\npatience = 4\nbatch_size = 32\nquant_modes = []\nbootstrap_resamples = 0\n")
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a 160-column terminal
    env = {**os.environ, "CTDISTILL_PROGRESS": "auto"}
    proc = subprocess.Popen([sys.executable, str(TESTS / "tiny_cli.py"), "run", "--config", str(config), "--out",
                             str(tmp_path / "run")], stdin=secondary, stdout=secondary, stderr=secondary, env=env,
                            close_fds=True)
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        output += chunk
    assert proc.wait(timeout=600) == 0, output.decode(errors="replace")[-3000:]
    text = output.decode(errors="replace")
    assert "stage 1/3 baseline scratch: 1/4 epochs |" in text and "at most" in text and "run: " in text
    assert "compiling the training step" in text
    assert "== verdict" in text and "report: " in text
