"""User-facing errors: each carries a one-line message that names the file or field at fault.

The CLI prints ``error: <message>`` and exits non-zero for these; anything else is a bug and
keeps its traceback (shown with ``--debug``).
"""


class CtdistillError(Exception):
    """Base class for problems the user can fix (bad input, bad configuration)."""

    exit_code = 2


class ConfigError(CtdistillError):
    """A configuration key or value is unknown, of the wrong type or out of range."""


class DataError(CtdistillError):
    """A dataset, image or array cannot be used as given."""


class RunFolderError(CtdistillError):
    """The output folder exists, is not writable, or is not a ctdistill run."""
