"""Go execution traces (``runtime/trace``) into the ``creations`` and ``transitions`` tables.

Capture: through the agent (``AgentClient`` socket: ``stream``, the flight recorder's
``flight_start`` / ``flight_freeze`` / ``flight_stop``, and ``metrics``), from a live
service's ``/debug/pprof/trace`` (``from_url``) or a file (``from_file``, e.g. ``go test
-trace`` output). Convert: the trace goes through the shipped Go helper (``tracecv``,
built on ``golang.org/x/exp/trace``) as a stream, and its frames of little-endian int64
columns become numpy arrays with no per-row Python (see ``goleak_magic/tracecv``). The
helper writes its rows out every half second or so, and ``on_chunk`` gets each batch as
tables as it comes, so a streamed trace's rows can land while it runs; those rows then go
to ``on_chunk`` only (the result keeps no second copy, so a long stream costs the tables
it lands in, bounded, and no whole-trace build at its end).

What is kept (``TraceTables``): every creation (``creations``, ``source`` = "trace";
the site is the ``go`` statement, the innermost frame of the creator's stack); every
block (to ``waiting``, with the reason and the blocked goroutine's stack), unblock (from
``waiting``, with the stack of whoever woke it, when one did) and end (to ``dead``) in
``transitions``; the rest -- running<->runnable flips, system calls and the runtime
re-declaring each existing goroutine at every trace generation, millions an hour on a
busy service and no evidence of a leak -- only as counts per creation site in
``flips``. The agent's own goroutines (and runtime/trace's writer it starts) are left out.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from . import agent, tables
from .delve.tracer import is_runtime
from .dumps.filters import goroot_of
from .errors import GoleakError
from .tools import find_tracecv

FORMAT = 1  # tracecv's FormatVersion
# x/exp/trace's GoState numbering; named as the goroutines table names statuses.
STATES = ("undetermined", "dead", "runnable", "running", "waiting", "syscall")
METRICS = {
    "/sched/goroutines:goroutines": "goroutines",
    "/sched/goroutines/running:goroutines": "running",
    "/sched/goroutines/runnable:goroutines": "runnable",
    "/sched/goroutines/waiting:goroutines": "waiting",
    "/sched/goroutines/not-in-go:goroutines": "not_in_go",
    "/sched/goroutines-created:goroutines": "created",
    "/sched/gomaxprocs:threads": "gomaxprocs",
}
CHUNK = 1 << 16
MAX_ROWS = 1_000_000  # per table; past it the oldest rows go (counted in the summary)

Progress = Callable[[dict[str, int]], None]
FLIP_COLUMNS = ["site", "from_state", "to_state", "count"]


class FlightUnsupported(GoleakError):
    """The target's Go has no flight recorder (before 1.25): stream the trace instead."""


@dataclass
class TraceTables:
    """One converted trace."""

    creations: pd.DataFrame
    transitions: pd.DataFrame
    flips: pd.DataFrame  # site, from_state, to_state, count: the transitions not kept
    stacks: dict[int, tuple[str, ...]]  # stack_id -> frames ("func file:line")
    summary: dict[str, Any] = field(default_factory=dict)
    # Where the trace broke (truncated, corrupt), after keeping what came before; None if whole.
    broken: str | None = None
    # The agent's own goroutines: left out of the rows, but a chunk handed to on_chunk
    # may hold one created before its first block in the agent's code showed whose it was.
    agent_goids: frozenset[int] = frozenset()

    def stack(self, stack_id: int) -> tuple[str, ...]:
        return self.stacks.get(stack_id, ())


Chunk = Callable[[TraceTables], None]  # gets the rows of one frame, as they come


