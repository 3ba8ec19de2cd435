"""Ctrl-C always stops, with exit 130 and the resume command, even when a library swallows or masks it
(issue #31: a press while a teacher compiled became ``TypeError ... RandomTranslation``; one during
quantization was lost and the run finished with exit 0)."""

import contextlib
import signal

import pytest

from ctdistill.cli import main as cli
from ctdistill.config import Config
from ctdistill.core.interrupt import pressed, stop_if_pressed, watching
from ctdistill.run import pipeline
from ctdistill.run.book import RunInterrupted, Stages


@pytest.fixture(autouse=True)
def pythons_own_handler():
    """Ctrl-C as a command typed at a terminal gets it: a test run started in the background (CI under
    nohup, a job in a non-interactive shell) inherits SIGINT ignored, and then nothing is watched."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def press_and_swallow():
    """Ctrl-C arriving inside a library that catches it (what the lost press during quantization did)."""
    with contextlib.suppress(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def press_and_mask():
    """Ctrl-C turned into the library's own error (what the press during a teacher's trace did)."""
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        raise TypeError("RandomTranslation.call() missing 1 required positional argument") from None


def test_a_swallowed_press_is_remembered_until_the_block_ends():
    with watching():
        press_and_swallow()
        assert pressed()
        with pytest.raises(KeyboardInterrupt):
            stop_if_pressed()
    assert not pressed()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is given back
    stop_if_pressed()  # nothing pending: no exception


def test_a_stage_computed_while_a_press_was_pending_is_not_recorded(tmp_path):
    book = Stages(tmp_path, "key")

    def compute():
        press_and_swallow()
        return None, {"accuracy": 0.9}  # a result that may have been cut short

    with watching(), pytest.raises(KeyboardInterrupt):
        book.run("quantize-tiny", compute)
    assert book.finished("quantize-tiny") is None  # --resume runs it again


def test_the_next_stage_does_not_start_after_a_swallowed_press(tmp_path):
    book, started = Stages(tmp_path, "key"), []
    with watching():
        press_and_swallow()
        with pytest.raises(KeyboardInterrupt):
            book.run("teacher-b", lambda: started.append("teacher-b") or (None, {}))
    assert started == []


def test_a_masked_press_during_a_run_is_an_interruption_with_the_resume_command(tmp_path, monkeypatch, tiny_teacher):
    monkeypatch.setitem(pipeline.EXECUTORS, "local", lambda *args: press_and_mask())
    cfg = Config(teachers=(tiny_teacher,), weights="none", image_size=16, synthetic_per_class=(4, 2, 2), epochs=1)
    with pytest.raises(RunInterrupted) as caught:
        pipeline.run(cfg, tmp_path / "run")
    assert caught.value.exit_code == 130
    assert f"ctdistill run --resume {tmp_path / 'run'}" in str(caught.value)


def test_a_real_error_without_a_press_stays_an_error(tmp_path, monkeypatch, tiny_teacher):
    def broken(*args):
        raise TypeError("a bug")

    monkeypatch.setitem(pipeline.EXECUTORS, "local", broken)
    cfg = Config(teachers=(tiny_teacher,), weights="none", image_size=16, synthetic_per_class=(4, 2, 2), epochs=1)
    with pytest.raises(TypeError, match="a bug"):
        pipeline.run(cfg, tmp_path / "run")


@pytest.mark.parametrize("handler, code, said", [
    (lambda args: press_and_mask(), 130, "interrupted"),
    (lambda args: (_ for _ in ()).throw(TypeError("a bug")), 1, "internal error TypeError"),
])
def test_the_cli_calls_a_masked_press_an_interruption(monkeypatch, capsys, handler, code, said):
    monkeypatch.setitem(cli.COMMANDS, ("doctor", None), handler)
    assert cli.main(["doctor"]) == code
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_a_second_press_stops_the_process_at_once(monkeypatch, capfd):
    """The first press waits for C++ code (a compile) to return; the second does not."""
    from ctdistill.core import interrupt

    def hard_exit(code):
        raise SystemExit(code)  # os._exit, observable

    monkeypatch.setattr(interrupt.os, "_exit", hard_exit)
    with watching(), pytest.raises(SystemExit) as ended:
        press_and_swallow()
        signal.raise_signal(signal.SIGINT)
    assert ended.value.code == 130
    assert "stopping at once" in capfd.readouterr().err
