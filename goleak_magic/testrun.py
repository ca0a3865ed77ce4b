"""``%goleak tests``: goleak for a whole test package, one process per test.

``run_tests`` builds the package's test binary once (with the agent and the injected
TestMain, see ``goleak_magic.agent.testmain``), lists its tests (``-test.list``), and runs
each in its own process (``-test.run ^Name$``, with ``-test.count``, ``-test.cpu``,
``-test.timeout``), up to one process per core. Every process writes its final snapshot
(after m.Run, goroutines settled) to a private file; a test that hangs past the timeout
or crashes the binary leaves its stderr, whose goroutine dump is its exit snapshot.

One ``TestResult`` per test: its row of the ``tests`` table (see ``tables``), the
snapshot's goroutines (``goroutines`` schema, source ``final`` or ``exit``), the output.

outcome   pass: m.Run returned 0; fail: it returned non-zero (a test failed);
          hung: the binary panicked with "test timed out" (or outlived the timeout by
          KILL_GRACE seconds and was killed with SIGQUIT); crashed: it died any other way
          (a panic, a fatal error, a signal, an os.Exit inside a test). A package whose
          own TestMain ends the process where we cannot wrap it (see testmain) still gets
          pass/fail from its exit status, without a final snapshot (leaked is NA).
leaked    goroutines in the snapshot that are the package's own: the runtime's, testing's
          and the agent's left out (see ``own_goroutines``). After a pass or fail these
          are goroutines left after the test returned (all runs together); for hung and
          crashed ones, those blocked in the exit dump (all of them when none is blocked).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from . import analysis, build, process, tables
from .agent import testmain
from .dumps.dumpfile import read_dumps
from .dumps.model import to_frame
from .dumps.text import parse_dump
from .errors import GoleakError

DEFAULT_TIMEOUT_S = 60.0
KILL_GRACE_S = 30.0  # past -test.timeout, the process is sent SIGQUIT (a dump), then killed
QUIT_WAIT_S = 5.0
TAIL_BYTES = 64 << 10  # stdout (and a pass's stderr) kept per test
TIMED_OUT = "panic: test timed out after"
_DUMP_START_RE = re.compile(r"^goroutine \d+ \[", re.M)
_NAME_RE = re.compile(r"(Test|Example|Fuzz)\w*")
_CRASH_RE = re.compile(r"^(panic: |fatal error: |SIG[A-Z]+: )", re.M)

Progress = Callable[[int, int, "TestResult"], None]


@dataclass
class TestResult:
    """One test's process: its ``tests`` row and the evidence behind it."""

    row: dict[str, object]  # the test's row of the ``tests`` table
    exit_status: int | None  # as Popen gives it: negative for a signal
    stdout: str  # the last TAIL_BYTES of the test output
    stderr: str  # all of it for hung/crashed tests (its exit dump), else the last TAIL_BYTES
    settle: dict[str, object]  # the final snapshot's info line (empty without one)
    elapsed_s: float
    # the final (or exit) snapshot: a table, or what makes it on first use (most tests
    # leave nothing, and nobody looks at their snapshot)
    snapshot: pd.DataFrame | Callable[[], pd.DataFrame] = field(repr=False)

    @property
    def goroutines(self) -> pd.DataFrame:
        """The final (or exit) snapshot, ``goroutines`` schema."""
        if callable(self.snapshot):
            self.snapshot = self.snapshot()
        return self.snapshot

    @property
    def test(self) -> str:
        return str(self.row["test"])

    @property
    def outcome(self) -> str:
        return str(self.row["outcome"])


@dataclass
class TestRun:
    """A whole ``run_tests`` call: the binary and one result per test, in list order."""

    package: str
    binary: Path
    go_version: str | None
    results: list[TestResult]

    def table(self) -> pd.DataFrame:
        """The ``tests`` table."""
        return tables.frame("tests", [r.row for r in self.results])


def build_tests(
    package: str, out_dir: Path, *, go: str, env: dict[str, str] | None = None
) -> build.Built:
    """``go test -c`` of ``package`` (a directory or example:NAME) with the agent and our
    TestMain; see ``build.build``. The binary's name is stable per package and toolchain,
    so running the same package's tests again in ``out_dir`` does not link again."""
    where = build.resolve(package, test=True)[1]
    toolchain = {**os.environ, **(env or {})}.get("GOTOOLCHAIN", "")
    key = hashlib.sha256(f"{where}\0{toolchain}".encode()).hexdigest()[:12]
    name = f"{where.name}-{key}.test"
    return build.build(package, out_dir, go=go, test=True, env=env, agent=True, name=name)