class _Stacks:
    """The helper's stack table as arrays indexed by stack id (the last entry: none)."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[tuple[str, ...], str | None, str | None, int | None]] = {}
        self.agent = np.zeros(0, dtype=np.int64)  # ids of the stacks in the agent's code
        self._arrays: dict[str, Any] | None = None  # arrays() until the next add

    def add(self, items: list[dict[str, Any]]) -> None:
        self._arrays = None
        mine = []
        for it in items:
            frames = [(fn, file, line) for fn, file, line in it["frames"]]
            stack = tuple(f"{fn} {file}:{line}" for fn, file, line in frames)
            if any(f"/{agent.FILE_STEM}" in fr for fr in stack):
                mine.append(int(it["id"]))
            i = it["site"]
            site = frames[i] if 0 <= i < len(frames) else (None, None, None)
            self.entries[int(it["id"])] = (stack, *site)
        if mine:
            self.agent = np.union1d(self.agent, mine)

    def _goroot(self) -> str | None:
        for st, *_ in self.entries.values():
            for fr in st:
                fn, _, loc = fr.partition(" ")
                root = goroot_of(fn, loc)
                if root:
                    return root
        return None

    def arrays(self) -> dict[str, Any]:
        if self._arrays is None:  # each streamed chunk asks; stacks change less often
            self._arrays = self._build()
        return self._arrays

    def _build(self) -> dict[str, Any]:
        n = max(self.entries, default=-1) + 1
        stack = np.empty(n + 1, dtype=object)
        func = np.empty(n + 1, dtype=object)
        file = np.empty(n + 1, dtype=object)
        line = np.full(n + 1, -1, dtype=np.int64)
        site = np.empty(n + 1, dtype=object)
        mine = np.zeros(n + 1, dtype=bool)
        at = np.empty(n + 1, dtype=object)
        goroot = self._goroot()
        for i, (st, fn, fl, ln) in self.entries.items():
            stack[i], func[i], file[i] = st, fn, fl
            # where a goroutine blocked: the innermost frame of the program's own code (as
            # a dump's user_top), else the innermost above the runtime's own
            split = [fr.partition(" ") for fr in st]
            own = (fr for fr, (_, _, loc) in zip(st, split, strict=True)
                   if goroot is None or not loc.startswith(goroot))  # fmt: skip
            std = (fr for fr, (f, _, _) in zip(st, split, strict=True) if not is_runtime(f))
            at[i] = next(own, None) or next(std, None)
            line[i] = ln if ln is not None else -1
            site[i] = f"{fn} {fl}:{ln}" if fn else None
            mine[i] = any(f"/{agent.FILE_STEM}" in fr for fr in st)
        rt = np.array([fn is None or is_runtime(fn) for fn in func], dtype=bool)
        # string columns are built once per stack and taken per row (no per-row work)
        return {"stack": stack, "func": pd.array(func, dtype="string"),
                "file": pd.array(file, dtype="string"), "line": line, "site_obj": site,
                "site": pd.array(site, dtype="string"), "runtime": rt, "agent": mine,
                "at": at, "none": n}  # fmt: skip


def _index(ids: np.ndarray, none: int) -> np.ndarray:
    return np.where(ids >= 0, ids, none)


def _times(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


def _creations(
    cols: dict[str, np.ndarray], st: dict[str, Any], seq0: int, agent_goids: np.ndarray
) -> pd.DataFrame:
    idx = _index(cols["stack_id"], st["none"])
    keep = ~st["agent"][idx] & ~np.isin(cols["new_goid"], agent_goids)
    cols = {k: v[keep] for k, v in cols.items()}
    idx = idx[keep]
    n = len(idx)
    line = st["line"][idx]
    df = pd.DataFrame(
        {
            "time": _times(cols["time"]),
            "seq": np.arange(seq0, seq0 + n, dtype=np.int64),
            "goid": pd.arrays.IntegerArray(cols["goid"], cols["goid"] < 0),  # -1: no goroutine
            "new_goid": pd.array(cols["new_goid"], dtype="Int64"),
            "site": st["site"].take(idx),
            "site_func": st["func"].take(idx),
            "site_file": st["file"].take(idx),
            "site_line": pd.arrays.IntegerArray(line, line < 0),
            "stack": st["stack"][idx],
            "stack_id": cols["stack_id"],
            "runtime": st["runtime"][idx],
            "source": pd.array(["trace"], dtype="string").take(np.zeros(n, dtype=np.intp)),
        }
    )
    return tables.conform("creations", df)


def _categories(codes: np.ndarray, names: list[Any]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))


def _per_stack(idx: np.ndarray, names: np.ndarray) -> pd.Categorical:
    """``names[idx]`` as a categorical (None: NA), factorizing the few stacks the rows
    name rather than every row's string."""
    used = np.flatnonzero(np.bincount(idx, minlength=len(names)))
    codes, uniques = pd.factorize(names[used], use_na_sentinel=True)
    lookup = np.full(len(names), -1, dtype=np.int64)
    lookup[used] = codes
    return _categories(lookup[idx], list(uniques))


