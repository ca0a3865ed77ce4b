"""Who creates the goroutines: ``%dlvtrace`` runs on targets, and the per-site summary.

``start`` attaches Delve to a target (or uses a ``--connect``ed one) and starts a
``delve.tracer.Trace`` whose rows land in the target's live ``creations`` table (or,
with ``func``, in the trace's own ``calls`` table). ``sites`` groups creations by the
``go`` statement that made them: how many, how fast, when, and how many are still alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from . import tables
from .delve import server as dlv
from .delve.tracer import Stacks, Trace
from .errors import GoleakError
from .record import Record
from .settings import Settings

PROGRESS_EVERY_S = 0.5  # how often a blocking wait reports the trace's progress


def wait_with_progress(
    wait: Callable[[float], bool],
    line: Callable[[], str],
    interrupted: Callable[[], None],
    timeout: float | None,
    progress: Callable[[str], None],
) -> bool:
    """A trace's blocking wait (``wait(seconds)`` is True once it ended) that gives
    ``progress`` its ``line()`` every ``PROGRESS_EVERY_S`` and once more at the end.
    An interrupt (Ctrl-C) calls ``interrupted`` instead of leaving it running unwatched.
    False if ``timeout`` seconds pass first."""
    deadline = float("inf") if timeout is None else time.monotonic() + timeout
    try:
        while not wait(min(PROGRESS_EVERY_S, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                return False
            progress(line())
    except KeyboardInterrupt:
        interrupted()
    progress(line())
    return True


class Tracing:
    """A trace of one target, as the session hands it out: the ``Trace`` plus its rows."""

    def __init__(self, target: Record, trace: Trace, log: Any) -> None:
        self.target = target
        self.trace = trace
        self.log = log  # the target's creations RowLog, or this trace's own calls log

    @property
    def running(self) -> bool:
        return self.trace.running

    def wait(
        self, timeout: float | None = None, progress: Callable[[str], None] | None = None
    ) -> bool:
        """True once the trace has ended, False if ``timeout`` seconds pass first.

        With ``progress``, it is given the trace's progress line every
        ``PROGRESS_EVERY_S`` and once more at the end, and an interrupt (Ctrl-C) stops
        the trace instead of leaving it running unwatched; its rows stay.
        """
        if progress is None:
            return self.trace.wait(timeout)
        return wait_with_progress(
            self.trace.wait,
            self.trace.progress,
            lambda: self.stop("interrupted"),
            timeout,
            progress,
        )

    def stop(self, reason: str = "stopped by the user") -> Tracing:
        self.trace.stop(reason)
        return self

    def frame(self) -> pd.DataFrame:
        """This trace's rows (creations, or calls with ``func``)."""
        df = self.log.frame()
        if self.trace.func is None:
            df = df[df["seq"] >= self.trace.seq0].reset_index(drop=True)
        return df

    def sites(self) -> pd.DataFrame:
        """The per-site summary of this trace's creations."""
        if self.trace.func is not None:
            # Errors name a parameter as a Python caller writes it, then the magic's
            # flag (see errors.py).
            raise GoleakError(
                "a trace with func (--func) records calls, not creations; it has no sites."
            )
        return sites(self.frame(), live=live_set(self.target, self.trace), span=self.span())

    def span(self) -> tuple[int, int]:
        t = self.trace
        return t.started_ns, t.ended_ns or pd.Timestamp.now(tz="UTC").value

    def summary(self) -> str:
        return self.trace.summary()

    def __repr__(self) -> str:
        return f"<dlvtrace {self.target.name}: {self.summary()}>"


_lock = threading.Lock()  # one trace starts at a time (target.tracing is checked, then set)


