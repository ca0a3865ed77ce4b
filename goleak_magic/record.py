"""What is recorded about a target: its tables, snapshots, log lines and where it came from.

A :class:`Record` has no process behind it: it is what ``Session.load`` gives back for a
saved recording (state ``"recorded"``), and the base of
:class:`~goleak_magic.target.Target`, which adds the watcher of a live process. Every
view (tables, suspects, timeline, report, save) reads only what is listed here.
"""

from __future__ import annotations

import html
import sys
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import analysis, process, tables
from .build import Built
from .settings import Settings

if TYPE_CHECKING:
    from .creations import Tracing
    from .delve.server import DlvServer
    from .delve.tracer import Stacks
    from .gotrace import GoTrace, MetricsPoller

TABLE_KINDS = ("sched", "waits", "creations", "goroutines", "transitions", "metrics")
# Tables that grow by whole DataFrames (a snapshot, a converted trace), not row dicts.
FRAME_KINDS = ("goroutines", "transitions")


@dataclass(frozen=True)
class Recorded:
    """Where a loaded recording came from (its manifest, as saved)."""

    path: str  # the file it was loaded from
    saved_at: str | None  # ISO time of the save
    state: str | None  # the target's state when it was saved
    pid: int | None  # the pid it had then (long gone: nothing signals it)
    delve_version: str | None  # the Delve that recorded its creations, if any
    binary_sha256: str | None  # the program's binary, when it could be read
    goleak_magic: str | None  # the package version that wrote the file
    version: int  # the file format's version (store.VERSION)


