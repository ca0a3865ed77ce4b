"""The table schemas: one per kind of table, shared by every module.

Every table has a ``time`` column (``datetime64[ns, UTC]``, wall clock) so all of them
join on one axis. A column name means the same thing in every table it appears in.

sched       one row per ``SCHED`` line of ``GODEBUG=schedtrace``
            time, t_ms          wall clock; runtime ms since the first schedtrace line
            gomaxprocs .. idlethreads, runqueue   the line's own fields (missing -> <NA>)
            local_runq          sum of the per-P local run queues
            runq_per_p          tuple of per-P local run-queue lengths
            with --detail (scheddetail=1), aggregated from that tick's G lines (the
            row is added when the next SCHED line starts: one interval after the tick;
            the tick a program was printing when it ended is not a row, as its end may
            have cut the G lines):
            goroutines          live goroutines (every G not idle, dead or dead-extra)
            g_runnable, g_running, g_syscall, g_waiting, g_leaked   per-state counts
            g_other             G lines whose status is none of the above (kept, not dropped)
waits       long table, one row per (tick, wait reason) with --detail
            time, t_ms, wait_reason, count
creations   one row per goroutine creation seen by %dlvtrace or the execution tracer
            time, seq, goid (creator), new_goid, site ("func file:line" of the go
            statement), site_func, site_file, site_line, stack (tuple of "func file:line"),
            stack_id (interned per target: one id, one stack, whichever source saw
            it), runtime (True for creations by the runtime
            itself), source ("delve" or "trace")
transitions one row per goroutine state change kept from an execution trace
            (goleak_magic.exectrace): time, goid, from_state, to_state (undetermined,
            dead, runnable, running, waiting, syscall), reason ("chan receive",
            "sync.Mutex.Lock", ...: why it blocked; category), site (the go statement that
            created the goroutine, NA if it predates the trace), at ("func file:line" of
            the stack's innermost frame outside the runtime: where it blocked, or who
            woke it; category), stack_id (interned with the target's other stacks: a
            block's is where it blocked, an unblock's is the waker's; NA when none).
            Kept: blocks (-> waiting), unblocks (waiting ->) and ends
            (-> dead); running<->runnable flips and syscalls only as counts per site.
metrics     one row per poll of the target's runtime/metrics through the agent
            (goleak_magic.gotrace: %gotrace --metrics MS, --on-spike): time, goroutines
            (live), running, runnable, waiting, not_in_go (syscalls and cgo), created
            (since start), gomaxprocs; the per-state counts need Go 1.26+ (else NA).
            Cheap at any interval, unlike scheddetail's line per goroutine.
sites       one row per creation site, from the creations (goleak_magic.creations.sites)
            site, site_func, site_file, site_line, runtime, count, alive (of them still
            alive at the newest listing; NA if none), rate_per_s, first, last, stacks
            (distinct creator stacks), example_stack (the most common one)
calls       one row per function entry seen by %dlvtrace --func (kept by that trace)
            time, seq, goid, func, args (tuple of "name=value"), caller ("func
            file:line" of the call), stack, stack_id
goroutines  one row per goroutine per snapshot (the goleak_magic agent's own left out)
            snapshot (its number, per target), time (when taken), source (agent, pprof,
            delve), goid, status (running, runnable, waiting, syscall, leaked, ...),
            wait_reason ("chan send", ...), wait_minutes (blocked this long; NA under a
            minute or unknown), locked (locked to its thread), top ("func file:line" of
            the innermost frame), user_top (innermost frame outside GOROOT), created_by
            (the function with the go statement), created_at ("file:line" of that go
            statement), parent_goid, start_func, labels (pprof labels dict, when the dump
            shows them), leaked (the GC proved it can never wake up: Go 1.26+),
            stack (tuple of "func file:line", with --stacks)
fleet_goroutines  a fleet's snapshots (goleak_magic.fleet): goroutines plus instance
            (Prometheus' instance label) and run (1, then 2, ... after each restart seen
            between rounds)
instances   one row per instance of a fleet (goleak_magic.fleet.instances)
            instance, job, goroutines (latest sample), growth_per_min, rise, concordance,
            climbing, samples, last_seen, labels (target labels), scrape_url
instance_series  the go_goroutines samples behind them: instance, time, goroutines
fleet_suspects  one row per creation site some instance shows (goleak_magic.fleet)
            site, instances, of, alive, leaked_proven, growth_per_min, blocked_at, score,
            why, affected, unaffected (instance names), example_stack, evidence
tests       one row per test of %goleak tests (goleak_magic.testrun)
            test (its name), runs (how many times it ran: -test.count x -test.cpu
            entries, as far as it got), outcome (pass, fail, hung: past -test.timeout,
            crashed: the binary died), leaked (goroutines of the package's own left in
            the final snapshot after the test returned, the runtime's, testing's and the
            agent's left out; for hung/crashed, those blocked in the exit dump; NA when
            the package's own TestMain left no snapshot), leaked_proven (of them, proven
            by the GC), top_site ("created_by created_at" of the site with the most
            proven, else most, of them), blocked_at ("wait reason at func file:line" of
            that site), evidence (the plain-language line behind the row)
suspects    one row per creation site
            site, alive, growth_per_min, first_seen, persisted, leaked_proven,
            blocked_at, example_stack, score, suspect (the rule in
            goleak_magic.analysis says it leaks), why (which part of the rule: proven,
            left behind by the tests, deadlock, growth), evidence
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

TIME = "datetime64[ns, UTC]"

SCHEMAS: dict[str, dict[str, str]] = {
    "sched": {
        "time": TIME,
        "t_ms": "int64",
        "gomaxprocs": "Int64",
        "idleprocs": "Int64",
        "threads": "Int64",
        "spinningthreads": "Int64",
        "needspinning": "Int64",
        "idlethreads": "Int64",
        "runqueue": "Int64",
        "local_runq": "Int64",
        "runq_per_p": "object",
        "goroutines": "Int64",
        "g_runnable": "Int64",
        "g_running": "Int64",
        "g_syscall": "Int64",
        "g_waiting": "Int64",
        "g_leaked": "Int64",
        "g_other": "Int64",
    },
    "waits": {
        "time": TIME,
        "t_ms": "int64",
        "wait_reason": "string",
        "count": "int64",
    },
    "creations": {
        "time": TIME,
        "seq": "int64",
        "goid": "Int64",
        "new_goid": "Int64",
        "site": "string",
        "site_func": "string",
        "site_file": "string",
        "site_line": "Int64",
        "stack": "object",
        "stack_id": "int64",
        "runtime": "bool",
        "source": "string",
    },
    "transitions": {
        "time": TIME,
        "goid": "int64",
        "from_state": "category",
        "to_state": "category",
        "reason": "category",
        "site": "category",
        "at": "category",
        "stack_id": "Int64",
    },
    "metrics": {
        "time": TIME,
        "goroutines": "Int64",
        "running": "Int64",
        "runnable": "Int64",
        "waiting": "Int64",
        "not_in_go": "Int64",
        "created": "Int64",
        "gomaxprocs": "Int64",
    },
    "sites": {
        "site": "string",
        "site_func": "string",
        "site_file": "string",
        "site_line": "Int64",
        "runtime": "bool",
        "count": "int64",
        "alive": "Int64",
        "rate_per_s": "float64",
        "first": TIME,
        "last": TIME,
        "stacks": "int64",
        "example_stack": "object",
    },
    "calls": {
        "time": TIME,
        "seq": "int64",
        "goid": "Int64",
        "func": "string",
        "args": "object",
        "caller": "string",
        "stack": "object",
        "stack_id": "int64",
    },
    "goroutines": {
        "snapshot": "int64",
        "time": TIME,
        "source": "string",
        "goid": "int64",
        "status": "string",
        "wait_reason": "string",
        "wait_minutes": "Int64",
        "locked": "bool",
        "top": "string",
        "user_top": "string",
        "created_by": "string",
        "created_at": "string",
        "parent_goid": "Int64",
        "start_func": "string",
        "labels": "object",
        "leaked": "bool",
        "stack": "object",
    },
    "tests": {
        "test": "string",
        "runs": "int64",
        "outcome": "string",
        "leaked": "Int64",
        "leaked_proven": "Int64",
        "top_site": "string",
        "blocked_at": "string",
        "evidence": "string",
    },
    "suspects": {
        "site": "string",
        "alive": "int64",
        "growth_per_min": "float64",
        "first_seen": TIME,
        "persisted": "int64",
        "leaked_proven": "int64",
        "blocked_at": "string",
        "example_stack": "object",
        "score": "float64",
        "suspect": "bool",
        "why": "string",
        "evidence": "string",
    },
    "instances": {
        "instance": "string",
        "job": "string",
        "goroutines": "Int64",
        "growth_per_min": "float64",
        "rise": "float64",
        "concordance": "float64",
        "climbing": "bool",
        "samples": "int64",
        "last_seen": TIME,
        "labels": "object",
        "scrape_url": "string",
    },
    "instance_series": {"instance": "string", "time": TIME, "goroutines": "float64"},
    "fleet_suspects": {
        "site": "string",
        "instances": "int64",
        "of": "int64",
        "alive": "int64",
        "leaked_proven": "int64",
        "growth_per_min": "float64",
        "blocked_at": "string",
        "score": "float64",
        "why": "string",
        "affected": "object",
        "unaffected": "object",
        "example_stack": "object",
        "evidence": "string",
    },
}
SCHEMAS["fleet_goroutines"] = {**SCHEMAS["goroutines"], "instance": "string", "run": "int64"}


def empty(kind: str) -> pd.DataFrame:
    """An empty DataFrame with the columns and dtypes of ``kind``."""
    return frame(kind, [])


def frame(kind: str, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows (dicts; missing keys become NA) as a DataFrame conforming to ``kind``."""
    schema = SCHEMAS[kind]
    df = pd.DataFrame.from_records(list(rows), columns=list(schema))
    return conform(kind, df)