def _transitions(
    cols: dict[str, np.ndarray], st: dict[str, Any], strings: dict[int, str],
    agent_goids: np.ndarray,
) -> pd.DataFrame:  # fmt: skip
    site_idx = _index(cols["site_id"], st["none"])
    keep = ~st["agent"][site_idx] & ~np.isin(cols["goid"], agent_goids)
    cols = {k: v[keep] for k, v in cols.items()}
    site_idx = site_idx[keep]
    reasons = [strings[i] for i in sorted(strings)]
    # codes: a reason id is its position (ids are dense); -1 (no reason) is NA
    df = pd.DataFrame(
        {
            "time": _times(cols["time"]),
            "goid": cols["goid"],
            "from_state": _categories(cols["from_state"], list(STATES)),
            "to_state": _categories(cols["to_state"], list(STATES)),
            "reason": _categories(cols["reason_id"], reasons),
            "site": _per_stack(site_idx, st["site_obj"]),
            "at": _per_stack(_index(cols["stack_id"], st["none"]), st["at"]),
            "stack_id": pd.arrays.IntegerArray(cols["stack_id"], cols["stack_id"] < 0),
        }
    )
    return tables.conform("transitions", df)


class _Reader:
    """Reads tracecv's frame stream and gathers the columns; ``on_chunk`` gets each
    frame's rows as tables as they come."""

    def __init__(
        self, stream: IO[bytes], progress: Progress | None, max_rows: int,
        on_chunk: Chunk | None = None,
    ) -> None:  # fmt: skip
        self.stream = stream
        self.progress = progress
        self.on_chunk = on_chunk
        self.max_rows = max_rows
        self.columns: dict[str, list[str]] = {}
        self.chunks: dict[str, deque[np.ndarray]] = {"C": deque(), "T": deque()}
        self.rows = {"C": 0, "T": 0}
        self.dropped = {"C": 0, "T": 0}
        self.stacks = _Stacks()
        self.strings: dict[int, str] = {}
        self.summary: dict[str, Any] | None = None
        # Goroutines seen in the agent's own code, also in rows let go since: its
        # timer-started pollers have no creator stack to tell them by, but block there.
        self.agent_goids: set[int] = set()

    def run(self) -> None:
        read = self.stream.read
        while True:
            head = read(5)
            if len(head) < 5:
                return
            kind, size = chr(head[0]), struct.unpack("<I", head[1:])[0]
            if kind in "CT" and size >= 4:
                # the row count apart, so the columns land in a buffer of their own,
                # 8-byte aligned (numpy copies misaligned int64 several times slower)
                n = struct.unpack("<I", read(4))[0]
                size -= 4
            payload = read(size)
            if len(payload) < size:
                return  # the helper died mid-frame: no end frame, convert() says so
            if kind in "CT":
                block = np.frombuffer(payload, dtype="<i8").reshape(-1, n)
                self._add(kind, block)
                if self.on_chunk is not None:
                    self.on_chunk(self._chunk(kind, block))
                continue
            data = json.loads(payload)
            if kind == "H":
                if data.get("format") != FORMAT:
                    raise GoleakError(
                        f"the trace converter speaks format {data.get('format')}, this "
                        f"goleak_magic reads {FORMAT}; run scripts/setup.sh to rebuild it."
                    )
                self.columns = data["columns"]
            elif kind == "J":
                self.stacks.add(data.get("stacks") or [])
                self.strings.update({int(i): s for i, s in data.get("strings") or []})
            elif kind == "P" and self.progress is not None:
                self.progress({**data, "creations": self.rows["C"], "transitions": self.rows["T"]})
            elif kind == "E":
                self.summary = data

    def _add(self, kind: str, block: np.ndarray) -> None:
        if kind == "T" and len(self.stacks.agent):
            names = self.columns["T"]
            mine = np.isin(block[names.index("stack_id")], self.stacks.agent)
            self.agent_goids.update(block[names.index("goid")][mine].tolist())
        self.rows[kind] += block.shape[1]
        if self.on_chunk is not None:  # the rows go there only
            return
        chunks = self.chunks[kind]
        chunks.append(block)
        while self.rows[kind] > self.max_rows and len(chunks) > 1:
            n = chunks.popleft().shape[1]
            self.rows[kind] -= n
            self.dropped[kind] += n

    def _chunk(self, kind: str, block: np.ndarray) -> TraceTables:
        """One frame's rows as tables, with the stacks they name. The helper sends a
        flush's transitions first, so the agent's goroutines are known by then."""
        names = self.columns[kind]
        cols = {name: block[i] for i, name in enumerate(names)}
        st = self.stacks.arrays()
        agents = np.fromiter(self.agent_goids, dtype=np.int64)
        if kind == "C":
            c, t = _creations(cols, st, 0, agents), tables.empty("transitions")
        else:
            c, t = tables.empty("creations"), _transitions(cols, st, self.strings, agents)
        ids = np.unique(cols["stack_id"]).tolist()
        stacks = {i: self.stacks.entries[i][0] for i in ids if i >= 0}
        return TraceTables(c, t, pd.DataFrame(columns=FLIP_COLUMNS), stacks)

    def cols(self, kind: str) -> dict[str, np.ndarray]:
        names = self.columns[kind]
        blocks = self.chunks[kind]
        whole = np.concatenate(blocks, axis=1) if blocks else np.empty((len(names), 0), "<i8")
        return {name: whole[i] for i, name in enumerate(names)}