def start(
    target: Record,
    settings: Settings,
    workdir: Path,
    *,
    func: str | None = None,
    stack: int = 8,
    duration: float | None = None,
    max_events: int | None = None,
    server: dlv.DlvServer | None = None,
    on_done: Callable[[Tracing], None] | None = None,
) -> Tracing:
    """Start tracing ``target`` (attach Delve unless ``server`` is given, acquired)."""
    with _lock:
        prev = target.tracing
        if prev is not None and prev.running:
            raise GoleakError(
                f"{target.name} is already being traced ({prev.trace.summary()}); stop it "
                f"with %dlvtrace --stop {target.name} first."
            )
        if server is None:
            server = dlv.for_target(target, workdir=workdir, dlv=settings.dlv, resume=False)
        if target.stacks is None:
            target.stacks = Stacks()
        stacks = target.stacks
        log = tables.RowLog("calls", settings.max_rows) if func else target.tables["creations"]
        holder: list[Tracing] = []

        def done(trace: Trace) -> None:
            if trace.state == "exited" and target.kind == "remote":
                target.state, target.exit_status = "exited", trace.server.exit_status
            if holder and on_done is not None:
                on_done(holder[0])

        try:
            trace = Trace(
                server,
                log.extend,
                stacks=stacks,
                seq0=log.appended,
                depth=stack,
                func=func,
                duration=duration,
                max_events=max_events,
                on_done=done,
            )
            handle = Tracing(target, trace, log)
            holder.append(handle)
            trace.start()  # tracepoints first, then the target runs (server.start)
        except BaseException:
            server.start()  # a server that stays (--connect) must not keep it halted
            server.release()
            raise
        target.tracing = handle
    return handle


def latest(target: Record) -> Tracing | None:
    return target.tracing


Listing = tuple[frozenset[int], int]  # live goroutine ids, and when (ns) they were listed


def trace_listing(trace: Trace | None) -> Listing | None:
    """Delve's listing of the live goroutines as ``trace`` ended (None: no such listing)."""
    goids = None if trace is None else trace.live_goids
    if goids is None or trace.live_at_ns is None:  # type: ignore[union-attr]
        return None
    return goids, trace.live_at_ns  # type: ignore[union-attr]


def newest_listing(listing: Listing | None, last: pd.DataFrame) -> tuple[Listing | None, bool]:
    """The newer of ``listing`` and the last snapshot's rows ``last`` (the snapshot on a
    tie), and whether it is the snapshot."""
    if not len(last):
        return listing, False
    snap_at = int(last["time"].max().value)
    if listing is None or snap_at >= listing[1]:
        return (frozenset(last["goid"].tolist()), snap_at), True
    return listing, False


def live_set(target: Record, trace: Trace | None) -> Listing | None:
    """The newest known set of live goroutine ids, and when it was taken: the trace's
    closing listing or the target's latest snapshot, whichever is newer."""
    df = target.goroutines
    last = df[df["snapshot"] == df["snapshot"].max()] if len(df) else df
    return newest_listing(trace_listing(trace), last)[0]


def sites(
    creations: pd.DataFrame,
    live: tuple[frozenset[int], int] | None = None,
    span: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """One row per creation site, the busiest leaker first.

    ``count`` creations seen there, ``rate_per_s`` over ``span`` (ns since the epoch;
    default: first to last creation), ``first``/``last`` times, ``alive``: how many of
    them are in the ``live`` set of goroutine ids (NA when no listing is known),
    ``stacks``: distinct creator stacks, ``example_stack``: the most common one.
    Sorted by alive, then count (both descending).
    """
    if creations.empty:
        return tables.empty("sites")
    df = creations.copy()
    df["site"] = df["site"].fillna("(unknown site)")
    if span is None:
        t = df["time"].astype("int64")
        span = (int(t.min()), int(t.max()))
    seconds = (span[1] - span[0]) / 1e9
    if live is not None:
        df["_alive"] = df["new_goid"].isin(live[0])
    grouped = df.groupby("site", sort=False)
    out = grouped.agg(
        site_func=("site_func", "first"),
        site_file=("site_file", "first"),
        site_line=("site_line", "first"),
        runtime=("runtime", "first"),
        count=("seq", "size"),
        first=("time", "min"),
        last=("time", "max"),
        stacks=("stack_id", "nunique"),
    )
    top_stack = df.groupby(["site", "stack_id"], sort=False).size().reset_index(name="n")
    top_stack = top_stack.sort_values("n", ascending=False).drop_duplicates("site")
    by_id = df.drop_duplicates("stack_id").set_index("stack_id")["stack"]
    out["example_stack"] = top_stack.set_index("site")["stack_id"].map(by_id)
    out["alive"] = grouped["_alive"].sum() if live is not None else pd.NA
    out["rate_per_s"] = out["count"] / seconds if seconds > 0 else float("nan")
    out = out.reset_index()
    out = out.sort_values(["alive", "count"], ascending=False, na_position="last", kind="stable")
    return tables.conform("sites", out.reset_index(drop=True))