def conform(kind: str, df: pd.DataFrame) -> pd.DataFrame:
    """Cast ``df`` to the schema of ``kind`` (columns in schema order)."""
    schema = SCHEMAS[kind]
    out = {}
    for col, dtype in schema.items():
        s = df[col] if col in df else pd.Series([None] * len(df), index=df.index)
        if dtype == TIME:
            # pandas >= 3 infers s/ms/us units; the schema promises ns on every table.
            s = pd.to_datetime(s, utc=True).dt.as_unit("ns")
        elif dtype == "bool":
            # via the nullable dtype: a column of NaN (absent in old rows) becomes False
            s = s.astype("boolean").fillna(False).astype(bool)
        elif dtype == "object":
            # missing is None (not NaN), and an all-missing column stays object, not float64
            s = s.astype(object)
            s = s.where(s.notna(), None)
        else:
            s = s.astype(dtype)
        out[col] = s
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


def objects(values: list[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (np.array would turn equal-length tuples into 2-d)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


class RowLog:
    """A thread-safe, bounded row buffer behind one live table.

    Writers (reader threads) append dicts, or whole DataFrames already conforming to the
    kind (``add``: a converted execution trace, with no dict per row); readers get a
    fresh DataFrame, rows in the order they came. The newest ``maxlen`` rows are kept so
    a long recording stays bounded; ``dropped`` says how many of the oldest were let go.
    """

    def __init__(self, kind: str, maxlen: int = 1_000_000) -> None:
        self.kind = kind
        self.maxlen = maxlen
        # runs of dict rows (deques: the oldest go one by one) and DataFrame chunks
        self._parts: deque[deque[Mapping[str, Any]] | pd.DataFrame] = deque()
        self._held = 0
        self._lock = threading.Lock()
        self.appended = 0
        self._cache: tuple[int, pd.DataFrame] | None = None

    def append(self, row: Mapping[str, Any]) -> None:
        self.extend((row,))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        rows = list(rows)
        with self._lock:
            last = self._parts[-1] if self._parts else None
            if isinstance(last, deque):
                last.extend(rows)
            else:
                self._parts.append(deque(rows))
            self._grew(len(rows))

    def add(self, df: pd.DataFrame) -> None:
        """Append a whole DataFrame of rows (conforming to the kind)."""
        if len(df):
            with self._lock:
                self._parts.append(df)
                self._grew(len(df))

    def _grew(self, n: int) -> None:
        self.appended += n
        self._held += n
        while self._held > self.maxlen:
            head, over = self._parts[0], self._held - self.maxlen
            if len(head) <= over:
                self._parts.popleft()
                self._held -= len(head)
            else:
                if isinstance(head, deque):
                    for _ in range(over):
                        head.popleft()
                else:
                    self._parts[0] = head.iloc[over:]
                self._held -= over

    @property
    def dropped(self) -> int:
        return self.appended - self._held

    def __len__(self) -> int:
        return self._held

    def frame(self) -> pd.DataFrame:
        with self._lock:
            if self._cache is not None and self._cache[0] == self.appended:
                return self._cache[1].copy()
            parts = [list(p) if isinstance(p, deque) else p for p in self._parts]
            n = self.appended
        frames = [frame(self.kind, p) if isinstance(p, list) else p for p in parts]
        if len(frames) == 1:
            df = frames[0]
        elif frames:
            df = conform(self.kind, pd.concat(frames, ignore_index=True))
        else:
            df = empty(self.kind)
        df = df.reset_index(drop=True)
        self._cache = (n, df)
        return df.copy()


class FrameLog:
    """A thread-safe, bounded log of DataFrame chunks (one per snapshot).

    The ``goroutines`` table grows by whole snapshots; keeping each as one DataFrame
    costs a few bytes per goroutine instead of a dict. When the total passes ``maxlen``
    rows the oldest snapshots go first (the newest is always kept); ``dropped`` counts
    their rows. ``append``/``extend`` take row dicts, as ``RowLog`` does.
    """

    def __init__(self, kind: str, maxlen: int = 1_000_000) -> None:
        self.kind = kind
        self.maxlen = maxlen
        self._chunks: deque[pd.DataFrame] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self.appended = 0
        self._cache: tuple[int, pd.DataFrame] | None = None

    def add(self, df: pd.DataFrame) -> None:
        """Append one chunk (already conforming to ``kind``)."""
        with self._lock:
            self._chunks.append(df)
            self._rows += len(df)
            self.appended += len(df)
            while self._rows > self.maxlen and len(self._chunks) > 1:
                self._rows -= len(self._chunks.popleft())

    def append(self, row: Mapping[str, Any]) -> None:
        self.add(frame(self.kind, [row]))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        df = frame(self.kind, rows)
        if len(df):
            self.add(df)

    @property
    def dropped(self) -> int:
        return self.appended - self._rows

    def __len__(self) -> int:
        return self._rows

    def frame(self) -> pd.DataFrame:
        with self._lock:
            if self._cache is not None and self._cache[0] == self.appended:
                return self._cache[1].copy()
            chunks = list(self._chunks)
            n = self.appended
        df = pd.concat(chunks, ignore_index=True) if chunks else empty(self.kind)
        self._cache = (n, df)
        return df.copy()