def convert(
    source: Path | IO[bytes],
    *,
    what: str = "the trace",
    anchor_ns: int | None = None,
    progress: Progress | None = None,
    seq0: int = 0,
    tracecv: str = "",
    save: Path | None = None,
    max_rows: int = MAX_ROWS,
    on_chunk: Chunk | None = None,
) -> TraceTables:
    """Convert a trace (a file path, or a binary stream read to its end) into tables.

    ``anchor_ns``: the wall clock of the first event for traces that carry no clock
    (Go < 1.25); default the capture's start (a file: its modification time).
    ``progress`` gets ``{events, bytes, creations, transitions}`` as the helper goes.
    A trace that breaks part way keeps what came before (``broken`` says where); one
    that yields nothing raises GoleakError with one sentence. ``save``: a stream's raw
    bytes are also written there (a file, for ``go tool trace``). Each table keeps its
    newest ``max_rows`` rows (in chunks), so a long stream stays bounded; the summary's
    ``dropped_creations`` / ``dropped_transitions`` count the rest. ``on_chunk`` gets
    the rows as tables as the helper writes them out (on this thread), and then they are
    not kept: the result has the summary (no ``dropped_*``), flips and stacks but no rows.
    """
    if anchor_ns is None:
        is_path = isinstance(source, Path)
        anchor_ns = source.stat().st_mtime_ns if is_path else time.time_ns()
    exe = find_tracecv(tracecv)
    args = [exe, "-anchor", str(anchor_ns)]
    if isinstance(source, Path):
        args.append(str(source))
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL if isinstance(source, Path) else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    feeder = None
    feed_error: list[BaseException] = []
    if not isinstance(source, Path):
        feeder = threading.Thread(
            target=_feed, args=(source, proc.stdin, feed_error, save), name="goleak-tracecv-feed",
            daemon=True,
        )  # fmt: skip
        feeder.start()
    reader = _Reader(proc.stdout, progress, max_rows, on_chunk)  # type: ignore[arg-type]
    try:
        reader.run()
    finally:
        if feeder is not None:
            feeder.join()
        proc.stdout.close()  # type: ignore[union-attr]
        err = proc.stderr.read().decode(errors="replace").strip()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        proc.wait()
    sumry = reader.summary
    if sumry is None:
        raise GoleakError(f"the trace converter failed on {what}: {err or 'no output'}.")
    return _tables(reader, sumry, what, seq0, feed_error)


