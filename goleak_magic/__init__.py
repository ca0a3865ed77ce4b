"""goleak_magic: hunt goroutine leaks in Go programs from a Jupyter notebook.

``%load_ext goleak_magic`` registers ``%golaunch`` (and the other magics); the same
work is available without IPython through :func:`session`.
"""

from __future__ import annotations

from typing import Any

from .errors import GoleakError
from .session import Session, session
from .settings import Settings
from .target import Target

__all__ = ["GoleakError", "Session", "Settings", "Target", "session"]
__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    from .magics import GoleakMagics, sub_help_lines

    ipython.register_magics(GoleakMagics(shell=ipython))
    cleanup = ipython.input_transformers_cleanup
    if sub_help_lines not in cleanup:
        cleanup.append(sub_help_lines)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import sub_help_lines

    if sub_help_lines in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(sub_help_lines)
    # Targets, debuggers and agents die with the extension, as with the kernel.
    session().stop_all()
