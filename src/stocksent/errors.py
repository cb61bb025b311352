"""The one exception type a user sees: a readable, single-line reason."""


class StocksentError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits non-zero."""
