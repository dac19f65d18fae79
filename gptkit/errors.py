"""The one exception type users see: a problem with their input, and how to fix it."""


class GptkitError(Exception):
    """A user-facing error. The CLI prints its message on one line, without a traceback."""