def _feed(
    src: IO[bytes], dst: IO[bytes] | None, errors: list[BaseException], save: Path | None
) -> None:
    assert dst is not None
    copy = open(save, "wb") if save is not None else None
    # read1: what has come so far, so a quiet program's trace reaches the helper as it
    # comes rather than once CHUNK bytes have
    read = getattr(src, "read1", src.read)
    try:
        while chunk := read(CHUNK):
            if copy is not None:
                copy.write(chunk)
            dst.write(chunk)
    except BrokenPipeError:
        pass  # the helper gave up on the trace: its end frame says why
    except OSError as e:  # the connection broke: what came before is kept
        errors.append(e)
    finally:
        with contextlib.suppress(OSError):
            dst.close()
        if copy is not None:
            copy.close()


def _tables(
    reader: _Reader, sumry: dict[str, Any], what: str, seq0: int, feed_error: list[BaseException]
) -> TraceTables:
    error = sumry.get("error") or (str(feed_error[0]) if feed_error else None)
    if sumry.get("unsupported"):
        raise GoleakError(
            f"{what} was written by a Go whose trace format this goleak_magic's parser does "
            f"not read ({error}); update goleak_magic and run scripts/setup.sh, or use "
            "%dlvtrace."
        )
    if error and sumry.get("events", 0) == 0:
        raise GoleakError(
            f"{what} is not a Go execution trace ({error}); give the output of runtime/trace, "
            "go test -trace or /debug/pprof/trace."
        )
    st = reader.stacks.arrays()
    if reader.on_chunk is None:  # else the rows' bound is that of the tables they land in
        sumry["dropped_creations"], sumry["dropped_transitions"] = reader.dropped.values()
    agents = np.fromiter(reader.agent_goids, dtype=np.int64)
    creations = _creations(reader.cols("C"), st, seq0 + reader.dropped["C"], agents)
    transitions = _transitions(reader.cols("T"), st, reader.strings, agents)
    flips = pd.DataFrame(sumry.get("flips") or [], columns=["site_id", "from", "to", "count"])
    flips = pd.DataFrame(
        {
            "site": st["site"].take(_index(flips["site_id"].to_numpy(np.int64), st["none"])),
            "from_state": [STATES[i] for i in flips["from"]],
            "to_state": [STATES[i] for i in flips["to"]],
            "count": flips["count"].astype("int64"),
        }
    )
    flips = flips.groupby(["site", "from_state", "to_state"], dropna=False, as_index=False)[
        "count"
    ].sum()
    broken = None
    if error:
        broken = (
            f"{what} broke after {sumry.get('generations', 0)} whole generations "
            f"({sumry.get('events', 0)} events, near byte {sumry.get('bytes', 0)}): {error}; "
            "everything before the break is kept."
        )
    stacks = {i: e[0] for i, e in reader.stacks.entries.items()}
    return TraceTables(
        creations, transitions, flips, stacks, sumry, broken, frozenset(reader.agent_goids)
    )


# -- capture ------------------------------------------------------------------------


