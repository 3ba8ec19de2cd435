"""Keep native-library chatter off the user's terminal.

TensorFlow prints its oneDNN banner and LiteRT its "Created TensorFlow Lite XNNPACK delegate" line
straight to file descriptor 2 from C++, before Python logging exists, so neither logging levels nor
``TF_CPP_MIN_LOG_LEVEL`` hide them (stack notes). A temporary redirect of descriptor 2 around the
call that prints them does. Python exceptions still propagate; they are printed after the redirect
ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

LOG_FORMAT = {"format": "%(asctime)s %(levelname)s %(message)s", "datefmt": "%H:%M:%S"}  # the CLI's lines, Ray's too


@contextlib.contextmanager
def quiet_fd(fd: int) -> Iterator[None]:
    """Send file descriptor ``fd`` to /dev/null for the duration of the block."""
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor (embedded interpreters): nothing to hide
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def quiet_stderr() -> contextlib.AbstractContextManager[None]:
    """Send file descriptor 2 to /dev/null for the duration of the block."""
    return quiet_fd(2)


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Both descriptors: TensorFlow's quantization debugger prints "fully_quantize: ..." on 1 from C++."""
    import sys

    sys.stdout.flush()  # Python's own buffered output must not land in /dev/null
    with quiet_fd(1), quiet_fd(2):
        yield


def import_backend_quietly() -> None:
    """Import Keras (and with it TensorFlow) without TensorFlow's start-up banner."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import keras  # noqa: F401


def quiet_library_logs() -> None:
    """Hide TensorFlow/absl chatter (retracing notices, "Assets written", the legacy-.h5 notice for the
    seed's ``{t}_Student.h5``): not actionable for a user; ``--debug`` shows it."""
    try:
        from absl import logging as absl_logging  # a TensorFlow dependency; absl keeps its own level

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # a JAX-only machine without TensorFlow
        pass
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # pydicom logs a traceback for a file it cannot parse; ctdistill reports that file in one line itself.
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "Unable to initialize backend 'tpu'"
