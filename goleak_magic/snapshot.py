"""Goroutine snapshots of a target, from whichever source it offers.

Sources, cheapest first (``auto`` tries them in this order and says which it used):

agent   the pprof agent compiled in by ``%golaunch`` (``/goleak/dump`` on its unix
        socket): one stop-the-world for the dump, after the GC's leak detection
pprof   the program's own ``net/http/pprof`` at a URL (``goroutineleak?debug=2`` when it
        has that profile, else ``goroutine?debug=2``)
delve   Delve halts the target, lists every goroutine (``ListGoroutines``, paged) and
        resumes it: any Go binary, attached or launched, no rebuild
sched   per-state and per-wait-reason counts from the last ``--detail`` schedtrace tick;
        no per-goroutine rows

Every row source lands in the target's ``goroutines`` table (one snapshot number per
target); what was taken is listed in ``target.snapshots``.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import tables
from .agent import AgentClient
from .delve import server as dlv_server
from .dumps.delve import from_delve
from .dumps.leakprofile import parse_leak_profile
from .dumps.model import to_frame
from .dumps.text import DumpParser
from .errors import GoleakError
from .record import Record
from .tools import find_dlv

SOURCES = ("agent", "pprof", "delve", "sched")
READ_CHUNK = 1 << 22
TIMEOUT_S = 300.0  # a million goroutines take a while to dump
NO_LEAK_PROFILE = (
    "no goroutineleak profile in this Go (it needs Go 1.27, or Go 1.26 built with "
    "GOEXPERIMENT=goroutineleakprofile, which %golaunch does), so 'leaked' is unknown "
    "and suspects rest on growth alone"
)

Progress = Callable[[int, int], None]  # (goroutines read, bytes read)


@dataclass
class Snapshot:
    """One snapshot: its rows (``frame``) and how it was taken."""

    target: str
    id: int
    time: pd.Timestamp
    source: str
    goroutines: int
    leaked: int | None  # proven leaked; None when the leak profile is unavailable
    took_s: float
    paused_s: float | None  # how long the target was stopped for it, when known
    malformed: int = 0
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame = field(default_factory=lambda: tables.empty("goroutines"))
    counts: pd.DataFrame | None = None  # the sched source's per-state counts

    def summary(self) -> str:
        leaked = "" if self.leaked is None else f", {self.leaked:,} proven leaked"
        paused = "" if self.paused_s is None else f", target paused {self.paused_s:.2f} s"
        bad = f", {self.malformed:,} unreadable blocks skipped" if self.malformed else ""
        return (
            f"snapshot {self.id} of {self.target} via {self.source}: "
            f"{self.goroutines:,} goroutines{leaked}{bad} in {self.took_s:.2f} s{paused}"
        )

    def record(self) -> dict[str, Any]:
        """What ``target.snapshots`` keeps (JSON-safe)."""
        return {
            "id": self.id,
            "time": self.time.isoformat(),
            "source": self.source,
            "goroutines": self.goroutines,
            "leaked": self.leaked,
            "took_s": round(self.took_s, 4),
            "paused_s": None if self.paused_s is None else round(self.paused_s, 4),
            "malformed": self.malformed,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return f"<{self.summary()}>"


@dataclass
class _Taken:
    cols: Any  # parser columns, or None for sched
    source: str
    leak: bool  # the leak detection ran: ``leaked`` is meaningful
    paused_s: float | None
    malformed: int = 0
    counts: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def take(
    target: Record,
    *,
    source: str = "auto",
    url: str | None = None,
    stacks: bool = False,
    progress: Progress | None = None,
    delve: Callable[[Record], Any] | None = None,
) -> Snapshot:
    """Take one snapshot of ``target`` and record it; see the module docstring.

    ``delve(target)`` is a context manager giving the target's Delve (``Session.delve``:
    attached for the call, or the one a trace already holds); without it the delve
    source is not available.
    """
    # Errors name a parameter as a Python caller writes it, then the magic's flag:
    # "url (--url)", "source='delve' (--source delve)" (see errors.py).
    if source != "auto" and source not in SOURCES:
        raise GoleakError(
            f"source (--source) '{source}' is not one of auto, {', '.join(SOURCES)}; pick one "
            "of those."
        )
    with target.snapshot_lock:
        started = time.monotonic()
        when = pd.Timestamp.now(tz="UTC")
        taken = _take(target, source, url, stacks, progress, delve)
        took = time.monotonic() - started
        snaps = target.snapshots
        snap_id = (snaps[-1]["id"] if snaps else 0) + 1
        if taken.cols is not None:
            df = to_frame(taken.cols, snapshot=snap_id, time=when, source=taken.source)
            target.tables["goroutines"].add(df)  # type: ignore[union-attr]
        else:
            df = tables.empty("goroutines")
        notes = list(taken.notes)
        if not taken.leak and taken.cols is not None and not target.said_no_leak:
            target.said_no_leak = True  # say it once per target
            notes.append(NO_LEAK_PROFILE)
        snap = Snapshot(
            target=target.name,
            id=snap_id,
            time=when,
            source=taken.source,
            goroutines=len(df) if taken.cols is not None else _counted(taken.counts),
            leaked=int(df["leaked"].sum()) if taken.leak else None,
            took_s=took,
            paused_s=taken.paused_s,
            malformed=taken.malformed,
            notes=notes,
            frame=df.copy(deep=False),  # the caller may add columns; the table keeps its own
            counts=taken.counts,
        )
        snaps.append(snap.record())
        return snap


def _counted(counts: pd.DataFrame | None) -> int:
    if counts is None:
        return 0
    return int(counts.loc[counts["wait_reason"].isna(), "count"].sum())


def _take(
    target: Record,
    source: str,
    url: str | None,
    stacks: bool,
    progress: Progress | None,
    delve: Callable[[Record], Any] | None,
) -> _Taken:
    if source != "auto":
        return _SOURCE_FUNCS[source](target, url, stacks, progress, delve)
    tried: list[str] = []
    for name in SOURCES:
        why = _unavailable(name, target, url, delve)
        if why is None:
            try:
                taken = _SOURCE_FUNCS[name](target, url, stacks, progress, delve)
            except GoleakError as e:
                why = str(e).rstrip(".")
            else:
                if tried:
                    taken.notes.insert(0, f"auto chose {name}: " + "; ".join(tried))
                return taken
        tried.append(f"{name}: {why}")
    raise GoleakError(
        f"no snapshot source works for {target.name} (" + "; ".join(tried) + "); launch it "
        "with the agent (the default of %golaunch), give url (--url) of its net/http/pprof, or "
        "make dlv available."
    )


def _unavailable(
    name: str, target: Record, url: str | None, delve: Callable[[Record], Any] | None
) -> str | None:
    """Why ``auto`` skips ``name`` without trying it (None: worth a try)."""
    if name == "agent" and not target.agent_socket:
        return "no agent (built with agent=False (--no-agent), a prebuilt binary, or attached)"
    if name == "pprof" and not (url or target.pprof_url):
        return "no url (--url) given"
    if name == "delve":
        if delve is None:
            return "Delve is not available"
        if dlv_server.current(target) is None:
            try:
                find_dlv(target.settings.dlv)
            except GoleakError as e:
                return str(e).rstrip(".")
    if name in ("agent", "pprof", "delve") and not target.alive:
        return f"{target.name} is not running ({target.state})"
    return None


# ---- agent -------------------------------------------------------------------------------
def _from_agent(
    target: Record, url: str | None, stacks: bool, progress: Progress | None, delve: Any
) -> _Taken:
    sock = target.agent_socket
    if not sock:
        raise GoleakError(
            f"{target.name} has no agent (it was built with agent=False (--no-agent), is a "
            "prebuilt binary or was attached); use source='pprof' with url (--source pprof "
            "--url URL) or source='delve' (--source delve)."
        )
    _require_alive(target)
    parser = DumpParser(stacks=stacks, progress=progress)
    try:
        resp = AgentClient(sock).open("/goleak/dump?leak=1", TIMEOUT_S)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        _require_alive(target)
        raise GoleakError(
            f"the agent of {target.name} does not answer on {sock} ({e.strerror}); the "
            "program may have replaced GOLEAK_MAGIC_AGENT or failed to listen — use "
            "source='delve' (--source delve)."
        ) from e
    except OSError as e:
        raise _gone_or(target, e) from e
    with resp:
        paused = int(resp.getheader("X-Goleak-Pause-Ns") or 0) / 1e9
        leak = resp.getheader("X-Goleak-Leak") == "true"
        _stream(resp, parser, target)
    return _finish(parser, "agent", leak, paused, target)


def _stream(resp: http.client.HTTPResponse, parser: DumpParser, target: Record) -> None:
    try:
        while chunk := resp.read(READ_CHUNK):
            parser.feed(chunk)
    except (OSError, http.client.HTTPException) as e:
        raise _gone_or(target, e) from e
    if resp.length:  # http.client ends a short body quietly: the sender died mid-way
        raise _gone_or(target, EOFError(f"{resp.length:,} bytes of the dump never came"))


def _finish(
    parser: DumpParser, source: str, leak: bool, paused: float | None, target: Record
) -> _Taken:
    cols = parser.finish()
    if parser.count == 0:
        raise GoleakError(
            f"the {source} of {target.name} answered without a goroutine dump; check that "
            "it serves runtime/pprof (net/http/pprof)."
        )
    return _Taken(cols, source, leak, paused, parser.malformed)  # the summary counts skipped blocks


def _require_alive(target: Record) -> None:
    if not target.alive:
        raise GoleakError(
            f"{target.name} is not running ({target.state}); earlier snapshots are kept — "
            "launch it again for new ones."
        )


def _gone_or(target: Record, e: BaseException) -> GoleakError:
    target.wait(0.5)  # an exit and a broken socket arrive together
    if not target.alive:
        return GoleakError(
            f"{target.name} exited during the snapshot ({target.state}); nothing was "
            "recorded for it, earlier snapshots are kept."
        )
    return GoleakError(
        f"reading the goroutine dump of {target.name} failed ({e}); try again, or use "
        "another source (--source)."
    )


# ---- pprof ---------------------------------------------------------------------------------
def pprof_base(url: str) -> str:
    """``http://host:port[/prefix]/debug/pprof/`` from what a user types."""
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise GoleakError(
            f"url (--url) {url} is not an http URL; give the program's pprof address, e.g. "
            "http://127.0.0.1:6060/debug/pprof/."
        )
    path = parts.path
    i = path.find("/debug/pprof")
    path = path[:i] if i >= 0 else path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path + "/debug/pprof/", "", ""))