class Capture:
    """A trace being captured and converted on a background thread.

    ``stop()`` ends the capture (the source flushes the rest first); ``wait()`` and
    ``result()`` wait for the tables. Nothing blocks the caller. ``on_chunk`` gets the
    rows as they come, on that thread (see ``convert``).
    """

    def __init__(
        self,
        opener: Callable[[], tuple[IO[bytes], Callable[[], None]]],
        what: str,
        progress: Progress | None = None,
        tracecv: str = "",
        save: Path | None = None,
        open_now: bool = True,
        max_rows: int = MAX_ROWS,
        on_chunk: Chunk | None = None,
    ) -> None:
        self.what = what
        self.on_chunk = on_chunk
        self.save = save
        self.max_rows = max_rows
        self.progress = progress
        self.started_ns = time.time_ns()
        self.ended_ns: int | None = None
        self._opener = opener
        self._tracecv = tracecv
        self._stop: Callable[[], None] | None = None
        self._stop_requested = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._result: TraceTables | None = None
        self._error: BaseException | None = None
        # The agent's source opens here so that a refusal (no agent, a trace already
        # running) raises now and, once this returns, the target is traced; a URL, which
        # answers only when its seconds are over, opens on the thread.
        self._stream: IO[bytes] | None = None
        if open_now:
            self._stream, self._stop = opener()
        self._thread = threading.Thread(target=self._run, name="goleak-gotrace", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._stream is None:
                self._stream, self._stop = self._opener()
            self._result = convert(
                self._stream, what=self.what, anchor_ns=self.started_ns,
                progress=self.progress, tracecv=self._tracecv, save=self.save,
                max_rows=self.max_rows, on_chunk=self.on_chunk,
            )  # fmt: skip
        except BaseException as e:  # handed to whoever asks for the result
            self._error = e
        finally:
            if self._stream is not None:
                with contextlib.suppress(OSError):
                    self._stream.close()
            self.ended_ns = time.time_ns()
            self._done.set()

    def stop(self) -> Capture:
        with self._lock:
            if not self._stop_requested and self._stop is not None:
                self._stop_requested = True
                self._stop()
        return self

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> TraceTables:
        if not self._done.wait(timeout):
            raise GoleakError(f"{self.what} is still being captured; stop it first or wait longer.")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _agent_request(
    sock_path: str | Path, url_path: str, timeout: float, streaming: bool = False
) -> Any:
    try:
        client = agent.AgentClient(sock_path)
        return client.stream(url_path, timeout) if streaming else client.open(url_path, timeout)
    except OSError as e:
        raise GoleakError(
            f"the goleak_magic agent at {sock_path} did not answer ({e}); the target must be "
            "launched with the agent (not --no-agent); else use --url, --file or %dlvtrace."
        ) from e


def _refused(resp: http.client.HTTPResponse, what: str) -> GoleakError:
    text = resp.read().decode(errors="replace").strip()
    resp.close()
    return GoleakError(f"{what} was refused by the target: {text}.")


def stream(
    sock_path: str | Path,
    *,
    seconds: float | None = None,
    progress: Progress | None = None,
    tracecv: str = "",
    save: Path | None = None,
    max_rows: int = MAX_ROWS,
    on_chunk: Chunk | None = None,
) -> Capture:
    """Stream the target's execution trace through its agent for ``seconds`` (None: until
    ``stop()``), converting as it comes (``save``: also keep the raw trace there;
    ``on_chunk``: see ``convert``). Once this returns, the target is being traced."""
    find_tracecv(tracecv)  # a missing converter says so before the target is traced

    def opener() -> tuple[IO[bytes], Callable[[], None]]:
        query = f"?seconds={seconds}" if seconds else ""
        # no read timeout: a quiet program may write nothing for a while
        resp, sock = _agent_request(sock_path, "/goleak/trace" + query, 10.0, streaming=True)
        if resp.status != 200:
            raise _refused(resp, "streaming the execution trace")
        sock.settimeout(None)

        def stop() -> None:
            # half-close: the agent sees the end, stops the trace and sends the rest
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)

        return resp, stop

    return Capture(
        opener, "the streamed trace", progress, tracecv, save, max_rows=max_rows,
        on_chunk=on_chunk,
    )  # fmt: skip


def flight_start(
    sock_path: str | Path, *, min_age: float = 10.0, max_bytes: int = 10 << 20
) -> None:
    """Start the target's flight recorder (Go >= 1.25): it keeps at least the last
    ``min_age`` seconds, at most ``max_bytes`` (the smaller wins)."""
    resp = _agent_request(
        sock_path, f"/goleak/flight/start?min_age={min_age}&max_bytes={int(max_bytes)}", 10.0
    )
    if resp.status == 501:
        text = resp.read().decode(errors="replace").strip()
        raise FlightUnsupported(f"{text}; stream the trace instead (%gotrace N --duration S).")
    if resp.status != 200:
        raise _refused(resp, "starting the flight recorder")
    resp.read()
    resp.close()