@dataclass(eq=False, repr=False)
class Record:
    """One named target and everything recorded about it, with no process behind it.

    ``sched``, ``waits``, ``creations``, ``goroutines``, ``transitions``, ``metrics``
    and ``suspects`` are DataFrames (a fresh copy on each access; empty with the right
    columns until filled).
    """

    name: str  # the session's name for it: session().targets[name]
    settings: Settings  # the limits it records under (rows kept, log lines kept)
    # ---- where it came from (saved in the recording's manifest) ----
    state: str = "recorded"  # new, running, attached, remote, exited, stopped, killed, gone...
    pid: int | None = None  # the process we watch; None for a recording
    exit_status: int | None = None  # as os.waitpid reports it, once it has exited
    kind: str | None = None  # how it was started: a Built.kind, "attached" or "remote"
    spec: str | None = None  # what was asked for: the build spec, "pid N" or a dlv address
    go_version: str | None = None  # the Go toolchain of its binary
    built: Built | None = None  # the binary we built or found for it (launched targets)
    argv: list[str] = field(default_factory=list)  # its command line
    env: dict[str, str] = field(default_factory=dict)  # extra environment given at launch
    godebug: str = ""  # the GODEBUG it ran with
    detail: bool = False  # launched with scheddetail=1
    attached: bool = False  # attached by pid rather than started by us
    remote_pid: int | None = None  # the pid behind a --connect'ed dlv (not ours to signal)
    started_at: pd.Timestamp | None = None  # when we started or attached it
    ended_at: pd.Timestamp | None = None  # when it ended (or, for a recording, was saved)
    malformed_lines: int = 0  # schedtrace lines the parser could not read
    recorded: Recorded | None = None  # where a loaded recording came from
    # ---- snapshots (goleak_magic.snapshot) ----
    snapshots: list[dict[str, Any]] = field(default_factory=list)  # Snapshot.record() of each
    agent_socket: str | None = None  # the agent's unix socket, when built with the agent
    pprof_url: str | None = None  # its net/http/pprof base URL, once one was given
    said_no_leak: bool = False  # the "no leak profile" note was shown once already
    wait_reasons: list[str] | None = None  # its runtime's wait reason names (Delve source)
    # ---- handles of the tools working on it (never saved; none on a recording) ----
    dlv: DlvServer | None = None  # the attached Delve (goleak_magic.delve.server)
    tracing: Tracing | None = None  # the newest %dlvtrace of it (goleak_magic.creations)
    stacks: Stacks | None = None  # stack texts interned across its traces (both sources)
    gotrace: GoTrace | None = None  # the newest %gotrace of it (goleak_magic.gotrace)
    metrics_poll: MetricsPoller | None = None  # its runtime/metrics poller, while one runs
    snapshot_lock: threading.Lock = field(default_factory=threading.Lock)  # one snapshot at once
    # ---- the recorded rows ----
    # Snapshots and traces' transitions arrive as whole DataFrames (FRAME_KINDS); the
    # rest as rows, and a trace's creations as a DataFrame chunk (RowLog.add).
    tables: dict[str, tables.RowLog | tables.FrameLog] = field(init=False)
    # (rows appended to goroutines and transitions when ranked, the ranking): stale once
    # a snapshot or a trace is added
    _suspects: tuple[tuple[int, int], pd.DataFrame] = field(init=False)
    # One bounded buffer per stream, so a flood on one never evicts the other's tail.
    _log: dict[str, deque[tuple[float, str]]] = field(init=False, default_factory=dict)
    _log_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tables = {
            k: (tables.FrameLog if k in FRAME_KINDS else tables.RowLog)(k, self.settings.max_rows)
            for k in TABLE_KINDS
        }
        self._suspects = ((0, 0), tables.empty("suspects"))

    # ---- tables ---------------------------------------------------------------------
    @property
    def sched(self) -> pd.DataFrame:
        return self.tables["sched"].frame()

    @property
    def waits(self) -> pd.DataFrame:
        return self.tables["waits"].frame()

    @property
    def creations(self) -> pd.DataFrame:
        return self.tables["creations"].frame()

    @property
    def goroutines(self) -> pd.DataFrame:
        return self.tables["goroutines"].frame()

    @property
    def transitions(self) -> pd.DataFrame:
        # chunks of different traces have different categories: one set again
        return tables.conform("transitions", self.tables["transitions"].frame())

    @property
    def metrics(self) -> pd.DataFrame:
        return self.tables["metrics"].frame()

    def _ranked(self) -> tuple[int, int]:
        return self.tables["goroutines"].appended, self.tables["transitions"].appended

    @property
    def suspects(self) -> pd.DataFrame:
        """Leak suspects ranked from the snapshots, with an execution trace's evidence
        where there is one (``goleak_magic.analysis``)."""
        n = self._ranked()  # read first: a snapshot added meanwhile re-ranks
        if self._suspects[0] != n:
            ranked = analysis.suspects(self.goroutines, ends=self.ends)
            if n[1]:
                ranked = analysis.with_trace(ranked, self.creations, self.transitions)
            self._suspects = (n, ranked)
        return self._suspects[1].copy()

    @property
    def ends(self) -> dict[int, str]:
        """Snapshots taken at the program's end, by number: how (``analysis.END_KINDS``)."""
        return {int(x["id"]): x["end"] for x in self.snapshots if x.get("end")}

    @property
    def stuck(self) -> pd.DataFrame:
        """The goroutines of a deadlock or hang in the last snapshot (``analysis.stuck``)."""
        return analysis.stuck(self.goroutines, self.ends)

    @property
    def blocked_at_end(self) -> pd.DataFrame:
        """Where its own goroutines blocked as it ended (``analysis.blocked_at_end``)."""
        return analysis.blocked_at_end(self.goroutines, self.ends)

    def keep_suspects(self, df: pd.DataFrame) -> None:
        """Use ``df`` as the ranking of the snapshots held now (a recording's, as saved)."""
        self._suspects = (self._ranked(), df)

    # ---- process (a recording has none) ----------------------------------------------
    @property
    def alive(self) -> bool:
        return False

    def stop(self, kill: bool = False, dump: bool = False) -> None:
        """A recording has nothing to stop."""

    def wait(self, timeout: float | None = None) -> bool:
        """A recording has ended already."""
        return True

    # ---- log ------------------------------------------------------------------------
    def _append_log(self, stream: str, lines: Iterable[str], now: float) -> None:
        with self._log_lock:
            buf = self._log.get(stream)
            if buf is None:
                buf = self._log[stream] = deque(maxlen=self.settings.log_lines)
            buf.extend((now, ln) for ln in lines)

    def _log_items(self, n: int, stream: str | None) -> list[tuple[float, str, str]]:
        with self._log_lock:
            items = [
                (t, s, ln)
                for s, buf in self._log.items()
                if stream in (None, s)
                for t, ln in list(buf)[-n:]
            ]
        items.sort(key=lambda it: it[0])  # stable: each stream keeps its own order
        return items[-n:]

    def log_lines(self, n: int = 50, stream: str | None = None) -> list[str]:
        """The last ``n`` lines of ``stream`` ("stdout", "stderr"; None: all)."""
        return [ln for _, _, ln in self._log_items(n, stream)]

    def logs(self, n: int = 50) -> str:
        return "\n".join(f"{s}: {ln}" for _, s, ln in self._log_items(n, None))

    # ---- recordings (store.py) ------------------------------------------------------
    def log_records(self) -> list[tuple[float, str, str]]:
        """Every kept line as (unix time, stream, line), oldest first."""
        return self._log_items(sys.maxsize, None)

    def restore_log(self, log: Iterable[tuple[float, str, str]]) -> None:
        """Put a recording's saved lines back, each with its time."""
        for t, stream, line in log:
            self._append_log(stream, (line,), t)

    # ---- views ----------------------------------------------------------------------
    @property
    def uptime(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at or pd.Timestamp.now(tz="UTC")
        return (end - self.started_at).total_seconds()

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "uptime_s": round(self.uptime, 1),
            "exit_status": process.describe_status(self.exit_status)
            if self.exit_status is not None
            else "",
            **{f"{k}_rows": len(v) for k, v in self.tables.items()},
        }

    def __repr__(self) -> str:
        s = self.summary()
        rows = ", ".join(f"{k}={len(v)}" for k, v in self.tables.items() if len(v))
        status = f" ({s['exit_status']})" if s["exit_status"] else ""
        return (
            f"<Target {self.name} pid={self.pid} {self.state}{status}, "
            f"up {s['uptime_s']}s{', ' + rows if rows else ''}>"
        )

    def _repr_html_(self) -> str:
        """What a notebook shows for ``%golaunch``'s result: status and the latest tick."""
        s = self.summary()
        head = html.escape(repr(self))
        sched = self.tables["sched"]
        if not len(sched):
            return f"<code>{head}</code>"
        cols = [c for c in tables.SCHEMAS["sched"] if c != "runq_per_p"]
        tail = self.sched.tail(3)[cols].dropna(axis=1, how="all")
        note = f"last ticks of {s['sched_rows']} (t.sched grows while it runs)"
        return f"<code>{head}</code><br><small>{note}</small>{tail.to_html(index=False)}"

    @property
    def binary(self) -> Path | None:
        return self.built.binary if self.built else None