def _from_pprof(
    target: Record, url: str | None, stacks: bool, progress: Progress | None, delve: Any
) -> _Taken:
    url = url or target.pprof_url
    if not url:
        raise GoleakError(
            "source='pprof' (--source pprof) needs url (--url), the address of the "
            "program's net/http/pprof, e.g. http://127.0.0.1:6060/debug/pprof/."
        )
    base = pprof_base(url)
    leak = True
    t0 = time.monotonic()
    try:
        resp = _open(base + "goroutineleak?debug=2")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise _http_error(base, e) from e
        leak = False
        t0 = time.monotonic()
        try:
            resp = _open(base + "goroutine?debug=2")
        except urllib.error.HTTPError as e2:
            raise _http_error(base, e2) from e2
    paused = time.monotonic() - t0  # the world is stopped until the dump starts flowing
    parser = DumpParser(stacks=stacks, progress=progress)
    with resp:
        _stream(resp, parser, target)
    taken = _finish(parser, "pprof", leak, paused, target)
    taken.notes.append("target paused: time to first byte (an upper bound)")
    target.pprof_url = base
    return taken


def _open(url: str) -> Any:
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise GoleakError(
            f"cannot reach {url} ({reason}); check the address and that the program "
            "serves net/http/pprof there."
        ) from e


