"""A Go program we watch: launched by us (with schedtrace on stderr) or attached by pid.

:class:`Target` is the watcher (launch, attach, reader threads, reap, stop) over a
:class:`~goleak_magic.record.Record`, which holds what is recorded and lists every field.

Reader threads drain stdout and stderr continuously into bounded buffers, so a chatty
program never blocks on a full pipe; stderr goes through the schedtrace parser, and the
lines that are not schedtrace land in the log untouched. When the program exits, its
exit status, last lines and every recorded row stay.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import process, snapshot
from .agent import testmain
from .analysis import TEST_END
from .build import Built
from .dumps.spool import DumpSpool
from .dumps.text import parse_dump
from .errors import GoleakError
from .record import TABLE_KINDS, Record
from .schedtrace import Parsed, SchedTraceParser

__all__ = ["TABLE_KINDS", "Target", "godebug"]

READ_SIZE = 1 << 16
# The runtime writes schedtrace one field at a time: waking for each write cost ~25% of a
# core at 100k goroutines. After a short read we let output gather in the (1 MiB) pipe.
COALESCE_S = 0.005
# A program's partial line is handed over once stderr has been quiet this long (a
# runtime line waits for its newline: SchedTraceParser.idle).
IDLE_FLUSH_S = 0.1
FIRST_ROW_WAIT_S = 3.0  # launch --detail waits this long at most for the first row
DUMP_WAIT_S = 10.0  # stop(dump=True): how long a dump of many goroutines may take to print


def godebug(base: str, **settings: int | None) -> str:
    """Merge our GODEBUG settings into the user's, ours winning."""
    items: dict[str, str] = {}
    for part in filter(None, base.split(",")):
        k, _, v = part.partition("=")
        items[k] = v
    items.update({k: str(v) for k, v in settings.items() if v is not None})
    return ",".join(f"{k}={v}" for k, v in items.items())


