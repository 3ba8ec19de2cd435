"""Keep native-library chatter off the user's terminal.

TensorFlow prints its oneDNN banner and LiteRT its "Created TensorFlow Lite XNNPACK delegate" line
straight to file descriptor 2 from C++, before Python logging exists, so neither logging levels nor
``TF_CPP_MIN_LOG_LEVEL`` hide them (stack notes). A temporary redirect of descriptor 2 around the
call that prints them does. Python exceptions still propagate; they are printed after the redirect
ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration of the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded interpreters): nothing to hide
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_backend_quietly() -> None:
    """Import Keras (and with it TensorFlow) without TensorFlow's start-up banner."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import keras  # noqa: F401
