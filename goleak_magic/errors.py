"""User-facing errors: each message is one sentence that says what to do."""


class GoleakError(Exception):
    """Bad input or an unusable environment; the magics show it without a traceback."""
