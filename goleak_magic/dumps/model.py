"""What a goroutine-dump parse yields, whatever the source (dump text or Delve).

A parser produces *columns*: a dict of equal-length arrays named like the
``goroutines`` table (see ``tables.SCHEMAS``), plus ``testing`` (bool: the row is one of
the testing harness's goroutines, ``filters.is_testing``), which is not a table column;
``to_frame`` keeps the table's columns and stamps them with a snapshot number, time and
source. ``Header`` and ``Stack`` are the two halves of one goroutine
as the text parser reads them; both are interned, so a dump of a million goroutines
holds one of each per distinct text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import tables


@dataclass(frozen=True, slots=True)
class Header:
    """The bracketed part of ``goroutine N [...]:`` (everything after the id)."""

    status: str
    """The runtime's status word (``running``, ``runnable``, ``syscall``, ``waiting``,
    ``leaked``, ...); ``waiting`` whenever the header names a wait reason instead."""
    wait_reason: str | None
    """Why a waiting goroutine waits (``chan receive``, ``sync.Mutex.Lock``, ...),
    without the ``(leaked)``/``(scan)``/``(durable)`` marks; None when not waiting."""
    wait_minutes: int | None
    """``N minutes`` blocked (printed from one minute on); None below that."""
    locked: bool
    """``locked to thread``: ``runtime.LockOSThread``, or a cgo callback's goroutine."""
    leaked: bool
    """``(leaked)``: the GC proved it can never wake up (``goroutineleak`` profile)."""
    labels: Mapping[str, str] | None
    """pprof labels (Go 1.26 ``labels:{...}`` inside the brackets, Go 1.27 ``{...}``
    after them); None when the header has none."""
    agent: bool
    """It carries the goleak_magic agent's pprof label."""
    scan: bool = False
    """``(scan)``: the GC was scanning its stack when a crash dump was printed."""
    durable: bool = False
    """``(durable)``: blocked inside a ``testing/synctest`` bubble on something only the
    bubble can wake (the bubble deadlocks when all its goroutines are so)."""
    bubble: int | None = None
    """``synctest bubble N``: the id of the bubble it belongs to."""


@dataclass(frozen=True, slots=True)
class Stack:
    """A goroutine's frames and creator, with call arguments and ids taken out."""

    frames: tuple[str, ...]
    """``func file:line`` innermost first, then the ancestors' frames of
    ``GODEBUG=tracebackancestors``; marker lines (``...N frames elided...``,
    ``[originating from goroutine]:``) as printed. Frames a default traceback hides
    (the runtime's internals, ``gowrap`` wrappers, ``runtime.goexit``), which
    ``GOTRACEBACK=system/crash`` print, are left out (``filters.shown``)."""
    top: str | None
    """The innermost frame (where it is blocked or running)."""
    user_top: str | None
    """The innermost frame outside GOROOT: the program's own code."""
    start_func: str | None
    """The function the goroutine runs (its outermost frame)."""
    created_by: str | None
    """The function holding the ``go`` statement; None for the main goroutine."""
    created_at: str | None
    """``file:line`` of that ``go`` statement."""
    agent: bool
    """It runs, or was started by, the goleak_magic agent's code."""
    system: bool = False
    """One of the runtime's own goroutines (only ``GOTRACEBACK=system/crash`` dumps
    print them): left out, as a default dump leaves them out."""
    testing: bool = False
    """One of the testing harness's goroutines (``filters.is_testing``)."""


def to_frame(
    cols: Mapping[str, Any],
    *,
    snapshot: int,
    time: pd.Timestamp,
    source: str,
) -> pd.DataFrame:
    """Columns from a parser (or the Delve source) as a ``goroutines`` DataFrame."""
    df = pd.DataFrame({k: v for k, v in cols.items() if k in tables.SCHEMAS["goroutines"]})
    df["snapshot"] = snapshot
    df["time"] = time
    df["source"] = source
    return tables.conform("goroutines", df)
