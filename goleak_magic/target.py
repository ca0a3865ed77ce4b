"""A Go program we watch: launched by us (with schedtrace on stderr) or attached by pid.

Reader threads drain stdout and stderr continuously into bounded buffers, so a chatty
program never blocks on a full pipe; stderr goes through the schedtrace parser, and the
lines that are not schedtrace land in the log untouched. When the program exits, its
exit status, last lines and every recorded row stay.
"""

from __future__ import annotations

import html
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import analysis, process, tables
from .build import Built
from .errors import GoleakError
from .schedtrace import Parsed, SchedTraceParser
from .settings import Settings

READ_SIZE = 1 << 16
# The runtime writes schedtrace one field at a time: waking for each write cost ~25% of a
# core at 100k goroutines. After a short read we let output gather in the (1 MiB) pipe.
COALESCE_S = 0.005
# A program's partial line is handed over once stderr has been quiet this long (a
# runtime line waits for its newline: SchedTraceParser.idle).
IDLE_FLUSH_S = 0.1
FIRST_ROW_WAIT_S = 3.0  # launch --detail waits this long at most for the first row
TABLE_KINDS = ("sched", "waits", "creations", "goroutines")


def godebug(base: str, **settings: int | None) -> str:
    """Merge our GODEBUG settings into the user's, ours winning."""
    items: dict[str, str] = {}
    for part in filter(None, base.split(",")):
        k, _, v = part.partition("=")
        items[k] = v
    items.update({k: str(v) for k, v in settings.items() if v is not None})
    return ",".join(f"{k}={v}" for k, v in items.items())


