"""IPython magics: argument parsing and display only; the work lives in ``Session``."""

from __future__ import annotations

import functools
import re
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Float, Int, TraitError, Unicode, validate

from . import testrun
from .errors import GoleakError
from .session import Session, session
from .settings import Settings


def _usage_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show our errors (and argparse's) as one line, never a traceback."""

    @functools.wraps(fn)
    def wrapper(self: GoleakMagics, line: str) -> Any:
        try:
            return fn(self, line)
        except GoleakError as e:
            raise UsageError(str(e)) from None

    return wrapper


_SUB_HELP_RE = re.compile(r"^(\s*%goleak\s+\w+)\s*\?\??\s*$")


def sub_help(lines: list[str]) -> list[str]:
    """An input transformer: ``%goleak SUB?`` asks for that subcommand's help (IPython
    would look up a Python object named SUB)."""
    return [_SUB_HELP_RE.sub(r"\1 --help", ln.rstrip("\n")) + "\n" * ln.endswith("\n")
            for ln in lines]  # fmt: skip


def _var_name(text: str) -> str:
    """The type of every ``-o VAR``: checked as the line is parsed, before any work."""
    if not text.isidentifier():
        raise GoleakError(f"-o takes a Python variable name, got '{text}'.")
    return text


def _argv(line: str) -> list[str]:
    """Every magic's line split as a shell splits it: quotes group words and go away
    (``--url "http://..."`` gives the bare URL), and a path may hold spaces."""
    try:
        return shlex.split(line)
    except ValueError as e:
        raise GoleakError(f"could not split the arguments ({e}); balance the quotes.") from None


def _parse(magic: Any, argv: list[str]) -> Any:
    """Parse ``argv`` with the ``@argument``s of ``magic`` (a magic or %goleak subcommand)."""
    return magic.parser.parse_args(argv)


def _parse_with_program_args(magic: Any, line: str) -> tuple[Any, list[str]]:
    """Parse ``line``; everything after a bare ``--`` goes to the program untouched."""
    tokens = _argv(line)
    cut = tokens.index("--") if "--" in tokens else len(tokens)
    return magic.parser.parse_args(tokens[:cut]), tokens[cut + 1 :]


def _gotrace_started(handle: Any) -> str:
    how = {"stream": "streaming the execution trace of", "flight": "flight recorder running on",
           "url": "reading the execution trace at"}[handle.mode]  # fmt: skip
    what = handle.what if handle.mode == "url" else handle.target.name
    return f"{how} {what}"


# %dlvtrace and %gotrace: --wait and -o VAR mean the same in both (GoleakMagics._started).
_trace_wait = argument(
    "--wait",
    action="store_true",
    help="block with a progress line (interrupt stops it) and return the rows",
)
_trace_var = argument(
    "-o",
    dest="var",
    metavar="VAR",
    type=_var_name,
    help="store the rows in VAR (a background trace stores them when it ends)",
)


def _env_pairs(pairs: list[str] | None) -> dict[str, str]:
    env = {}
    for pair in pairs or []:
        k, sep, v = pair.partition("=")
        if not sep or not k:
            raise GoleakError(f"--env takes KEY=VALUE, got '{pair}'.")
        env[k] = v
    return env


def _checked(proposal: Any, what: str, zero_ok: bool = False) -> Any:
    """A %config value refused as it is set, not later when a launch uses it."""
    name, value = proposal["trait"].name, proposal["value"]
    if value < 0 or (value == 0 and not zero_ok):
        bound = "0 or more" if zero_ok else "greater than 0"
        raise TraitError(
            f"GoleakMagics.{name} takes {what} {bound}, not {value}; e.g. "
            f"%config GoleakMagics.{name} = {getattr(Settings, name)}."
        )
    return value


def _fleet_progress(instance: str, k: int, what: str) -> None:
    """One line per instance per round, as its dump arrives or fails."""
    print(f"round {k}: {instance}: {what}", file=sys.stderr, flush=True)


class _StderrLine:
    """A progress line on stderr (a notebook redraws it), ended when the work ends."""

    def __init__(self) -> None:
        self._shown = False

    def show(self, text: str) -> None:
        self._shown = True
        print(f"\r{text}", end="", file=sys.stderr, flush=True)

    def __enter__(self) -> _StderrLine:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            print(file=sys.stderr, flush=True)


class _Progress(_StderrLine):
    """Shows a long snapshot's progress."""

    EVERY_S = 0.5

    def __init__(self) -> None:
        super().__init__()
        self._next = time.monotonic() + 1.0  # quick snapshots show nothing

    def __call__(self, goroutines: int, nbytes: int) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.EVERY_S
            self.show(f"read {goroutines:,} goroutines ({nbytes / 1e6:,.0f} MB)...")


class _TestProgress(_StderrLine):
    """Tests done of all, and the last one's outcome."""

    def __call__(self, done: int, total: int, result: Any) -> None:
        self.show(f"{done}/{total} tests; {result.test}: {result.outcome}" + " " * 20)


@magics_class
class GoleakMagics(Magics):
    go = Unicode("", help="Path to the go command ('' = go on PATH).").tag(config=True)
    dlv = Unicode("", help="Path to dlv ('' = $GOLEAK_DLV, PATH, .tools/bin, GOPATH/bin).").tag(
        config=True
    )
    # Defaults come from Settings, so the Python API and the magics agree.
    schedtrace_ms = Int(Settings.schedtrace_ms, help="Default --schedtrace interval in ms.").tag(
        config=True
    )
    log_lines = Int(Settings.log_lines, help="stdout/stderr lines kept per target.").tag(
        config=True
    )
    max_rows = Int(Settings.max_rows, help="Rows kept per live table; the oldest go first.").tag(
        config=True
    )
    startup_timeout = Float(
        Settings.startup_timeout, help="Seconds to wait for a program's first SCHED line."
    ).tag(config=True)
    stop_timeout = Float(
        Settings.stop_timeout, help="Seconds between SIGTERM and SIGKILL on --stop."
    ).tag(config=True)

    @validate("schedtrace_ms", "log_lines", "max_rows")
    def _positive_count(self, proposal: Any) -> int:
        return _checked(proposal, "a whole number")

    @validate("startup_timeout")
    def _positive_seconds(self, proposal: Any) -> float:
        return _checked(proposal, "a number of seconds")

    @validate("stop_timeout")
    def _seconds(self, proposal: Any) -> float:
        return _checked(proposal, "a number of seconds", zero_ok=True)

    def __init__(self, shell: Any = None, sess: Session | None = None, **kw: Any) -> None:
        super().__init__(shell, **kw)
        self.session = sess or session()
        self._push_settings()
        self.observe(lambda _change: self._push_settings(), names=self._settings())

    def _settings(self) -> list[str]:
        """This class's %config traits: each is the Settings field of the same name."""
        return list(self.class_own_traits(config=True))

    def _push_settings(self) -> None:
        for name in self._settings():
            setattr(self.session.settings, name, getattr(self, name))

    @magic_arguments()
    @argument("target", nargs="?", help="package dir | .go file | binary | example:NAME")
    @argument("--name", help="name for this target (default: from TARGET)")
    @argument("--schedtrace", type=int, metavar="MS", help="schedtrace interval (default 500)")
    @argument("--detail", action="store_true", help="scheddetail=1: per-state goroutine counts")
    @argument("--ancestors", type=int, metavar="N", help="GODEBUG=tracebackancestors=N")
    @argument("--env", action="append", metavar="K=V", help="extra environment (repeatable)")
    @argument("--test", action="store_true", help="build the package's tests (go test -c)")
    @argument("--cwd", help="working directory for the program")
    @argument("--no-agent", action="store_true", help="do not add the pprof agent at build")
    @argument("--attach", type=int, metavar="PID", help="watch a Go process already running")
    @argument("--list", action="store_true", help="list targets")
    @argument("--stop", metavar="N", help="stop target N (SIGTERM, then SIGKILL)")
    @argument(
        "--dump",
        action="store_true",
        help="with --stop: SIGQUIT first; the goroutine dump it prints is its last snapshot",
    )
    @argument("--kill", metavar="N", help="SIGKILL target N")
    @argument("--stop-all", action="store_true", help="stop every target")
    @argument("--forget", metavar="N", help="stop target N and drop its recordings")
    @argument("--logs", metavar="N", help="tail of target N's stdout/stderr")
    @argument("--lines", type=int, default=40, help="how many lines --logs shows")
    @line_magic
    @_usage_errors
    def golaunch(self, line: str) -> Any:
        """Build and start a Go program with GODEBUG=schedtrace, or attach to one.

        %golaunch TARGET [--name N] [--schedtrace MS] [--detail] [--ancestors N]
                  [--env K=V ...] [--test] [--cwd DIR] [--no-agent] [-- ARGS ...]
        %golaunch --attach PID --name N
        %golaunch --list | --stop N [--dump] | --kill N | --stop-all | --logs N

        Returns the target: its ``sched`` (and ``waits`` with --detail) DataFrames grow
        while the program runs. A goroutine dump the program prints as it dies (test
        timeout, deadlock, panic with GOTRACEBACK=all, SIGQUIT; ``--stop N --dump`` sends
        SIGQUIT) becomes its last snapshot (source ``exit``). With --test, the binary
        ending is an outcome, not an error: once the tests return, an injected TestMain
        hands over a final snapshot (source ``testmain``) of what they left behind.
        """
        a, program_args = _parse_with_program_args(self.golaunch, line)
        s = self.session
        if a.list:
            return s.list()
        if a.dump and not a.stop:
            raise GoleakError("--dump goes with --stop N: %golaunch --stop N --dump.")
        if a.stop:
            return s.stop(a.stop, dump=a.dump)
        if a.kill:
            return s.kill(a.kill)
        if a.stop_all:
            s.stop_all()
            return s.list()
        if a.forget:
            s.forget(a.forget)
            return None
        if a.logs:
            print(s.get(a.logs).logs(a.lines))
            return None
        if a.attach is not None:
            if a.target:
                raise GoleakError("give either TARGET or --attach PID, not both.")
            return s.attach(a.attach, name=a.name)
        if not a.target:
            raise GoleakError(
                "say what to launch: %golaunch ./cmd/server, a .go file, a binary or "
                "example:NAME (see %golaunch?)."
            )
        return s.launch(
            a.target,
            name=a.name,
            args=program_args,
            schedtrace_ms=a.schedtrace,
            detail=a.detail,
            ancestors=a.ancestors,
            env=_env_pairs(a.env),
            test=a.test,
            cwd=a.cwd,
            agent=not a.no_agent,
        )

    @magic_arguments()
    @argument("target", nargs="?", help="name of the target (see %%golaunch --list)")
    @argument(
        "--source",
        default="auto",
        choices=["auto", "agent", "pprof", "delve", "sched"],
        help="where the goroutines come from (auto: the cheapest that works)",
    )
    @argument("--url", help="the program's net/http/pprof address (for --source pprof)")
    @argument(
        "--file",
        metavar="PATH",
        help="read the goroutine dump(s) in a text file (CI log, crash file, SIGQUIT "
        "output) as a new recorded target",
    )
    @argument("--name", help="with --file: the new target's name (default: the file's)")
    @argument("--stacks", action="store_true", help="keep every goroutine's full stack")
    @argument("--every", type=float, metavar="S", help="a series: one snapshot every S seconds")
    @argument("--count", type=int, metavar="K", help="a series of K snapshots (in the background)")
    @argument(
        "--fleet",
        metavar="N",
        help="snapshot fleet N (from %%goleak fleet): its climbing instances and a few "
        "steady ones, in parallel; --every/--count take rounds (in the foreground)",
    )
    @argument(
        "--steady",
        type=int,
        default=4,
        metavar="K",
        help="with --fleet: steady instances taken beside the climbing ones (-1: all)",
    )
    @argument("--pool", type=int, default=8, help="with --fleet: dumps in flight at once")
    @argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="with --fleet: per-instance connect/read timeout",
    )
    @argument(
        "--diff",
        nargs=2,
        type=int,
        metavar=("A", "B"),
        help="compare snapshots A and B: new, gone, persisting goroutines, per-site deltas",
    )
    @argument(
        "-o",
        dest="var",
        metavar="VAR",
        type=_var_name,
        help="store the result in VAR instead of showing it",
    )
    @line_magic
    @_usage_errors
    def schedsnap(self, line: str) -> Any:
        """Goroutine snapshots: every live goroutine, its state, where it blocks, where it
        was created, and whether the GC proved it leaked.

        %schedsnap N [--source auto|agent|pprof|delve|sched] [--url URL] [--stacks]
                     [--every S --count K] [-o VAR]
        %schedsnap [N] --diff A B
        %schedsnap --file DUMP [--name N] [--stacks] [-o VAR]
        %schedsnap --fleet N [--every S --count K] [--steady K] [--pool P] [--timeout S]
                   [--stacks] [-o VAR]

        Returns the snapshot's rows (the ``goroutines`` table); every snapshot also lands
        in ``session().targets[N].goroutines``. A series runs in the background and
        returns its handle (``.snapshots``, ``.wait()``, ``.stop()``).

        --file reads any text holding goroutine dumps: log lines before, after and between
        them are skipped, several dumps become a series, and a dying program's message
        (test timeout with the tests it caught, deadlock, panic, SIGQUIT) is kept; every
        view (%goleak suspects, report, timeline, save) works on the new target.

        With --fleet, the rounds run in the foreground with one progress line per
        instance; an instance that is down, slow or not pprof is one line and skipped.
        Returns the fleet's new rows (``goroutines`` plus ``instance`` and ``run``).
        """  # fmt: skip
        a = _parse(self.schedsnap, _argv(line))
        s = self.session
        if a.fleet:
            snap = s.fleet_snapshot(a.fleet, every=a.every, count=a.count, stacks=a.stacks,
                                    steady=None if a.steady < 0 else a.steady, pool=a.pool,
                                    timeout=a.timeout, progress=_fleet_progress)  # fmt: skip
            print(repr(snap))
            return self._out(a.var, snap.goroutines)
        if a.file:
            if a.target or a.diff or a.every is not None or a.count is not None:
                raise GoleakError("--file reads a dump into a new target: give only --name N.")
            snaps = s.load_dump(a.file, name=a.name, stacks=a.stacks)
            for one in snaps:
                print(one.summary())
                for note in one.notes:
                    print(f"note: {note}")
            return self._out(a.var, s.get(snaps[0].target).goroutines)
        if a.name:
            raise GoleakError("--name goes with --file; a target's name is given at %golaunch.")
        if a.diff:
            name = a.target or self._only_snapshotted()
            return self._out(a.var, s.diff(name, *a.diff))
        if not a.target:
            raise GoleakError("say which target: %schedsnap NAME (see %golaunch --list).")
        if a.every is not None or a.count is not None:
            series = s.snapshot(a.target, source=a.source, url=a.url, stacks=a.stacks,
                                every=a.every, count=a.count)  # fmt: skip
            return self._out(a.var, series)
        with _Progress() as progress:
            snap = s.snapshot(a.target, source=a.source, url=a.url, stacks=a.stacks,
                              progress=progress)  # fmt: skip
        print(snap.summary())
        for note in snap.notes:
            print(f"note: {note}")
        return self._out(a.var, snap.counts if snap.counts is not None else snap.frame)

    @magic_arguments()
    @argument("target", nargs="?", help="name of the target (see %%golaunch --list)")
    @argument(
        "--func",
        metavar="REGEX",
        help="trace calls of the functions matching this Go regexp, with their "
        "arguments, instead of goroutine creations",
    )
    @argument(
        "--stack",
        type=int,
        default=8,
        metavar="DEPTH",
        help="frames of the creator's (or caller's) stack to keep (default 8)",
    )
    @argument("--duration", type=float, metavar="S", help="stop after S seconds")
    @argument("--max-events", type=int, metavar="K", help="stop after K events")
    @_trace_wait
    @_trace_var
    @argument("--stop", metavar="N", help="stop N's trace (Delve detaches; the program runs on)")
    @argument("--sites", metavar="N", help="N's creations per go statement, busiest leaker first")
    @argument(
        "--connect",
        metavar="ADDR",
        help="trace the program behind a headless dlv at HOST:PORT or unix:/path; TARGET names it",
    )
    @line_magic
    @_usage_errors
    def dlvtrace(self, line: str) -> Any:
        """Record every goroutine creation with the creator's stack, through Delve.

        %dlvtrace N [--func REGEX] [--stack DEPTH] [--duration S] [--max-events K]
                    [--wait] [-o VAR]
        %dlvtrace --stop N
        %dlvtrace --sites N
        %dlvtrace --connect ADDR [N] ...

        Delve attaches to target N and stops it once per ``go`` statement (a few ms each)
        to read the creator's stack and the new goroutine's id; rows land in
        ``session().targets[N].creations`` while it runs. By default the cell returns at
        once with the trace's handle; ``--wait`` blocks and returns this trace's rows.
        ``--stop`` (and stopping the target) detaches Delve; the program runs on.
        """
        a = _parse(self.dlvtrace, _argv(line))
        s = self.session
        if a.stop:
            return self._ended(s.stop_trace(a.stop), a.var)
        if a.sites:
            return self._out(a.var, s.creation_sites(a.sites))
        handle = s.trace(a.target, connect=a.connect, func=a.func, stack=a.stack,
                         duration=a.duration, max_events=a.max_events,
                         on_done=self._rows_when_done(a))  # fmt: skip
        what = f"calls of {handle.trace.hook}" if a.func else "goroutine creations"
        print(f"tracing {what} in {handle.target.name} (Delve {handle.trace.server.label})")
        for note in handle.trace.warnings:
            print(f"note: {note}")
        return self._started(handle, a, "dlvtrace")

    @magic_arguments()
    @argument("target", nargs="?", help="name of the target (see %%golaunch --list)")
    @argument("--duration", type=float, metavar="S", help="stream for S seconds, then stop")
    @_trace_wait
    @argument(
        "--flight",
        type=float,
        metavar="S",
        help="keep a flight recorder holding the last S seconds (Go 1.25+) instead of streaming",
    )
    @argument("--freeze", action="store_true", help="the flight recorder's window now, as rows")
    @argument(
        "--on-spike",
        action="store_true",
        help="with --flight (or on a running one): freeze at the next spike (rule above)",
    )
    @argument(
        "--metrics",
        type=int,
        metavar="MS",
        help="poll runtime/metrics goroutine counts into the metrics table every MS ms (0: stop)",
    )
    @argument("--save", metavar="FILE", help="also keep the raw stream in FILE (go tool trace)")
    @_trace_var
    @argument("--stop", metavar="N", help="stop N's trace or flight recorder (rows land first)")
    @argument("--sites", metavar="N", help="N's traced creations per go statement")
    @argument("--url", help="a live service's /debug/pprof/trace (or /debug/pprof/) to read")
    @argument("--file", help="a trace file: go test -trace, a saved /debug/pprof/trace")
    @argument("--name", help="with --url/--file: the target that gets the rows (default: new)")
    @line_magic
    @_usage_errors
    def gotrace(self, line: str) -> Any:
        """Record every goroutine creation and every block with Go's execution tracer.

        %gotrace N [--duration S] [--wait] [--save FILE] [-o VAR]
        %gotrace N --flight S [--on-spike]      (then %gotrace N --freeze)
        %gotrace N --metrics MS
        %gotrace --stop N | --sites N
        %gotrace --url URL [--name N] [--duration S] [--wait]
        %gotrace --file trace.out [--name N]

        Through the agent built into launched targets, at about a microsecond per event
        (``%dlvtrace`` stops the program for a millisecond or two per creation). Rows land
        in ``session().targets[N].creations`` (``source`` "trace": the go statement, the
        creator, the new goroutine, the creator's stack) and ``.transitions`` (every block
        with its reason and stack, every wake-up and end) while a stream runs (about a
        second behind the program) or at each ``--freeze``.

        ``--flight S`` keeps a flight recorder holding the last S seconds (Go 1.25+; an
        older Go streams instead and says so); ``--freeze`` returns its window now.
        ``--on-spike`` freezes it once, by itself, when the live goroutine count (polled
        every 0.2 s through runtime/metrics) rises at least max(10, half the median of
        the last 5 s) above that median; the handle then says how long after the spike
        the table was there. ``%gotrace N --on-spike`` on a running recorder arms it
        again, for the next spike. ``--metrics MS`` fills the ``metrics`` table (per-state
        counts, Go 1.26+) that the timeline's counts panel draws.

        ``--url`` reads a live service's own /debug/pprof/trace for ``--duration`` seconds
        (default 5; no rebuild), ``--file`` a trace file; both make a recorded target
        (named after ``--name``, or the file) unless ``--name`` names an existing one.
        """
        a = _parse(self.gotrace, _argv(line))
        s = self.session
        if a.stop:
            return self._ended(s.stop_gotrace(a.stop), a.var)
        if a.sites:
            return self._out(a.var, s.gotrace_sites(a.sites))
        if a.file:
            return self._ended(s.gotrace_file(a.file, name=a.name), a.var)
        if not a.url and not a.target:
            raise GoleakError(
                "say which target to trace: %gotrace NAME, --url URL or --file trace.out "
                "(see %gotrace?)."
            )
        if a.freeze:
            rows = s.gotrace_freeze(a.target)
            print(s.get(a.target).gotrace.summary())  # type: ignore[union-attr]
            return self._out(a.var, rows)
        if a.metrics is not None:
            poller = s.gotrace_metrics(a.target, a.metrics)
            print(f"polling runtime/metrics of {a.target} every {a.metrics} ms" if poller
                  else f"stopped polling runtime/metrics of {a.target}")  # fmt: skip
            return None
        on_done = self._rows_when_done(a)
        if a.url:
            handle = s.gotrace_url(a.url, name=a.name or a.target,
                                   duration=a.duration or 5.0, on_done=on_done)  # fmt: skip
        else:
            handle = s.gotrace(a.target, duration=a.duration, flight=a.flight,
                               on_spike=a.on_spike, save=a.save, on_done=on_done)  # fmt: skip
        print(_gotrace_started(handle))
        for note in handle.notes:
            print(f"note: {note}")
        return self._started(handle, a, "gotrace")

    def _rows_when_done(self, a: Any) -> Callable[[Any], None] | None:
        """For a background trace with ``-o VAR``: stores its rows in VAR as it ends."""
        var = a.var
        if var is None or a.wait:
            return None

        def on_done(handle: Any) -> None:
            self.shell.user_ns[var] = handle.frame()

        return on_done

    def _started(self, handle: Any, a: Any, magic: str) -> Any:
        """A trace just started: its handle at once, or with ``--wait`` its rows once it
        ends (a progress line meanwhile)."""
        if not a.wait:
            if a.var is not None:
                print(f"{a.var} gets the rows when the trace ends (%{magic} --stop "
                      f"{handle.target.name}).")  # fmt: skip
            return handle
        with _StderrLine() as line:
            handle.wait(progress=line.show)
        return self._ended(handle, a.var)

    def _ended(self, handle: Any, var: str | None) -> Any:
        """A trace that ended: its summary printed, its rows returned (or put in VAR)."""
        print(handle.summary())
        return self._out(var, handle.frame())

    def _only_snapshotted(self) -> str:
        names = [n for n, t in self.session.targets.items() if t.snapshots]
        if len(names) != 1:
            have = ", ".join(names) or "none"
            raise GoleakError(
                f"say which target to diff: %schedsnap NAME --diff A B (targets with snapshots: "
                f"{have})."
            )
        return names[0]

    def _out(self, var: str | None, value: Any) -> Any:
        """Return ``value``, or with ``-o VAR`` store it in the user's namespace."""
        if var is None:
            return value
        self.shell.user_ns[var] = value
        return None

    @line_magic
    @_usage_errors
    def goleak(self, line: str) -> Any:
        """Views over what was recorded.

        %goleak timeline N [--live] [--html FILE]
        %goleak suspects N [-o VAR]
        %goleak report N [--html FILE]
        %goleak save N FILE | %goleak load FILE
        %goleak tests DIR [-run REGEX] [--count N] [--cpu LIST] [--timeout S] [-o VAR]
        %goleak status
        %goleak fleet --prometheus URL --match SELECTOR [--window 30m] [--pprof TEMPLATE]
                      [--header 'K: V' ...] [--name N] [-o VAR]

        ``%goleak SUB?`` (or ``%goleak SUB --help``) shows a subcommand's full help.
        """
        sub, *argv = _argv(line) or [""]
        handler = getattr(self, f"_goleak_{sub}", None) if sub else None
        if handler is None:
            subs = sorted(n.removeprefix("_goleak_") for n in dir(self) if n.startswith("_goleak_"))
            raise GoleakError(f"say what to show: %goleak {' | '.join(subs)} (see %goleak?).")
        if argv in (["--help"], ["-h"]):
            print(handler.__doc__)
            return None
        return handler(argv)

    # Each %goleak subcommand is a method named _goleak_<sub>(argv: list[str]).
    def _goleak_status(self, argv: list[str]) -> Any:
        return self.session.list()

    @magic_arguments(name="goleak suspects")
    @argument("target", help="name of the target (see %%golaunch --list)")
    @argument(
        "-o",
        dest="var",
        metavar="VAR",
        type=_var_name,
        help="store the table in VAR instead of showing it",
    )
    def _goleak_suspects(self, argv: list[str]) -> Any:
        """%goleak suspects N [-o VAR]: creation sites ranked by leak evidence (score =
        goroutines the evidence says leak; a suspect scores 5 or more). A running target
        with fewer than 3 snapshots gets 3 first, 1 s apart; so does a fleet (rounds), whose
        suspects are per site across instances ("on 2 of 6 instances ...")."""
        a = _parse(self._goleak_suspects, argv)
        return self._out(a.var, self.session.suspects(a.target))

    @magic_arguments(name="goleak tests")
    @argument("package", help="the package directory whose tests to run (or example:NAME)")
    @argument(
        "-run",
        "--run",
        dest="run",
        default=".",
        metavar="REGEX",
        help="run the tests matching REGEX (go test's -run; default all)",
    )
    @argument("--count", type=int, default=1, metavar="N", help="run each test N times")
    @argument("--cpu", metavar="LIST", help="GOMAXPROCS values to run each test with, e.g. 1,4")
    @argument(
        "--timeout",
        type=float,
        default=testrun.DEFAULT_TIMEOUT_S,
        metavar="S",
        help="a test still running after S seconds is hung (its dump is kept)",
    )
    @argument("-o", dest="var", metavar="VAR", type=_var_name,
              help="store the table in VAR instead of showing it")  # fmt: skip
    def _goleak_tests(self, argv: list[str]) -> Any:
        """%goleak tests DIR [-run REGEX] [--count N] [--cpu LIST] [--timeout S] [-o VAR]:
        goleak for a whole package, its code untouched. The test binary is built once with
        a TestMain added by -overlay; each test runs in its own process (one per core), and
        after it returns the goroutines it left are snapshotted (settled first, with the
        GC's leak proof). One row per test: outcome (pass, fail, hung: past --timeout,
        crashed), leaked (goroutines left, the runtime's and testing's own left out),
        leaked_proven, top_site (its go statement), blocked_at, evidence, and target: the
        session's name for that test, whose snapshot every view works on
        (%goleak report TARGET)."""
        a = _parse(self._goleak_tests, argv)
        with _TestProgress() as progress:
            df = self.session.test_leaks(a.package, run=a.run, count=a.count, cpu=a.cpu,
                                         timeout=a.timeout, progress=progress)  # fmt: skip
        return self._out(a.var, df)

    @magic_arguments(name="goleak report")
    @argument("target", help="name of the target (see %%golaunch --list)")
    @argument("--html", metavar="FILE", help="also write the report as an HTML file")
    def _goleak_report(self, argv: list[str]) -> Any:
        """%goleak report N [--html FILE]: the top suspect, where it blocks, a
        representative stack and the numbers behind the verdict."""
        a = _parse(self._goleak_report, argv)
        rep = self.session.report(a.target, html=a.html)
        if a.html:
            print(f"wrote {a.html}")
        return rep

    @magic_arguments(name="goleak timeline")
    @argument("target", help="name of the target (see %%golaunch --list)")
    @argument("--live", action="store_true", help="follow it while it runs, with a control bar")
    @argument("--html", metavar="FILE", help="also write a standalone HTML file (works offline)")
    def _goleak_timeline(self, argv: list[str]) -> Any:
        """%goleak timeline N [--live] [--html FILE]: goroutine counts, creations per site,
        alive per site, wait reasons on one time axis; select a window to list its sites."""
        a = _parse(self._goleak_timeline, argv)
        return self.session.timeline(a.target, live=a.live, html=a.html)

    @magic_arguments(name="goleak save")
    @argument("target", help="name of the target to save")
    @argument("file", help="recording file to write (replaced atomically if it exists)")
    def _goleak_save(self, argv: list[str]) -> Any:
        """%goleak save N FILE: write every table and the metadata of target N to FILE."""
        a = _parse(self._goleak_save, argv)
        path = self.session.save(a.target, a.file)
        print(f"saved {a.target} to {path}")
        return None

    @magic_arguments(name="goleak fleet")
    @argument(
        "--prometheus",
        required=True,
        metavar="URL",
        help="base URL of the Prometheus server that scrapes the fleet",
    )
    @argument(
        "--match",
        required=True,
        metavar="SELECTOR",
        help="PromQL label matchers of the fleet's go_goroutines, e.g. 'job=\"api\"'",
    )
    @argument("--window", default="30m", help="how far back to judge climbing (default 30m)")
    @argument("--pprof", default="http://{instance}/debug/pprof", metavar="TEMPLATE",
              help="each instance's pprof base URL, a template over its target labels "
                   "(default http://{instance}/debug/pprof)")  # fmt: skip
    @argument("--header", action="append", metavar="'K: V'",
              help="HTTP header for Prometheus and the instances (repeatable); default: the "
                   "lines of $GOLEAK_HEADERS. Never saved or shown.")  # fmt: skip
    @argument("--name", help="name of the fleet in the session (default: fleet)")
    @argument("-o", dest="var", metavar="VAR", type=_var_name,
              help="store the instances table in VAR instead of showing it")  # fmt: skip
    def _goleak_fleet(self, argv: list[str]) -> Any:
        """%goleak fleet --prometheus URL --match SELECTOR [--window 30m] [--pprof TEMPLATE]
        [--header 'K: V' ...] [--name N] [-o VAR]: which instances of a fleet climb.

        Asks Prometheus (query_range of go_goroutines{SELECTOR} over --window) and returns
        one row per instance: instance, job, goroutines (latest), growth_per_min (Theil-Sen
        slope), rise, concordance, climbing, samples, last_seen, labels, scrape_url.
        Climbing: the slope is positive, at least 70% of the sample pairs that differ rise,
        and the rise over the window is at least max(10, 10% of the starting level).

        The fleet lives in the session under --name like a target: then
        %schedsnap --fleet N [--every S --count K] dumps the climbing instances and a few
        steady ones (goroutineleak?debug=2 where served, else goroutine?debug=2),
        %goleak suspects N ranks creation sites across instances ("on 2 of 6
        instances..."), %goleak report N gives the verdict and the instances that do not
        show it, %goleak timeline N draws one line per instance, %goleak save N FILE keeps
        it. Requests go only to the Prometheus URL and the instances it lists; headers
        (--header, else $GOLEAK_HEADERS, one 'Name: value' per line) are never saved,
        shown or put in an error.
        """
        a = _parse(self._goleak_fleet, argv)
        headers = "\n".join(a.header) if a.header else None
        fleet = self.session.fleet(a.prometheus, a.match, window=a.window, pprof=a.pprof,
                                   headers=headers, name=a.name)  # fmt: skip
        print(repr(fleet))
        return self._out(a.var, fleet.instances)

    @magic_arguments(name="goleak load")
    @argument("file", help="recording file written by %%goleak save")
    @argument("--name", help="name for the loaded target (default: the saved name)")
    def _goleak_load(self, argv: list[str]) -> Any:
        """%goleak load FILE [--name N]: open a recording as a target (no Go or dlv needed)."""
        a = _parse(self._goleak_load, argv)
        return self.session.load(a.file, name=a.name)
