"""Progress while a run works: stage k of n, an epoch bar with the time spent and the time left.

On a terminal (stderr is a TTY, and the log shows INFO) each training stage gets a ``tqdm`` bar:
epochs done out of the most the stage may run, elapsed time, the time left for the stage (at most:
early stopping may end it sooner) and an estimate for the whole run, with the log lines printed
above the bar. Anywhere else (a file, CI, ``-q``, ``CTDISTILL_PROGRESS=plain``) the same facts go
into plain log lines, one every few epochs.

The run's estimate adds up the stages still to come, each at the measured duration of a finished
stage of the same kind (a distilled student at the scratch student's, whose recipe and budget it
shares); before any such stage has finished it says "at least".

Example:
    >>> PROGRESS.plan(["scratch", "teacher-vgg16", "distill-vgg16"])
    >>> PROGRESS.start("scratch"); PROGRESS.position()
    'stage 1/3'
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator

log = logging.getLogger("ctdistill")

# The kind whose measured time stands for a stage not yet run (students share one recipe and budget).
SAME_AS = {"distill": "scratch", "scratch": "distill"}
SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy")  # an epoch line; the CSVs keep every metric


def interactive() -> bool:
    """A bar on the terminal, or plain lines (not a TTY, ``-q``, or ``CTDISTILL_PROGRESS=plain``)."""
    return (os.environ.get("CTDISTILL_PROGRESS", "auto") != "plain" and sys.stderr.isatty()
            and log.isEnabledFor(logging.INFO))


def duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``4000`` -> ``1h07m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class RunProgress:
    """Which stage of the planned ones is running, and how long the finished ones took."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.seconds: dict[str, float] = {}
        self.current: str | None = None

    def plan(self, stages: list[str]) -> None:
        self.stages, self.seconds, self.current = list(stages), {}, None

    def start(self, stage: str) -> None:
        self.current = stage

    def finish(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = seconds
        self.current = None

    def position(self) -> str:
        """``stage k/n`` of the plan (empty outside a planned run)."""
        if self.current not in self.stages:
            return ""
        return f"stage {self.stages.index(self.current) + 1}/{len(self.stages)}"

    def run_left(self, stage_left: float) -> str:
        """The estimate for the rest of the run: this stage's time left plus every later stage's."""
        if self.current not in self.stages:
            return ""
        total, unknown = stage_left, 0
        for stage in self.stages[self.stages.index(self.current) + 1:]:
            estimate = self._estimate(stage)
            total, unknown = (total + estimate, unknown) if estimate is not None else (total, unknown + 1)
        return f"run: {'at least ' if unknown else '~'}{duration(total)} left"

    def _estimate(self, stage: str) -> float | None:
        kind = stage.split("-")[0]
        for wanted in (kind, SAME_AS.get(kind)):
            measured = [s for name, s in self.seconds.items() if name.split("-")[0] == wanted]
            if measured:
                return sum(measured) / len(measured)
        return None


PROGRESS = RunProgress()  # one run per process at a time


class EpochProgress:
    """One training stage's epochs: a bar on a terminal, a log line every few epochs otherwise."""

    def __init__(self, label: str, epochs: int):
        self.label, self.epochs, self.started = label, epochs, time.perf_counter()
        self.every = max(1, epochs // 30)
        self.bar = None
        if interactive():
            from tqdm import tqdm

            # A terminal that reports no size (a bare pseudo-terminal) would hide the bar: COLUMNS x LINES, or 80x24.
            size = shutil.get_terminal_size()
            self.bar = tqdm(total=epochs, desc=f"{PROGRESS.position()} {label}".strip(), unit="epoch",
                            leave=False, ncols=size.columns, nrows=size.lines,
                            bar_format="{desc}: {n_fmt}/{total_fmt} epochs |{bar:10}| {elapsed}, "
                                       "at most {remaining} left{postfix}")

    def epoch(self, epoch: int, seconds: float, logs: dict | None) -> None:
        """Epoch ``epoch`` (0-based) finished in ``seconds``."""
        done = epoch + 1
        spent = time.perf_counter() - self.started
        stage_left = spent / done * (self.epochs - done)
        run = PROGRESS.run_left(stage_left)
        shown = "  ".join(f"{k} {logs[k]:.4f}" for k in SHOWN if logs and k in logs)
        if self.bar is not None:  # the bar keeps to the time; the epoch's numbers: validation accuracy only
            valid = f"val_acc {logs['val_accuracy']:.3f}" if logs and "val_accuracy" in logs else ""
            self.bar.set_postfix_str("; ".join(s for s in (run, valid) if s), refresh=False)
            self.bar.update(1)
            return
        if epoch < 3 or done % self.every == 0 or done == self.epochs:
            where = f"; {PROGRESS.position()}, {run}" if run else ""
            log.info("[%s] epoch %d/%d  %s  (%.1fs; stage at most %s left%s)", self.label, done, self.epochs, shown,
                     seconds, duration(stage_left), where)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FlightBoard:
    """Tasks running side by side (``ray_executor``): tasks done out of all, and the ones in flight with their
    time so far; a bar on a terminal, a log line per start and finish otherwise (each task's epochs
    come as plain lines from its worker)."""

    def __init__(self, total: int):
        self.total, self.done, self.flying = total, 0, {}
        self.bar = None
        if interactive():
            from tqdm import tqdm

            size = shutil.get_terminal_size()  # as EpochProgress: a size-less terminal would hide the bar
            self.bar = tqdm(total=total, desc="tasks", leave=False, ncols=size.columns, nrows=size.lines,
                            bar_format="{desc}: {n_fmt}/{total_fmt} done |{bar:10}| {elapsed}{postfix}")

    def in_flight(self) -> str:
        """``teacher-vgg16 1m02s, scratch 40s`` (or ``none``)."""
        now = time.perf_counter()
        return ", ".join(f"{name} {duration(now - t)}" for name, t in self.flying.items()) or "none"

    def kept(self, count: int) -> None:
        """``count`` tasks need not run (their stage finished earlier)."""
        self._advance(count)

    def start(self, name: str) -> None:
        self.flying[name] = time.perf_counter()
        self._say(f"started {name}")

    def finish(self, name: str, seconds: float, where: str) -> None:
        self.flying.pop(name, None)
        self._advance(1)
        self._say(f"{name} finished in {duration(seconds)} on {where}")

    def failed(self, name: str) -> None:
        self.flying.pop(name, None)
        self._say(f"{name} failed")

    def refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"in flight: {self.in_flight()}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)

    def _say(self, what: str) -> None:
        log.info("[tasks] %s; %d/%d done; in flight: %s", what, self.done, self.total, self.in_flight())
        self.refresh()


@contextlib.contextmanager
def on_terminal() -> Iterator[None]:
    """Print log lines above the bars while a run works (plain logging when not interactive)."""
    if not interactive():
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger()]):
        yield
