"""``Session``: named targets and everything recorded about them.

The Python API behind the magics; it works without IPython::

    import goleak_magic
    s = goleak_magic.session()
    t = s.launch("example:leakyservice", detail=True, args=["-rate", "100"])
    t.sched        # DataFrame, grows while the program runs
    s.stop(t.name)
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from . import agent as agent_mod
from . import analysis, creations, gotrace, store, testrun
from . import build as build_mod
from . import snapshot as snap
from .delve import server as dlv
from .dumps.dumpfile import read_dumps
from .errors import GoleakError
from .fleet import snapshots as fleet_snapshots
from .fleet import web
from .fleet.instances import query as query_fleet
from .fleet.record import Fleet, FleetReport
from .record import Record
from .settings import Settings
from .target import Target
from .tools import binary_go_version, find_go

_R = TypeVar("_R", bound=Record)
_NAME_RE = re.compile(r"^[A-Za-z_][\w.-]*$")
# How a test's snapshot relates to its end, as the suspect rule reads it (END_KINDS):
# the final snapshot once the tests returned, or the dump of a hung or crashed binary.
_TEST_ENDS = {"pass": analysis.TEST_END, "fail": analysis.TEST_END, "hung": "timeout",
              "crashed": "panic"}  # fmt: skip


class Session:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.targets: dict[str, Record] = {}  # launched, attached, connected or loaded
        self._lock = threading.Lock()
        self._workdir: Path | None = None

    @property
    def workdir(self) -> Path:
        """A private (0700) directory for binaries and sockets, removed at close."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="goleak_magic-"))
        return self._workdir

    # ---- naming ---------------------------------------------------------------------
    def _claim(self, name: str | None, default: str) -> str:
        with self._lock:
            if name is not None:
                if not _NAME_RE.match(name):
                    raise GoleakError(
                        f"'{name}' is not a usable name; use letters, digits, '_', '-' or '.'."
                    )
                if name in self.targets:
                    raise GoleakError(
                        f"a target named '{name}' already exists; pick another name (--name) "
                        f"or remove it with %golaunch --forget {name}."
                    )
                return name
            base = re.sub(r"[^\w.-]", "_", default) or "target"
            if base[0].isdigit():
                base = "t" + base
            name, i = base, 2
            while name in self.targets:
                name, i = f"{base}-{i}", i + 1
            return name

    def _add(self, target: _R) -> _R:
        """``target`` (named by ``_claim``) joins ``targets``."""
        with self._lock:
            self.targets[target.name] = target
        return target

    def get(self, name: str) -> Record:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(self.targets) or "none yet"
            raise GoleakError(
                f"there is no target named '{name}' (known: {known}); see %golaunch --list."
            ) from None

    # ---- launch / attach ------------------------------------------------------------
    def launch(
        self,
        spec: str,
        *,
        name: str | None = None,
        args: Sequence[str] = (),
        schedtrace_ms: int | None = None,
        detail: bool = False,
        ancestors: int | None = None,
        env: dict[str, str] | None = None,
        test: bool = False,
        cwd: str | None = None,
        agent: bool = True,
    ) -> Target:
        """Build (if needed) and start ``spec`` with schedtrace; returns once it runs."""
        # Errors name a parameter as a Python caller writes it, then the magic's flag:
        # "schedtrace_ms (--schedtrace) ..." reads right for both (see errors.py).
        ms = schedtrace_ms if schedtrace_ms is not None else self.settings.schedtrace_ms
        if ms <= 0:
            raise GoleakError(
                "schedtrace_ms (--schedtrace) takes a positive number of milliseconds, e.g. 500."
            )
        if ancestors is not None and ancestors < 0:
            raise GoleakError(
                "ancestors (--ancestors) takes a number of ancestor stacks, 0 or more."
            )
        if cwd is not None and not Path(cwd).is_dir():
            raise GoleakError(f"cwd (--cwd) {cwd} is not a directory; give an existing one.")
        default = spec.removeprefix(build_mod.EXAMPLE_PREFIX)
        default = Path(default.rstrip("/")).stem or "target"
        claimed = self._claim(name, default)
        go = find_go(self.settings.go)
        built = build_mod.build(spec, self.workdir, go=go, test=test, env=env, agent=agent)
        target = Target(claimed, self.settings)
        self._add(target)
        if built.agent:
            # A unix socket path must fit in 108 bytes; a forgotten namesake's socket goes.
            sock = self.workdir / f"agent-{claimed[:48]}.sock"
            sock.unlink(missing_ok=True)
            env = {**(env or {}), agent_mod.ENV: str(sock)}
            target.agent_socket = str(sock)
        target.launch(
            built, args, schedtrace_ms=ms, detail=detail, ancestors=ancestors, env=env, cwd=cwd,
            dump_spool=self.workdir / f"stderr-{claimed[:48]}.dump",
            final_snapshot=self.workdir / f"final-{claimed[:48]}.out" if test else None,
        )  # fmt: skip
        return target

    def attach(self, pid: int, *, name: str | None = None) -> Target:
        """Watch a Go process that is already running (for Delve and pprof sources)."""
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except FileNotFoundError:
            raise GoleakError(
                f"there is no process {pid}; check the pid (e.g. with pgrep)."
            ) from None
        except PermissionError:
            raise GoleakError(
                f"process {pid} belongs to another user; run the notebook as that user."
            ) from None
        version = binary_go_version(exe, find_go(self.settings.go))
        if version is None:
            raise GoleakError(f"process {pid} ({exe}) is not a Go program; attach to a Go process.")
        claimed = self._claim(name, Path(exe).name)
        target = Target(claimed, self.settings)
        target.attach(pid, version, exe)
        return self._add(target)

    # ---- control --------------------------------------------------------------------
    def stop(self, name: str, *, dump: bool = False) -> Record:
        """Stop ``name``; with ``dump`` a program of ours is sent SIGQUIT first, so the
        goroutine dump it prints becomes its last snapshot."""
        target = self.get(name)
        target.stop(dump=dump)
        return target

    def kill(self, name: str) -> Record:
        target = self.get(name)
        target.stop(kill=True)
        return target

    def stop_all(self, kill: bool = False) -> None:
        for target in list(self.targets.values()):
            target.stop(kill=kill)

    def forget(self, name: str) -> None:
        """Stop a target and drop it with its recordings."""
        self.get(name).stop()
        with self._lock:
            del self.targets[name]

    # ---- recordings -----------------------------------------------------------------
    def save(self, name: str, path: str | Path) -> Path:
        """Write everything recorded about target ``name`` to one file (see ``store``)."""
        return store.save(self.get(name), path)

    def load(self, path: str | Path, *, name: str | None = None) -> Record:
        """Open a saved recording as a target (a Record: state "recorded", no process;
        no Go or dlv needed)."""
        recording = store.read(path)  # a bad file fails before a name is taken
        claimed = self._claim(name, recording.manifest["target"].get("name") or Path(path).stem)
        target = store.to_target(recording, claimed, self.settings)
        return self._add(target)

    def load_dump(
        self, path: str | Path, *, name: str | None = None, stacks: bool = False
    ) -> list[snap.Snapshot]:
        """Read the goroutine dump(s) in a text file (a CI log, a crash file, a bug
        report, SIGQUIT output) as the snapshots of a new recorded target: one per dump,
        log lines around and between them skipped. Returns them; the target is
        ``targets[name]`` (default: the file's name)."""
        where = Path(path).expanduser()
        dumps = read_dumps(where, stacks=stacks)  # nothing is named until it reads
        when = pd.Timestamp(where.stat().st_mtime_ns, tz="UTC")
        claimed = self._claim(name, where.stem)
        rec = Record(claimed, self.settings, kind="dump", spec=str(where), started_at=when,
                     ended_at=when)  # fmt: skip
        self._add(rec)
        return [snap.add_dump(rec, d, source="file", when=when) for d in dumps]

    # ---- leaks in tests (goleak_magic.testrun) -------------------------------------
    def test_leaks(
        self,
        package: str,
        *,
        run: str = ".",
        count: int = 1,
        cpu: str | None = None,
        timeout: float = testrun.DEFAULT_TIMEOUT_S,
        env: dict[str, str] | None = None,
        progress: testrun.Progress | None = None,
    ) -> pd.DataFrame:
        """goleak for a whole package, its code untouched: every test matching ``run``
        in its own process; returns the ``tests`` table. Each test becomes a recorded
        target (column ``target``) holding its final snapshot, or its exit dump when it
        hung or crashed, so suspects, report, timeline and save work on it."""
        done = testrun.run_tests(package, run=run, count=count, cpu=cpu, timeout=timeout,
                                 go=find_go(self.settings.go), workdir=self.workdir,
                                 env=env, progress=progress)  # fmt: skip
        base = Path(build_mod.resolve(package, test=True)[1]).name
        names = []
        for r in done.results:
            claimed = self._claim(None, f"{base}.{r.test}")
            rec = Record(claimed, self.settings, state=r.outcome, kind="test",
                         spec=f"{package} -test.run ^{r.test}$", go_version=done.go_version,
                         exit_status=r.exit_status)  # fmt: skip
            self._add(rec)
            g = r.goroutines
            if len(g):
                leak = r.settle.get("profile") == "goroutineleak"
                snap.add(rec, g, source=str(g["source"].iloc[0]), when=g["time"].iloc[0],
                         end=_TEST_ENDS[r.outcome], leak=leak)  # fmt: skip
            names.append(claimed)
        return done.table().assign(target=pd.array(names, dtype="string"))

    # ---- views --------------------------------------------------------------------
    def timeline(self, name: str, *, live: bool = False, html: str | Path | None = None) -> Any:
        """The interactive timeline of target ``name`` (``goleak_magic.viz``): ``live``
        follows it with a control bar; ``html`` also writes a standalone file."""
        from . import viz

        target = self.get(name)
        if live and isinstance(target, Fleet):
            raise GoleakError(
                f"{name} is a fleet: its timeline is drawn from what was gathered, not live; "
                f"drop live (--live), or take more rounds with %schedsnap --fleet {name}."
            )

        def tracing() -> bool:
            handle = creations.latest(target)
            return handle is not None and handle.running

        controls = viz.Controls(
            stop_target=lambda: self.stop(name),
            start_trace=lambda: self.trace(name),
            stop_trace=lambda: self.stop_trace(name),
            tracing=tracing,
            snapshot=lambda: self.snapshot(name),
        )
        return viz.timeline(target, live=live, html=html, controls=controls)

    # ---- creation tracing (goleak_magic.creations, goleak_magic.delve) ---------------
    def trace(
        self,
        name: str | None,
        *,
        connect: str | None = None,
        func: str | None = None,
        stack: int = 8,
        duration: float | None = None,
        max_events: int | None = None,
        on_done: Callable[[creations.Tracing], None] | None = None,
    ) -> creations.Tracing:
        """Record every goroutine creation of ``name`` with its creator's stack (Delve,
        one stop per ``go`` statement) into ``targets[name].creations``, in the
        background; with ``func`` (a Go regexp) those functions' calls and arguments.
        With ``connect`` (a headless dlv's address) the program behind it becomes the
        target ``name``, traced before it runs on."""
        if connect is not None:
            target = self.connect_delve(connect, name=name, resume=False)
        elif name is None:
            raise GoleakError("say which target to trace: %dlvtrace NAME (see %golaunch --list).")
        else:
            target = self.get(name)
        return creations.start(
            target, self.settings, self.workdir, func=func, stack=stack,
            duration=duration, max_events=max_events, on_done=on_done,
        )  # fmt: skip

    def stop_trace(self, name: str) -> creations.Tracing:
        """Stop ``name``'s trace: tracepoints out, Delve detached, the program runs on."""
        handle = creations.latest(self.get(name))
        if handle is None:
            raise GoleakError(f"{name} has no trace to stop; start one with %dlvtrace {name}.")
        return handle.stop()

    def creation_sites(self, name: str) -> pd.DataFrame:
        """Who creates ``name``'s goroutines: its creations grouped by ``go`` statement."""
        target = self.get(name)
        handle = creations.latest(target)
        span = handle.span() if handle is not None else None
        live = creations.live_set(target, handle.trace if handle is not None else None)
        return creations.sites(target.creations, live=live, span=span)

    def connect_delve(
        self, address: str, *, name: str | None = None, resume: bool = True
    ) -> Target:
        """A target for the program behind a headless dlv at ``address`` (e.g. remote);
        ``resume=False`` leaves it halted (for ``trace``)."""
        server = dlv.connect(address)
        try:
            claimed = self._claim(name, f"remote-{server.pid}")
        except GoleakError:
            server.close()  # lets the program run on, as it was
            raise
        target = Target(claimed, self.settings)
        target.state = "remote"
        target.started_at = pd.Timestamp.now(tz="UTC")
        target.kind, target.spec, target.remote_pid = "remote", address, server.pid
        target.go_version = server.version.target_go_version
        dlv.register(target, server, resume=resume)
        return self._add(target)

    def delve(self, name: str | Record) -> AbstractContextManager[dlv.DlvServer]:
        """``with session().delve(name) as dbg: dbg.run_halted(fn)``: the target's Delve
        (shared with a running trace, else attached now and detached after)."""
        target = name if isinstance(name, Record) else self.get(name)
        return dlv.attached(target, workdir=self.workdir, dlv=self.settings.dlv)

    # ---- execution traces (goleak_magic.gotrace, goleak_magic.exectrace) ------------
    def gotrace(
        self,
        name: str,
        *,
        duration: float | None = None,
        flight: float | None = None,
        on_spike: bool = False,
        save: str | Path | None = None,
        on_done: Callable[[gotrace.GoTrace], None] | None = None,
    ) -> gotrace.GoTrace:
        """Record every creation and block of ``name`` with Go's execution tracer, through
        its agent, in the background: streamed for ``duration`` seconds (None: until
        ``stop_gotrace``), or with ``flight`` a flight recorder holding that many seconds,
        frozen by ``gotrace_freeze`` or, with ``on_spike``, at the first spike of the
        goroutine count (``on_spike`` alone on a running recorder: at the next spike).
        Rows land in ``targets[name].creations`` (``source`` "trace") and
        ``.transitions``. ``save`` also keeps the raw stream there."""
        target = self.get(name)
        handle = gotrace.start(
            target, duration=duration, flight=flight, on_spike=on_spike,
            save=Path(save).expanduser() if save is not None else None, on_done=on_done,
        )  # fmt: skip
        if isinstance(target, Target):
            target.add_closer(lambda: gotrace.stop_all(target))
        return handle

    def stop_gotrace(self, name: str) -> gotrace.GoTrace:
        """End ``name``'s %gotrace (a stream's last rows land first)."""
        handle = self.get(name).gotrace
        if handle is None or not handle.running:
            raise GoleakError(
                f"{name} has no execution trace running; start one with %gotrace {name}."
            )
        return handle.stop()

    def gotrace_freeze(self, name: str) -> pd.DataFrame:
        """The flight recorder's window of ``name`` now, as creations (also landed in its
        tables); the recorder keeps running."""
        handle = self.get(name).gotrace
        if handle is None or handle.mode != "flight":
            raise GoleakError(
                f"{name} has no flight recorder running; start one with %gotrace {name} "
                "--flight SECONDS."
            )
        return handle.freeze()

    def gotrace_sites(self, name: str) -> pd.DataFrame:
        """Who creates ``name``'s goroutines, by the execution trace: its trace creations
        grouped by go statement (``creations.sites``)."""
        target = self.get(name)
        df = target.creations
        df = df[df["source"] == "trace"].reset_index(drop=True)
        if not len(df):
            raise GoleakError(
                f"{name} has no creations from an execution trace yet; record some with "
                f"%gotrace {name}."
            )
        return creations.sites(df, live=creations.live_set(target, None))

    def gotrace_url(
        self,
        url: str,
        *,
        name: str | None = None,
        duration: float = 5.0,
        on_done: Callable[[gotrace.GoTrace], None] | None = None,
    ) -> gotrace.GoTrace:
        """A live service's ``/debug/pprof/trace`` for ``duration`` seconds into target
        ``name`` (a new recorded target when it names none)."""
        target = self._trace_target(name, "pprof-trace")
        target.pprof_url = target.pprof_url or url
        return gotrace.from_url(target, url, seconds=duration, on_done=on_done)

    def gotrace_file(self, path: str | Path, *, name: str | None = None) -> gotrace.GoTrace:
        """A trace file (``go test -trace``, a saved /debug/pprof/trace) into target
        ``name`` (a new recorded target, named after the file, when it names none)."""
        if not Path(path).expanduser().is_file():
            raise GoleakError(f"{path} is not a file; give the path of a Go execution trace.")
        new = name is None or name not in self.targets
        target = self._trace_target(name, Path(path).stem)
        try:
            return gotrace.from_file(target, path)
        except GoleakError:
            if new:
                self.targets.pop(target.name, None)  # a bad file leaves no new target
            raise

    def gotrace_metrics(self, name: str, every_ms: int | None) -> gotrace.MetricsPoller | None:
        """Poll ``name``'s runtime/metrics goroutine counts into its ``metrics`` table
        every ``every_ms`` ms (None or 0: stop polling)."""
        target = self.get(name)
        if isinstance(target, Target):
            target.add_closer(lambda: gotrace.metrics(target, None))
        return gotrace.metrics(target, every_ms / 1000 if every_ms else None)

    def _trace_target(self, name: str | None, default: str) -> Record:
        if name is not None and name in self.targets:
            return self.targets[name]
        claimed = self._claim(name, default)
        return self._add(Record(claimed, self.settings, started_at=pd.Timestamp.now(tz="UTC")))

    # ---- snapshots (goleak_magic.snapshot, .analysis) -------------------------------
    def snapshot(
        self,
        name: str,
        *,
        source: str = "auto",
        url: str | None = None,
        stacks: bool = False,
        every: float | None = None,
        count: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """One goroutine snapshot of ``name`` (a ``Snapshot``), or with ``every`` and
        ``count`` a ``Series`` of them taken in the background."""
        target = self.get(name)
        kw: dict[str, Any] = {"source": source, "url": url, "stacks": stacks, "delve": self.delve}
        if every is None and count is None:
            return snap.take(target, progress=progress, **kw)
        if every is None or count is None:
            raise GoleakError(
                "every (--every) and count (--count) go together, e.g. every=1, count=10 "
                "(--every 1 --count 10)."
            )
        held = None
        if source == "delve":
            # Attach once, here (dlv must start from this thread), for the whole series.
            held = dlv.for_target(target, workdir=self.workdir, dlv=self.settings.dlv)
        return snap.Series(target, every, count, on_done=held.release if held else None, **kw)

    def diff(self, name: str, a: int, b: int) -> Any:
        """New / gone / persisting goroutines between snapshots ``a`` and ``b`` of ``name``."""
        return analysis.diff(self.get(name).goroutines, a, b)

    def suspects(self, name: str, *, min_snapshots: int = 3, every: float = 1.0) -> pd.DataFrame:
        """The ranked suspects of ``name``; a running target (or a fleet) with fewer than
        ``min_snapshots`` snapshots gets them first, ``every`` seconds apart."""
        target = self.get(name)
        have = len(target.snapshots)
        if isinstance(target, Fleet):
            if have < min_snapshots and target.recorded is None:
                self.fleet_snapshot(name, every=every, count=min_snapshots - have)
            return target.suspects
        if have < min_snapshots and target.alive:
            series = self.snapshot(name, every=every, count=min_snapshots - have)
            series.wait()
            if series.error and not series.snapshots:
                raise GoleakError(series.error)
        return target.suspects

    def report(self, name: str, html: str | Path | None = None) -> Any:
        """The verdict on ``name`` (``analysis.Report``); ``html`` also writes it there."""
        target = self.get(name)
        rep: analysis.Report | FleetReport
        if isinstance(target, Fleet):
            self.suspects(name)
            rep = target.report()
        else:
            rep = analysis.Report(name, self.suspects(name), list(target.snapshots),
                                  target.stuck, target.blocked_at_end)  # fmt: skip
        if html is not None:
            try:
                rep.save_html(str(Path(html).expanduser()))
            except OSError as e:
                raise GoleakError(f"could not write {html}: {e.strerror}; check the path.") from e
        return rep

    # ---- fleets (goleak_magic.fleet) ------------------------------------------------
    def fleet(
        self,
        prometheus: str,
        match: str,
        *,
        window: str | float = "30m",
        pprof: str = fleet_snapshots.DEFAULT_TEMPLATE,
        headers: web.Headers = None,
        name: str | None = None,
    ) -> Fleet:
        """Ask Prometheus at ``prometheus`` which instances matching ``match`` (PromQL
        label matchers, e.g. ``job="api"``) climb over ``window``; the fleet, named
        ``name`` (default "fleet"), holds them (``.instances``, ``.series``).

        ``pprof`` is each instance's pprof base URL, a template over its target labels;
        ``headers`` (a dict or "Name: value" lines; default ``$GOLEAK_HEADERS``) go with
        every request to Prometheus and the instances, and are never saved or shown."""
        if not match or not str(match).strip():
            raise GoleakError(
                "match (--match) takes PromQL label matchers that pick the fleet's series, "
                """e.g. job="api" (--match 'job="api"')."""
            )
        fleet_snapshots.check_template(pprof)
        hdrs = web.resolve_headers(headers)
        rows, series = query_fleet(prometheus, match, window, headers=hdrs)
        claimed = self._claim(name, "fleet")
        fleet = Fleet(
            claimed,
            self.settings,
            spec=f"{rows.attrs['prometheus']} {rows.attrs['query']}",
            started_at=pd.Timestamp.now(tz="UTC"),
            prometheus=rows.attrs["prometheus"],
            match=match,
            window_s=rows.attrs["window_s"],
            pprof_template=pprof,
            instances=rows,
            series=series,
            headers=hdrs,
        )
        return self._add(fleet)

    def fleet_snapshot(
        self,
        name: str,
        *,
        every: float | None = None,
        count: int | None = None,
        steady: int | None = fleet_snapshots.STEADY,
        pool: int = 8,
        timeout: float = 10.0,
        stacks: bool = False,
        progress: fleet_snapshots.Progress | None = None,
    ) -> fleet_snapshots.FleetSnapshot:
        """Goroutine snapshots of fleet ``name``'s climbing instances and ``steady`` of the
        others (None: all), ``count`` rounds ``every`` seconds apart (default one round);
        they land in ``targets[name].goroutines`` with an ``instance`` column. An
        instance that fails is one line in the result's ``failures``; the rest go on."""
        fleet = self.get(name)
        if not isinstance(fleet, Fleet):
            raise GoleakError(
                f"{name} is not a fleet; query one with %goleak fleet --prometheus URL "
                "--match SELECTOR --name NAME."
            )
        if fleet.recorded is not None:
            raise GoleakError(
                f"{name} is a loaded recording; query the fleet again with %goleak fleet to "
                "take new snapshots."
            )
        if (every is None) != (count is None):
            raise GoleakError(
                "every (--every) and count (--count) go together, e.g. every=10, count=3 "
                "(--every 10 --count 3)."
            )
        snap = fleet_snapshots.snapshot_fleet(
            fleet.instances, fleet.pprof_template, fleet.headers, pool=pool, timeout=timeout,
            progress=progress, rounds=count or 1, every=every or 0.0, steady=steady,
            stacks=stacks,
        )  # fmt: skip
        return fleet.add(snap)

    def list(self) -> pd.DataFrame:
        rows = [t.summary() for t in self.targets.values()]
        cols = ["name", "pid", "state", "uptime_s", "exit_status"]
        return pd.DataFrame(rows, columns=rows[0].keys() if rows else cols)

    def close(self) -> None:
        """Stop every target and remove the private work directory."""
        self.stop_all()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


_session: Session | None = None


def session() -> Session:
    """The process-wide session the magics use."""
    global _session
    if _session is None:
        _session = Session()
    return _session


def _close_at_exit() -> None:
    if _session is not None:
        _session.close()


atexit.register(_close_at_exit)
