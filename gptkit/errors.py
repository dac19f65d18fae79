"""The one exception type users see: a problem with their input, and how to fix it."""


class GptkitError(Exception):
    """A user-facing error. The CLI prints its message on one line, without a traceback."""


class RankError(GptkitError):
    """An error one process of a torchrun job met on its own (its share of the data, its GPU), which
    that process reports. Errors every process meets alike (a bad flag) are reported by rank 0 alone."""
