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
    from .magics import GoleakMagics, sub_help

    ipython.register_magics(GoleakMagics(shell=ipython))
    if sub_help not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(sub_help)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import sub_help

    if sub_help in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(sub_help)
    # Targets, debuggers and agents die with the extension, as with the kernel.
    session().stop_all()