def list_tests(binary: Path, regex: str = ".", env: dict[str, str] | None = None) -> list[str]:
    """The tests (and examples, fuzz targets' seed runs) ``-test.list REGEX`` names.

    The package's own TestMain runs around the listing: what it prints is not a name,
    and an exit status it makes up after listing (log.Fatal) is not a failure to list."""
    try:
        proc = subprocess.run(
            [str(binary), "-test.list", regex],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as e:
        raise GoleakError(f"{binary} -test.list did not answer in 120 s; check its init.") from e
    names = [ln for ln in proc.stdout.splitlines() if _NAME_RE.fullmatch(ln)]
    if proc.returncode != 0 and not names:
        first = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
        raise GoleakError(f"listing the tests of {binary} failed: {first} — fix it and retry.")
    return names


def run_tests(
    package: str,
    *,
    run: str = ".",
    count: int = 1,
    cpu: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    go: str = "go",
    workdir: Path | None = None,
    jobs: int | None = None,
    env: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> TestRun:
    """Build ``package``'s tests once and run each test matching ``run`` in its own
    process, ``jobs`` (default: one per core) at a time; ``progress(done, total, result)``
    after each. ``workdir`` (private, 0700; default a new temporary one) keeps the binary,
    the final snapshots and each test's output."""
    if count < 1:
        raise GoleakError(f"--count {count} runs nothing; give 1 or more.")
    if timeout <= 0:
        raise GoleakError(f"--timeout {timeout} is not a duration; give seconds > 0.")
    _check_cpu(cpu)
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="goleak-tests-"))
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    built = build_tests(package, workdir, go=go, env=env)
    names = list_tests(built.binary, ".", env)
    if not names:
        raise GoleakError(f"{package} has no tests (-test.list found none); add a TestXxx.")
    wanted = list_tests(built.binary, run, env) if run != "." else names
    if not wanted:
        raise GoleakError(
            f"-run {run!r} matches none of the {len(names)} tests of {package} "
            f"(e.g. {', '.join(names[:3])}); give a regex that matches one."
        )
    args = Args(count, cpu, timeout)
    pkg_dir = build.resolve(package, test=True)[1]  # go test runs tests in their directory
    runs = Path(tempfile.mkdtemp(prefix="tests-", dir=workdir))  # this call's outputs
    pool = _Pool(built.binary, pkg_dir, runs, args, env, jobs or os.cpu_count() or 1)
    results = pool.run(wanted, progress)
    return TestRun(package, built.binary, built.go_version, results)


def _check_cpu(cpu: str | None) -> None:
    if cpu is not None and not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", cpu):
        raise GoleakError(f"--cpu {cpu!r} is not a list of GOMAXPROCS values; e.g. --cpu 1,4.")


@dataclass(frozen=True)
class Args:
    count: int
    cpu: str | None
    timeout: float

    def argv(self, binary: Path, test: str) -> list[str]:
        out = [str(binary), "-test.run", f"^{re.escape(test)}$", "-test.v"]
        out += ["-test.count", str(self.count), "-test.timeout", f"{self.timeout:g}s"]
        if self.cpu:
            out += ["-test.cpu", self.cpu.replace(" ", "")]
        return out


@dataclass
class _Running:
    test: str
    proc: subprocess.Popen[bytes]
    pidfd: int
    dir: Path
    started: float
    quit_at: float | None = None  # when SIGQUIT was sent past the deadline