@dataclass(eq=False, repr=False)
class Target(Record):
    """A :class:`Record` with a live program behind it: launched by us (schedtrace on its
    stderr), attached by pid, or behind a --connect'ed dlv (``state`` "remote", no process
    of ours: Delve, a closer, detaches it)."""

    state: str = "new"  # until launch, attach or connect says otherwise
    parser: SchedTraceParser | None = field(default=None, init=False)  # its stderr's parser
    # ---- the watcher's own (never saved) ----
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)  # launched by us
    _threads: list[threading.Thread] = field(default_factory=list, init=False)  # the readers
    # the first SCHED line has arrived; ...and a row is complete (detail: next tick)
    _first_sched: threading.Event = field(default_factory=threading.Event, init=False)
    _first_row: threading.Event = field(default_factory=threading.Event, init=False)
    _exited: threading.Event = field(default_factory=threading.Event, init=False)  # drained too
    _t0_ns: int | None = field(default=None, init=False)  # wall time of schedtrace's 0 ms
    _start_ns: int = field(default=0, init=False)  # when we started it (no earlier t0)
    _closers: list[Callable[[], None]] = field(default_factory=list, init=False)  # run at stop
    _spool: DumpSpool | None = field(default=None, init=False)  # a dying program's dump
    _final: Path | None = field(default=None, init=False)  # where TestMain writes its snapshot

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
        dump_spool: Path | None = None,
        final_snapshot: Path | None = None,
    ) -> None:
        """Start ``built``; with ``dump_spool`` (a file path) a goroutine dump printed on
        stderr as the program dies becomes its last snapshot (source ``exit``); with
        ``final_snapshot`` (a test binary's), so does what the injected TestMain writes
        there once the tests returned (source ``final``)."""
        self.built = built
        self._spool = DumpSpool(dump_spool) if dump_spool is not None else None
        self._final = final_snapshot
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
        if final_snapshot is not None:
            final_snapshot.unlink(missing_ok=True)  # a forgotten namesake's
            full_env[testmain.FINAL_ENV] = str(final_snapshot)
        self.argv = [str(built.binary), *args]
        self.go_version, self.kind, self.spec = built.go_version, built.kind, built.spec
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
        # A test binary may well be done by then: its exit is an outcome, kept with its
        # final snapshot (goleak_magic.testmain) or exit dump.
        self._exited.wait(self.settings.startup_grace)
        if self._exited.is_set() and self.kind != "test":
            # Go prints the cause first (flag error, panic message), details after.
            lines = [ln.strip() for ln in self.log_lines(200, stream="stderr") if ln.strip()]
            said = " | ".join(lines[:3]) + (" | …" if len(lines) > 3 else "")
            kept = f"; its goroutine dump is kept (%goleak report {self.name})" if self.ends else ""
            raise GoleakError(
                f"{self.name} exited at once with {process.describe_status(self.exit_status)}; "
                f"stderr: {said or '(nothing)'}{kept} — check the program and its arguments "
                "(after --)."
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
        self.go_version, self.kind, self.spec = go_version, "attached", f"pid {pid}"
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
                lines = data[:cut].decode("utf-8", "replace").split("\n")[:-1]
                self._append_log("stdout", lines, time.time())

        self._pump(self._proc.stdout.fileno(), on_data, lambda: None)
        if tail:
            self._append_log("stdout", [tail.decode("utf-8", "replace")], time.time())

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        parser = SchedTraceParser()
        self.parser = parser

        def idle() -> float | None:
            return IDLE_FLUSH_S if parser.partial_line else None

        def on_data(chunk: bytes) -> None:
            self._record(parser, parser.feed(chunk) if chunk else parser.idle())

        self._pump(self._proc.stderr.fileno(), on_data, idle)
        self._record(parser, parser.end())

    def _record(self, parser: SchedTraceParser, parsed: Parsed) -> None:
        if parsed.other:
            self._append_log("stderr", parsed.other, time.time())
            if self._spool is not None:
                self._spool.feed(parsed.other)
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
        try:
            self._end_snapshots()
        finally:
            self._exited.set()  # waiters find the end snapshots in place

    def _end_snapshots(self) -> None:
        """What the tests left behind (the TestMain's final snapshot) and the goroutine
        dump(s) the program printed as it died, as its last snapshots."""
        assert self.ended_at is not None
        final = testmain.read_final(self._final) if self._final is not None else None
        if final is not None:
            cols, parser = parse_dump(final.dump)
            when = pd.Timestamp(int(final.info["time_ns"]), unit="ns", tz="UTC")
            leak = final.info.get("profile") == "goroutineleak"
            snapshot.add(self, cols, source="final", when=when, end=TEST_END, leak=leak,
                         malformed=parser.malformed,
                         notes=["the tests had returned; what is left is theirs"])  # fmt: skip
        for d in self._spool.close() if self._spool is not None else []:
            snapshot.add_dump(self, d, source="exit", when=self.ended_at)

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
                self._append_log("goleak", [f"cleanup failed: {e}"], time.time())

    @property
    def alive(self) -> bool:
        return not self._exited.is_set()

    def stop(self, kill: bool = False, dump: bool = False) -> None:
        """Stop a launched program (SIGTERM, then SIGKILL); stop watching an attached one.

        With ``kill=True`` the process is SIGKILLed, attached or not. With ``dump=True``
        a program of ours gets SIGQUIT first: the Go runtime prints every goroutine and
        exits, and that dump becomes its last snapshot (source ``exit``, end
        ``sigquit``); a program that catches SIGQUIT is then stopped as usual.
        """
        self._run_closers()
        if dump and self._proc is not None and self.alive:
            if self._spool is None:
                raise GoleakError(
                    f"{self.name} was started without a dump spool; stop it without dump "
                    "(--dump) and take a snapshot first."
                )
            self.state = "stopped"
            process.signal_group(self._proc, signal.SIGQUIT)
            if self._exited.wait(self.settings.stop_timeout + DUMP_WAIT_S):
                return
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
