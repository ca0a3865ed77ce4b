"""User-facing errors: each message is one sentence that says what to do."""


class GoleakError(Exception):
    """Bad input or an unusable environment; the magics show it without a traceback.

    One message serves the Python API and the magics alike, so a parameter is named as a
    Python caller writes it, then the magic's flag in parentheses: ``schedtrace_ms
    (--schedtrace) takes ...``, ``source='pprof' (--source pprof) needs url (--url)``.
    Advice naming a whole command gives the magic (``%golaunch --forget NAME``): the
    ``Session`` methods carry the same names.
    """
