"""How every table writes a stack frame: ``func file:line``.

Standard library only: the delve package formats its frames here too, and it runs
without pandas or numpy (e.g. under a non-root user's bare Python)."""


def frame_text(func: str, loc: str) -> str:
    """One frame as ``func file:line`` (the form every table uses)."""
    return f"{func} {loc}"
