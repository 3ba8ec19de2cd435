"""Ctrl-C that always stops: remember the press, so a library that swallows or masks it cannot win.

Python turns Ctrl-C (SIGINT) into ``KeyboardInterrupt`` wherever the main thread happens to be.
Inside a library that is not always what arrives: a press while TensorFlow traces a teacher's
training step surfaced as ``TypeError ... RandomTranslation`` (the interrupt broke the trace and
the cleanup failed on the half-built layer), and once a press during quantization was lost and the
run finished with exit 0 (issue #31). :func:`watching` wraps the handler so the press is recorded
before the exception is raised; :func:`stop_if_pressed` then stops at the next stage boundary
(``run.book.Stages.run`` calls it before and after each stage, and never records a stage computed
while a press was pending), and the run and the CLI read :func:`pressed` to call a masked exception
what it was: an interruption (exit 130). A second press stops the process at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_PRESSED = threading.Event()
# A compile or a conversion runs in C++ and sees the first press only when it returns (21 s once, in
# bench/interrupt_probe.py); a second press does not wait: finished stages are on disk already.
SECOND_PRESS = "\ninterrupted again: stopping at once (finished stages are kept; resume as said)\n"


def pressed() -> bool:
    """True when Ctrl-C was pressed inside :func:`watching` (and not yet cleared)."""
    return _PRESSED.is_set()


def stop_if_pressed() -> None:
    """Raise ``KeyboardInterrupt`` when a press was recorded, even if a library swallowed it."""
    if _PRESSED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """Record every Ctrl-C in this block, then raise as Python would (the previous handler runs); a
    second press while the first is pending ends the process at once (exit 130).

    Only the main thread can install a signal handler; elsewhere (a Ray worker's thread, a notebook's
    executor), or where Ctrl-C is ignored or left to the system (``SIG_IGN``, ``SIG_DFL``), the block
    runs unwatched. Nested blocks share the record; the outermost one clears it on leaving.

    Example:
        >>> _ = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal (not SIG_IGN)
        >>> with watching():
        ...     try:
        ...         signal.raise_signal(signal.SIGINT)
        ...     except KeyboardInterrupt:
        ...         pass  # a library that swallows it
        ...     pressed()
        True
        >>> pressed()
        False
    """
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not callable(previous) or getattr(previous, "ctdistill_watch", False):  # unwatchable, or nested
        yield
        return

    def record(signum, frame):
        if _PRESSED.is_set():  # pressed again: the first is stuck in C++ (a compile, a conversion)
            os.write(2, SECOND_PRESS.encode())
            os._exit(130)
        _PRESSED.set()
        previous(signum, frame)

    record.ctdistill_watch = True
    signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _PRESSED.clear()