class _Pool:
    """Runs test processes from this (long-lived) thread, at most ``jobs`` at once; waits
    on their pidfds, so a finished one is replaced at once without a thread per child."""

    def __init__(
        self,
        binary: Path,
        cwd: Path,
        workdir: Path,
        args: Args,
        env: dict[str, str] | None,
        jobs: int,
    ) -> None:
        self.binary, self.cwd, self.workdir = binary, cwd, workdir
        self.args, self.jobs = args, max(1, jobs)
        self.env = {"GOTRACEBACK": "all", **os.environ, **(env or {})}
        self.env[testmain.PARENT_ENV] = str(os.getpid())
        self.started = 0

    def run(self, tests: Sequence[str], progress: Progress | None) -> list[TestResult]:
        pending = list(tests)
        running: dict[int, _Running] = {}
        done: dict[str, TestResult] = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    r = self._start(pending.pop(0))
                    running[r.pidfd] = r
                ready, _, _ = select.select(list(running), [], [], 0.5)
                for fd in ready:
                    r = running.pop(fd)
                    os.close(fd)
                    done[r.test] = self._finish(r)
                    if progress is not None:
                        progress(len(done), len(tests), done[r.test])
                self._enforce_deadlines(running.values())
        finally:
            for r in running.values():  # an interrupt: nothing of ours is left running
                process.kill(r.proc)
                os.close(r.pidfd)
        return [done[t] for t in tests]

    def _start(self, test: str) -> _Running:
        self.started += 1
        d = self.workdir / f"test-{self.started}"
        d.mkdir(mode=0o700)
        env = {**self.env, testmain.FINAL_ENV: str(d / "final.txt")}
        # Not process.spawn: without a preexec_fn Python starts it without forking itself
        # (10x faster); the binary sets its own parent-death signal (PARENT_ENV).
        with open(d / "stdout", "wb") as out, open(d / "stderr", "wb") as err:
            proc = subprocess.Popen(
                self.args.argv(self.binary, test), cwd=str(self.cwd), env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip
        return _Running(test, proc, os.pidfd_open(proc.pid), d, time.monotonic())

    def _enforce_deadlines(self, running: Iterable[_Running]) -> None:
        now = time.monotonic()
        for r in running:
            if r.quit_at is None and now - r.started > self.args.timeout + KILL_GRACE_S:
                process.signal_group(r.proc, signal.SIGQUIT)  # the runtime prints a dump
                r.quit_at = now
            elif r.quit_at is not None and now - r.quit_at > QUIT_WAIT_S:
                process.signal_group(r.proc, signal.SIGKILL)

    def _finish(self, r: _Running) -> TestResult:
        status = r.proc.wait()
        elapsed = time.monotonic() - r.started
        stdout = _tail((r.dir / "stdout").read_bytes())
        err = (r.dir / "stderr").read_bytes().decode("utf-8", "replace")
        final = testmain.read_final(r.dir / "final.txt")
        return result(r.test, status, stdout, err, final, self.args, elapsed, r.quit_at)


def _tail(data: bytes) -> str:
    return data[-TAIL_BYTES:].decode("utf-8", "replace")


def result(
    test: str,
    status: int,
    stdout: str,
    stderr: str,
    final: testmain.Final | None,
    args: Args,
    elapsed: float = 0.0,
    killed: float | None = None,
) -> TestResult:
    """A test process's outcome, snapshot and ``tests`` row (module docstring)."""
    runs = stdout.count(f"=== RUN   {test}\n")
    snap: pd.DataFrame | Callable[[], pd.DataFrame]
    if final is not None:
        outcome = "pass" if status == 0 else "fail"
        when = pd.Timestamp(int(final.info["time_ns"]), unit="ns", tz="UTC")
        snap = functools.partial(_final_snapshot, final.dump, when)
        mine = None
        # Only the goroutine that wrote it (the main one): nothing left, nothing to parse.
        if final.dump.count(b"\ngoroutine ") or testmain.FILE_STEM.encode() not in final.dump:
            cols, parser = parse_dump(final.dump, stacks=True)
            keep = ~own_goroutines(cols, parser.goroot)
            if keep.any():
                mine = to_frame({k: v[keep] for k, v in cols.items()}, snapshot=1,
                                       time=when, source="final")  # fmt: skip
    else:
        hung = killed is not None or TIMED_OUT in stderr
        crashed = hung or status not in (0, 1) or _CRASH_RE.search(stderr) is not None
        outcome = "hung" if hung else "crashed" if crashed else "pass" if status == 0 else "fail"
        snap, goroot = exit_dump_snapshot(stderr)
        mine = snap[~own_goroutines(snap, goroot)] if len(snap) else None
        if mine is not None and len(mine):
            blocked = mine[mine["status"].isin(["waiting", "leaked"])]
            mine = blocked if len(blocked) else mine
    row = test_row(test, runs, outcome, mine, final, status, stderr, args, killed)
    keep_err = stderr if outcome in ("hung", "crashed") else _tail(stderr.encode())
    info = dict(final.info) if final is not None else {}
    return TestResult(row, status, stdout, keep_err, info, elapsed, snap)


def _final_snapshot(dump: bytes, when: pd.Timestamp) -> pd.DataFrame:
    cols, _ = parse_dump(dump, stacks=True)
    return to_frame(cols, snapshot=1, time=when, source="final")


def exit_dump_snapshot(stderr: str) -> tuple[pd.DataFrame, str | None]:
    """The goroutines of the dump a dying test binary printed on ``stderr`` (timeout,
    panic, fatal error, SIGQUIT) as a ``goroutines`` snapshot (source ``exit``), and
    GOROOT's ``…/src/`` as its frames show it; an empty table when there is no dump."""
    if not _DUMP_START_RE.search(stderr):
        return tables.empty("goroutines"), None
    try:
        last = read_dumps(io.BytesIO(stderr.encode()), stacks=True)[-1]
    except GoleakError:
        return tables.empty("goroutines"), None
    snap = to_frame(last.cols, snapshot=1, time=pd.Timestamp.now(tz="UTC"), source="exit")
    return snap, last.parser.goroot


def own_goroutines(cols: Mapping[str, Any], goroot: str | None) -> np.ndarray:
    """Rows (of a ``goroutines`` table or parser columns) that are the runtime's or
    testing's: the main goroutine, which runs the tests (our TestMain is in its stack,
    the package's own TestMain too if it has one), and those with no frame in the
    package's own code that it did not start either. A leaked ``go time.Sleep(...)`` of a
    test is the test's (its ``go`` statement is in the test); the goroutine running a hung
    test is the test's (its frames are)."""

    def name(loc: str) -> str:
        return PurePosixPath(loc.rpartition(" ")[2].rsplit(":", 1)[0]).name

    def program(loc: object) -> bool:
        if not isinstance(loc, str) or name(loc) == "_testmain.go":
            return False
        return goroot is None or not loc.rpartition(" ")[2].startswith(goroot)

    def own(stack: object, top: object, user_top: object, created_at: object) -> bool:
        frames = stack if isinstance(stack, tuple) else (top, user_top)
        real = [f for f in frames if isinstance(f, str)]
        if any(name(f).startswith(testmain.FILE_STEM) for f in real):
            return True
        return not any(map(program, real)) and not program(created_at)

    rows = zip(cols["stack"], cols["top"], cols["user_top"], cols["created_at"], strict=True)
    return np.fromiter((own(*r) for r in rows), bool, len(cols["stack"]))


def test_row(
    test: str,
    runs: int,
    outcome: str,
    mine: pd.DataFrame | None,
    final: testmain.Final | None,
    status: int,
    stderr: str,
    args: Args,
    killed: float | None,
) -> dict[str, object]:
    """The ``tests`` row: counts, the top site and where it is blocked, the evidence."""
    left = len(mine) if mine is not None else 0
    top = analysis.suspects(mine) if mine is not None and left else None
    site = top["site"].iloc[0] if top is not None and len(top) else None
    blocked = top["blocked_at"].iloc[0] if top is not None and len(top) else None
    proven = int(mine["leaked"].sum()) if mine is not None and left else 0
    no_snapshot = final is None and not left and outcome in ("pass", "fail")
    parts = [f"{runs} run{'s' * (runs != 1)}, {process.describe_status(status)}"]
    if outcome == "hung":
        how = "killed with SIGQUIT" if killed is not None else f"timed out after {args.timeout:g}s"
        parts.append(f"{how}; the exit dump shows {left} goroutine(s) in the package's code")
    elif outcome == "crashed":
        first = _CRASH_RE.search(stderr)
        line = stderr[first.start() :].split("\n", 1)[0] if first else "no panic message"
        parts.append(f"crashed ({line}); exit dump: {left} goroutine(s) of the package")
    elif no_snapshot:
        parts.append(
            "no final snapshot: the package's TestMain ended the process itself (log.Fatal, "
            "or os.Exit outside its file), so goroutines left behind are unknown"
        )
    else:
        parts.append(f"{left} goroutine(s) left after the test returned")
        if final is not None and not final.info.get("settled", True):
            parts.append(f"still changing after {final.info.get('reads')} reads (~0.43 s)")
    if proven:
        parts.append(f"{proven} proven leaked by the GC")
    if blocked:
        reason, _, frame = str(blocked).partition(" at ")
        parts.append(f"top: {reason} at {analysis.short_loc(frame)}")
    return {
        "test": test,
        "runs": runs,
        "outcome": outcome,
        "leaked": None if no_snapshot else left,
        "leaked_proven": None if no_snapshot else proven,
        "top_site": site,
        "blocked_at": blocked,
        "evidence": "; ".join(parts),
    }