def flight_freeze(
    sock_path: str | Path,
    *,
    progress: Progress | None = None,
    tracecv: str = "",
    max_rows: int = MAX_ROWS,
) -> TraceTables:
    """The flight recorder's window, now, as tables (the recorder keeps running)."""
    exe = find_tracecv(tracecv)
    at = time.time_ns()
    resp = _agent_request(sock_path, "/goleak/flight/freeze", 60.0)
    if resp.status == 501:
        raise FlightUnsupported(
            f"{resp.read().decode(errors='replace').strip()}; stream the trace instead."
        )
    if resp.status != 200:
        raise GoleakError(
            f"freezing the flight recorder failed: {resp.read().decode(errors='replace').strip()}"
            " (start it with --flight SECONDS first)."
        )
    with resp:
        return convert(resp, what="the flight recorder's window", anchor_ns=at,
                       progress=progress, tracecv=exe, max_rows=max_rows)  # fmt: skip


def flight_stop(sock_path: str | Path) -> None:
    resp = _agent_request(sock_path, "/goleak/flight/stop", 10.0)
    with resp:
        resp.read()


def metrics(sock_path: str | Path) -> dict[str, Any]:
    """The target's runtime/metrics goroutine counts now: ``time`` and those of
    goroutines, running, runnable, waiting, not_in_go, created, gomaxprocs that its Go
    has (per-state counts: Go 1.26+)."""
    resp = _agent_request(sock_path, "/goleak/metrics", 10.0)
    with resp:
        if resp.status != 200:
            raise GoleakError(
                "this target's agent has no /goleak/metrics; relaunch it with this goleak_magic."
            )
        data = json.loads(resp.read())
    out: dict[str, Any] = {"time": pd.Timestamp(data["time_ns"], unit="ns", tz="UTC")}
    out.update({METRICS[k]: v for k, v in data["metrics"].items() if k in METRICS})
    return out


def from_url(
    url: str,
    *,
    seconds: float = 5.0,
    progress: Progress | None = None,
    tracecv: str = "",
    save: Path | None = None,
    max_rows: int = MAX_ROWS,
    on_chunk: Chunk | None = None,
) -> Capture:
    """A live service's own ``/debug/pprof/trace`` for ``seconds`` (``url`` is that
    endpoint, or the ``/debug/pprof/`` index), converting as it comes."""
    find_tracecv(tracecv)
    if "/debug/pprof/trace" not in url:
        url = url.rstrip("/") + ("/trace" if url.rstrip("/").endswith("pprof") else
                                 "/debug/pprof/trace")  # fmt: skip
    if "seconds=" not in url:
        url += ("&" if "?" in url else "?") + f"seconds={seconds:g}"

    def opener() -> tuple[IO[bytes], Callable[[], None]]:
        try:
            resp = urllib.request.urlopen(url, timeout=seconds + 30)
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace").strip()
            raise GoleakError(f"{url} answered {e.code} ({body[:200]}); check the URL.") from e
        except (OSError, ValueError) as e:
            raise GoleakError(
                f"{url} could not be read ({e}); check that the service runs and serves "
                "net/http/pprof there."
            ) from e
        return resp, lambda: None  # the service ends it after its seconds

    return Capture(
        opener, url, progress, tracecv, save, open_now=False, max_rows=max_rows,
        on_chunk=on_chunk,
    )  # fmt: skip


def from_file(
    path: str | Path,
    *,
    progress: Progress | None = None,
    tracecv: str = "",
    max_rows: int = MAX_ROWS,
) -> TraceTables:
    """A trace file (``go test -trace``, ``trace.Start`` output, a saved
    ``/debug/pprof/trace``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise GoleakError(f"{path} is not a file; give the path of a Go execution trace.")
    return convert(p, what=str(path), progress=progress, tracecv=tracecv, max_rows=max_rows)