def _http_error(base: str, e: urllib.error.HTTPError) -> GoleakError:
    return GoleakError(
        f"{base} answered HTTP {e.code} {e.reason}; that is not a net/http/pprof endpoint — "
        "give the address where the program serves /debug/pprof/."
    )


# ---- delve ---------------------------------------------------------------------------------
DELVE_PAGE = 5000
DELVE_STACK_DEPTH = 50


def _from_delve(
    target: Record, url: str | None, stacks: bool, progress: Progress | None, delve: Any
) -> _Taken:
    if delve is None:
        raise GoleakError("Delve is not available; install it with scripts/setup.sh.")
    _require_alive(target)
    notes = []
    # The leak detection marks proven leaks "leaked" in the runtime, where Delve reads
    # the status: run it through the agent (or the program's pprof) first.
    leak, total = _leak_detection(target, url)
    if total is not None:
        notes.append(f"the goroutineleak profile counted {total:,} proven leaked")

    def listing(client: Any) -> tuple[list[Any], list[str], dict[int, tuple[Any, ...]] | None]:
        reasons = _wait_reasons(client, target)
        gs: list[Any] = []
        for g in client.iter_goroutines(DELVE_PAGE):
            gs.append(g)
            if progress is not None and len(gs) % DELVE_PAGE == 0:
                progress(len(gs), 0)
        frames = None
        if stacks:
            frames = {
                g.id: tuple(f.location for f in client.stacktrace(g.id, DELVE_STACK_DEPTH))
                for g in gs
            }
        return gs, reasons, frames

    try:
        with delve(target) as dbg:
            t0 = time.monotonic()
            gs, reasons, frames = dbg.run_halted(listing, timeout=TIMEOUT_S)
            paused = time.monotonic() - t0  # halt, list, resume
    except GoleakError:
        _require_alive(target)
        raise
    if progress is not None:
        progress(len(gs), 0)
    cols = from_delve(gs, reasons, frames)
    return _Taken(cols, "delve", leak, paused, notes=notes)


