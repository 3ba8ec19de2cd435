"""``python tests/tiny_cli.py ARGS...``: the ctdistill CLI with the tests' tiny teachers registered.

Subprocess tests (kill and resume) need a run that a real user could start, but with teachers
small enough to train in seconds.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import register_tiny_teachers  # noqa: E402

from ctdistill.cli.main import main  # noqa: E402

if __name__ == "__main__":
    register_tiny_teachers()
    sys.exit(main(sys.argv[1:]))