class Target:
    """One named program and everything recorded about it.

    ``sched``, ``waits``, ``creations``, ``goroutines`` and ``suspects`` are DataFrames
    (a fresh copy on each access; empty with the right columns until filled).
    """

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self.pid: int | None = None
        self.state = "new"
        self.exit_status: int | None = None
        self.built: Built | None = None
        self.argv: list[str] = []
        self.env: dict[str, str] = {}
        self.godebug = ""
        self.detail = False
        self.attached = False
        self.started_at: pd.Timestamp | None = None
        self.ended_at: pd.Timestamp | None = None
        self.meta: dict[str, Any] = {}
        # Snapshots arrive as whole DataFrames (see goleak_magic.snapshot), the rest as rows.
        self.tables: dict[str, tables.RowLog | tables.FrameLog] = {
            k: (tables.FrameLog if k == "goroutines" else tables.RowLog)(k, settings.max_rows)
            for k in TABLE_KINDS
        }
        # (goroutine rows appended when ranked, the ranking): stale once a snapshot is added
        self._suspects: tuple[int, pd.DataFrame] = (0, tables.empty("suspects"))
        self.malformed_lines = 0
        # One bounded buffer per stream, so a flood on one never evicts the other's tail.
        self._log: dict[str, deque[tuple[float, str]]] = {}
        self._log_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._first_sched = threading.Event()  # the first SCHED line has arrived
        self._first_row = threading.Event()  # ...and a row is complete (detail: next tick)
        self._exited = threading.Event()
        self._t0_ns: int | None = None
        self._start_ns = 0
        self._closers: list[Callable[[], None]] = []
        self.parser: SchedTraceParser | None = None

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
    def suspects(self) -> pd.DataFrame:
        """Leak suspects ranked from the snapshots (``goleak_magic.analysis``)."""
        n = self.tables["goroutines"].appended  # read first: a snapshot added meanwhile re-ranks
        if self._suspects[0] != n:
            self._suspects = (n, analysis.suspects(self.goroutines))
        return self._suspects[1].copy()

    def keep_suspects(self, df: pd.DataFrame) -> None:
        """Use ``df`` as the ranking of the snapshots held now (a recording's, as saved)."""
        self._suspects = (self.tables["goroutines"].appended, df)

    # ---- launch ---------------------------------------------------------------------
    def launch(
        self,
        built: Built,
        args: Sequence[str] = (),
        *,
        schedtrace_ms: int,
        detail: bool = False,
        ancestors: int | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.built = built
        self.detail = detail
        self.env = dict(env or {})
        full_env = {**os.environ, **self.env}
        self.godebug = godebug(
            full_env.get("GODEBUG", ""),
            schedtrace=schedtrace_ms,
            scheddetail=1 if detail else None,
            tracebackancestors=ancestors,
        )
        full_env["GODEBUG"] = self.godebug
        self.argv = [str(built.binary), *args]
        self.meta.update(go_version=built.go_version, kind=built.kind, spec=built.spec)
        self._start_ns = time.time_ns()
        self.started_at = pd.Timestamp(self._start_ns, tz="UTC")
        try:
            proc = process.spawn(self.argv, cwd=cwd, env=full_env)
        except OSError as e:
            self.state = "failed"
            raise GoleakError(
                f"could not start {built.binary}: {e.strerror}; check the path."
            ) from e
        self._proc = proc
        self.pid = proc.pid
        self.state = "running"
        assert proc.stdout is not None and proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, name=f"goleak-out-{self.name}", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"goleak-err-{self.name}", daemon=True),
        ]
        for t in self._threads:
            t.start()
        threading.Thread(target=self._reap, name=f"goleak-reap-{self.name}", daemon=True).start()
        self._await_start(schedtrace_ms / 1000)

    def _await_start(self, interval_s: float) -> None:
        """Return once the runtime prints its first SCHED line (with --detail, once its row
        is complete); fail if the program dies."""
        deadline = time.monotonic() + self.settings.startup_timeout
        while not self._first_sched.is_set() and not self._exited.is_set():
            if time.monotonic() > deadline:
                self.stop()
                raise GoleakError(
                    f"{self.name} printed no schedtrace within "
                    f"{self.settings.startup_timeout:.0f}s (it may ignore or override GODEBUG); "
                    "it was stopped — check its output with "
                    f"%golaunch --logs {self.name}."
                )
            self._first_sched.wait(0.05)
        if self.detail:
            # A detail tick's row is complete when the next tick starts: the first look at
            # the table (or a sched snapshot) should find one, unless ticks are rare.
            self._first_row.wait(min(interval_s + 1.0, FIRST_ROW_WAIT_S))
        # A program that fails on its flags or in init exits right after its first tick.
        self._exited.wait(self.settings.startup_grace)
        if self._exited.is_set():
            # Go prints the cause first (flag error, panic message), details after.
            lines = [ln.strip() for ln in self.log_lines(200, stream="stderr") if ln.strip()]
            said = " | ".join(lines[:3]) + (" | …" if len(lines) > 3 else "")
            raise GoleakError(
                f"{self.name} exited at once with {process.describe_status(self.exit_status)}; "
                f"stderr: {said or '(nothing)'} — check the program and its arguments (after --)."
            )

    # ---- attach ---------------------------------------------------------------------
    def attach(self, pid: int, go_version: str | None, exe: str) -> None:
        """Watch a process we did not start (no schedtrace: its stderr is not ours)."""
        self.pid = pid
        self.attached = True
        self.state = "attached"
        self._start_ns = time.time_ns()
        self.started_at = pd.Timestamp(self._start_ns, tz="UTC")
        self.argv = [exe]
        self.meta.update(go_version=go_version, kind="attached", spec=f"pid {pid}")
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError as e:
            raise GoleakError(f"process {pid} is gone; check the pid and try again.") from e

        def watch() -> None:
            select.select([fd], [], [])
            os.close(fd)
            self.state = "gone"
            self.ended_at = pd.Timestamp.now(tz="UTC")
            self._exited.set()

        threading.Thread(target=watch, name=f"goleak-watch-{self.name}", daemon=True).start()

    # ---- readers --------------------------------------------------------------------
    def _append_log(self, stream: str, lines: list[str]) -> None:
        now = time.time()
        with self._log_lock:
            buf = self._log.get(stream)
            if buf is None:
                buf = self._log[stream] = deque(maxlen=self.settings.log_lines)
            buf.extend((now, ln) for ln in lines)

    def _pump(
        self, fd: int, on_data: Callable[[bytes], None], idle: Callable[[], float | None]
    ) -> None:
        """Read ``fd`` to EOF; ``idle()`` says how long a quiet spell may last before
        ``on_data(b"")`` is called (None: wait for data indefinitely)."""
        while True:
            ready, _, _ = select.select([fd], [], [], idle())
            if not ready:
                on_data(b"")
                continue
            chunk = os.read(fd, READ_SIZE)
            if not chunk:
                return
            on_data(chunk)
            if len(chunk) < READ_SIZE:
                time.sleep(COALESCE_S)

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        tail = b""

        def on_data(chunk: bytes) -> None:
            nonlocal tail
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if cut:
                self._append_log("stdout", data[:cut].decode("utf-8", "replace").split("\n")[:-1])

        self._pump(self._proc.stdout.fileno(), on_data, lambda: None)
        if tail:
            self._append_log("stdout", [tail.decode("utf-8", "replace")])

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        parser = SchedTraceParser()
        self.parser = parser

        def idle() -> float | None:
            return IDLE_FLUSH_S if parser.partial_line else None

        def on_data(chunk: bytes) -> None:
            self._record(parser, parser.feed(chunk) if chunk else parser.idle())

        self._pump(self._proc.stderr.fileno(), on_data, idle)
        self._record(parser, parser.flush())

    def _record(self, parser: SchedTraceParser, parsed: Parsed) -> None:
        if parsed.other:
            self._append_log("stderr", parsed.other)
        self.malformed_lines += parsed.malformed
        if self._t0_ns is None:
            # Nms counts from the first schedtrace call, which sysmon makes right after
            # the runtime starts: anchor it to the arrival of the newest SCHED line (a
            # detail tick's row comes an interval later), never before we started it.
            last = parser.open_t_ms
            if last is None and parsed.sched:
                last = parsed.sched[-1]["t_ms"]
            if last is None:
                return
            self._t0_ns = max(self._start_ns, time.time_ns() - last * 1_000_000)
            self._first_sched.set()
        if not parsed.sched:
            return
        self._first_row.set()
        t0 = self._t0_ns
        for row in parsed.sched:
            row["time"] = t0 + row["t_ms"] * 1_000_000
        for row in parsed.waits:
            row["time"] = t0 + row["t_ms"] * 1_000_000
        self.tables["sched"].extend(parsed.sched)
        if parsed.waits:
            self.tables["waits"].extend(parsed.waits)

    def _reap(self) -> None:
        assert self._proc is not None
        status = self._proc.wait()
        for t in self._threads:
            t.join()  # the readers end at EOF: every last line is in
        self.exit_status = status
        self.ended_at = pd.Timestamp.now(tz="UTC")
        if self.state == "running":
            self.state = "exited"
        self._exited.set()

    # ---- control --------------------------------------------------------------------
    def add_closer(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` before the target is stopped (e.g. detach a debugger)."""
        self._closers.append(fn)

    def _run_closers(self) -> None:
        while self._closers:
            fn = self._closers.pop()
            try:
                fn()
            except Exception as e:  # a failing detach must not keep the target alive
                self._append_log("goleak", [f"cleanup failed: {e}"])

    @property
    def alive(self) -> bool:
        return not self._exited.is_set()

    def stop(self, kill: bool = False) -> None:
        """Stop a launched program (SIGTERM, then SIGKILL); stop watching an attached one.

        With ``kill=True`` the process is SIGKILLed, attached or not.
        """
        self._run_closers()
        if self.attached:
            if kill and self.alive and self.pid is not None:
                try:
                    os.kill(self.pid, 9)
                except ProcessLookupError:
                    pass
            self.state = "detached" if self.alive else self.state
            return
        if self._proc is None:
            return
        if self.alive:
            self.state = "killed" if kill else "stopped"
        if kill:
            process.kill(self._proc)
        else:
            process.terminate(self._proc, self.settings.stop_timeout)
        self._exited.wait(self.settings.stop_timeout + 5)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the program has exited (and its output is drained)."""
        return self._exited.wait(timeout)

    # ---- views ----------------------------------------------------------------------
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

    def restore(self, log: Iterable[tuple[float, str, str]]) -> None:
        """Make this a loaded recording: no process behind it, its saved lines back."""
        self.pid = None  # nothing may signal or debug a recording's long-gone pid
        self.state = "recorded"
        with self._log_lock:
            for t, stream, line in log:
                buf = self._log.setdefault(stream, deque(maxlen=self.settings.log_lines))
                buf.append((t, line))
        self._exited.set()  # alive is False; wait() returns at once

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