def _leak_detection(target: Record, url: str | None) -> tuple[bool, int | None]:
    """Run the GC's leak detection (agent, else pprof URL); (ran, proven-leak total)."""
    sock = target.agent_socket
    try:
        if sock:
            resp: Any = AgentClient(sock).open("/debug/pprof/goroutineleak?debug=1", TIMEOUT_S)
            if resp.status != 200:
                return False, None
        elif url or target.pprof_url:
            resp = _open(pprof_base(url or target.pprof_url) + "goroutineleak?debug=1")
        else:
            return False, None
        with resp:
            total, _ = parse_leak_profile(resp.read().decode("utf-8", "replace"))
    except (OSError, GoleakError, http.client.HTTPException, urllib.error.URLError):
        return False, None
    return True, total


def _wait_reasons(client: Any, target: Record) -> list[str]:
    """The target runtime's wait-reason names (Delve gives the number)."""
    cached = target.wait_reasons
    if cached:
        return list(cached)
    var = client.eval("runtime.waitReasonStrings")
    names = [c.value for c in var.children]
    target.wait_reasons = names
    return names


# ---- sched ---------------------------------------------------------------------------------
STATE_COLUMNS = {
    "running": "g_running",
    "runnable": "g_runnable",
    "syscall": "g_syscall",
    "waiting": "g_waiting",
    "leaked": "g_leaked",
    "other": "g_other",
}


def _from_sched(
    target: Record, url: str | None, stacks: bool, progress: Progress | None, delve: Any
) -> _Taken:
    sched = target.sched
    detail = sched[sched["goroutines"].notna()] if len(sched) else sched
    if not len(detail) and target.detail and target.alive:
        raise GoleakError(
            f"{target.name} has no complete detail (--detail) tick yet (a tick's counts come "
            "when the next tick starts); try again after one schedtrace_ms (--schedtrace) "
            "interval."
        )
    if not len(detail):
        raise GoleakError(
            f"{target.name} has no detail (--detail) schedtrace ticks; launch it with "
            "detail=True (--detail) for per-state counts, or use another source (--source)."
        )
    last = detail.iloc[-1]
    rows: list[dict[str, Any]] = [
        {"time": last["time"], "state": state, "wait_reason": None, "count": int(last[col])}
        for state, col in STATE_COLUMNS.items()
        if pd.notna(last[col])
    ]
    waits = target.waits
    for _, w in waits[waits["t_ms"] == last["t_ms"]].iterrows():
        rows.append(
            {"time": w["time"], "state": None, "wait_reason": w["wait_reason"],
             "count": int(w["count"])}
        )  # fmt: skip
    counts = pd.DataFrame(rows, columns=["time", "state", "wait_reason", "count"])
    counts = counts.astype({"state": "string", "wait_reason": "string", "count": "int64"})
    return _Taken(
        None,
        "sched",
        False,
        None,
        counts=counts,
        notes=["sched gives counts only (rows with a state, then per wait reason); "
               "no goroutine ids, stacks or creation sites"],
    )  # fmt: skip


_SOURCE_FUNCS = {"agent": _from_agent, "pprof": _from_pprof, "delve": _from_delve,
                 "sched": _from_sched}  # fmt: skip


# ---- a series in the background ------------------------------------------------------------
class Series:
    """``count`` snapshots, ``every`` seconds apart, taken by a background thread.

    ``snapshots`` fills as they come; ``error`` holds why it stopped early (a target
    that exits ends the series, keeping what was taken). ``stop()`` ends it early.
    """

    def __init__(
        self,
        target: Record,
        every: float,
        count: int,
        on_done: Callable[[], None] | None = None,
        **kw: Any,
    ) -> None:
        if every <= 0 or count <= 0:
            if on_done is not None:
                on_done()
            raise GoleakError(
                "every (--every) takes seconds > 0 and count (--count) a number of snapshots > 0."
            )
        self.target = target
        self._on_done = on_done
        self.every = every
        self.count = count
        self.snapshots: list[Snapshot] = []
        self.error: str | None = None
        self._kw = kw
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"goleak-snap-{target.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        start = last = time.monotonic()
        for i in range(self.count):
            if i:
                # Keep the cadence, but never start two snapshots closer than ``every``:
                # analysis reads "seen in two snapshots" as "outlived an interval".
                due = max(start + i * self.every, last + self.every)
                self._stop.wait(max(0.0, due - time.monotonic()))
            if self._stop.is_set():
                break
            last = time.monotonic()
            try:
                self.snapshots.append(take(self.target, **self._kw))
            except GoleakError as e:
                self.error = str(e)
                break
        if self._on_done is not None:
            self._on_done()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def frame(self) -> pd.DataFrame:
        """The rows of the snapshots taken so far."""
        frames = [s.frame for s in self.snapshots]
        return pd.concat(frames, ignore_index=True) if frames else tables.empty("goroutines")

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        err = f"; stopped: {self.error}" if self.error else ""
        return (
            f"<snapshot series of {self.target.name}: {len(self.snapshots)}/{self.count} "
            f"taken every {self.every:g} s, {state}{err}>"
        )
