"""``%gotrace`` on targets: the execution tracer's rows in a target's tables.

``start`` streams a target's trace through its agent (``exectrace.stream``) or keeps its
flight recorder running (``--flight``); ``GoTrace.freeze`` turns the recorder's window
into rows, by hand or when ``SpikeWatch`` sees the goroutine count jump (``--on-spike``).
``from_url`` / ``from_file`` read a live ``/debug/pprof/trace`` or a trace file into a
target (a :class:`~goleak_magic.record.Record` when none is named). ``MetricsPoller``
samples runtime/metrics into the ``metrics`` table (``--metrics MS``).

Landing: a converted trace's creations join the target's ``creations`` (``source`` =
"trace", numbered after the rows already there), its transitions its ``transitions``;
stack ids are interned through the target's ``Stacks`` (shared with ``%dlvtrace``), so
one ``stack_id`` is one stack on the target whichever source saw it. A stream's (or a
URL's) rows land as the converter writes them out, within about a second of the runtime
emitting them, so ``%goleak timeline N --live`` shows them while the trace runs; at its
end (``--stop``, ``--duration``, the program's exit) the trace's window is the rows it
landed that the target's bounded table still holds. A flight recorder's rows land at each
freeze.

The spike rule (``--on-spike``): the live goroutine count, polled every ``SPIKE_POLL_S``
through the agent's runtime/metrics, rises at least max(``analysis.MIN_RISE``, half the
median of the last ``SPIKE_BASELINE_S`` seconds) above that median. The first poll that
does freezes the flight recorder once (the recorder keeps running; arm again with
``--on-spike``); ``GoTrace.spike`` then says when the spike was seen and how long the
table took to be there.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis, creations, exectrace, tables
from .delve.tracer import Stacks
from .errors import GoleakError
from .exectrace import FlightUnsupported, TraceTables
from .record import Record

SPIKE_POLL_S = 0.2
SPIKE_BASELINE_S = 5.0
SPIKE_MIN_HISTORY_S = 1.0  # polls before the rule is armed (a baseline needs a few)
SPIKE_SHARE = 0.5


def need_agent(target: Record) -> str:
    """The target's agent socket, or one sentence saying what works instead."""
    if target.agent_socket is None:
        how = "attached" if target.attached else "built without the agent (--no-agent)"
        if target.recorded is not None or target.pid is None:
            how = "a recording, with no process behind it"
        raise GoleakError(
            f"{target.name} is {how}, so its trace cannot be read through the agent; use "
            f"%gotrace --url URL --name {target.name} (its /debug/pprof/trace), --file "
            f"trace.out, or %dlvtrace {target.name}."
        )
    return target.agent_socket


def land(target: Record, tt: TraceTables, after: pd.Timestamp | None = None) -> pd.DataFrame:
    """Put a converted trace's rows into ``target``'s tables; return its creations
    numbered and interned as in the target's table. Rows at or before ``after`` (what an
    earlier freeze of the same recorder landed already) are returned, not landed again."""
    if target.stacks is None:
        target.stacks = Stacks()
    ids = sorted(tt.stacks)
    # trace stack id -> the target's; the last slot maps "no stack" (-1) to -1
    remap = np.full((max(ids) + 2) if ids else 1, -1, dtype=np.int64)
    remap[ids] = target.stacks.intern_texts([tt.stacks[i] for i in ids])
    log = target.tables["creations"]
    c = tt.creations.copy()
    c["stack_id"] = remap[c["stack_id"].to_numpy(np.int64)]
    new = c["time"] > after if after is not None else np.ones(len(c), bool)
    c.loc[new, "seq"] = np.arange(log.appended, log.appended + int(new.sum()), dtype=np.int64)
    log.add(c[new].reset_index(drop=True))  # type: ignore[union-attr]
    t = tt.transitions
    if after is not None:
        t = t[t["time"] > after]
    if len(t):
        sid = t["stack_id"].to_numpy(np.int64, na_value=-1)
        mapped = remap[sid]
        t = t.assign(stack_id=pd.arrays.IntegerArray(mapped, mapped < 0))
        target.tables["transitions"].add(t)  # type: ignore[union-attr]
    return c


@dataclass
class Spike:
    """What ``--on-spike`` saw and did."""

    at: pd.Timestamp  # the poll that crossed the rule
    count: int  # live goroutines then
    baseline: float  # the median it rose above
    ready_s: float | None = None  # spike -> the frozen window's rows in the table
    error: str | None = None  # why the freeze failed, if it did

    def __str__(self) -> str:
        head = (
            f"spike at {self.at:%H:%M:%S.%f} UTC: {self.count:,} goroutines (median "
            f"{self.baseline:,.0f} before)"
        )
        if self.error:
            return f"{head}; the freeze failed: {self.error}"
        done = f"; the window's table was there {self.ready_s:.2f} s later" if self.ready_s else ""
        return head + done


def spike_rule(history: list[float], count: float) -> float | None:
    """The baseline ``count`` spiked above (the median of ``history``), or None."""
    if not history:
        return None
    base = float(np.median(history))
    return base if count - base >= max(analysis.MIN_RISE, SPIKE_SHARE * base) else None


class GoTrace:
    """One ``%gotrace`` of one target: a stream, a flight recorder, a URL or a file."""

    def __init__(self, target: Record, mode: str, what: str) -> None:
        self.target = target
        self.mode = mode  # "stream", "flight", "url" or "file"
        self.what = what
        self.notes: list[str] = []
        self.started_ns = time.time_ns()
        self.ended_ns: int | None = None
        self.window: pd.DataFrame = tables.empty("creations")  # the newest rows landed
        self.result: TraceTables | None = None  # the newest converted trace
        self.error: str | None = None
        self.spike: Spike | None = None
        self.progress: dict[str, int] = {}
        self.capture: exectrace.Capture | None = None
        self._watch: SpikeWatch | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()  # one freeze at a time
        self.on_done: Callable[[GoTrace], None] | None = None
        self._until: pd.Timestamp | None = None  # the newest row landed (freezes overlap)
        self._landed_seqs: list[tuple[int, int]] = []  # a stream's chunks: first, last seq
        self.let_go = 0  # a stream's creations the target's table no longer holds (max_rows)

    # ---- state ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(
        self, timeout: float | None = None, progress: Callable[[str], None] | None = None
    ) -> bool:
        """True once the trace has ended (its rows landed); with ``progress`` it gets a
        progress line now and then, and Ctrl-C stops the trace (its rows stay)."""
        if progress is None:
            return self._done.wait(timeout)

        def interrupted() -> None:
            self.stop()
            self._done.wait(60)

        return creations.wait_with_progress(
            self._done.wait, self.progress_text, interrupted, timeout, progress
        )

    def progress_text(self) -> str:
        p = self.progress
        secs = ((self.ended_ns or time.time_ns()) - self.started_ns) / 1e9
        return (
            f"{self.mode} trace of {self.target.name}: {secs:.1f} s, {p.get('events', 0):,} "
            f"events, {p.get('creations', 0):,} creations, {p.get('bytes', 0) / 1e6:,.1f} MB"
        )

    def summary(self) -> str:
        if self.error:
            return f"{self.mode} trace of {self.target.name} failed: {self.error}"
        if self.mode == "flight" and self.result is None:
            state = "recording" if self.running else "stopped"
            return f"flight recorder of {self.target.name}: {state}, nothing frozen yet"
        s = self.result.summary if self.result is not None else {}
        parts = [
            f"{self.mode} trace of {self.target.name}: {len(self.window):,} creations",
            f"{s.get('transitions', 0):,} transitions kept",
            f"{s.get('events', 0):,} events",
        ]
        if self.let_go:
            parts.append(
                f"the oldest {self.let_go:,} of its creations were let go (the table keeps "
                f"the newest {self.target.tables['creations'].maxlen:,}: max_rows)"
            )
        if self.result is not None and self.result.broken:
            parts.append(self.result.broken)
        if self.spike is not None:
            parts.append(str(self.spike))
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"<gotrace {self.summary()}>"

    def frame(self) -> pd.DataFrame:
        """The newest rows this trace landed (a freeze's window, or the whole capture)."""
        return self.window.copy()

    def sites(self) -> pd.DataFrame:
        span = None
        if len(self.window):
            t = self.window["time"].astype("int64")
            span = (int(t.min()), int(t.max()))
        live = creations.live_set(self.target, None)
        return creations.sites(self.window, live=live, span=span)

    # ---- ending -----------------------------------------------------------------------
    def _land(self, tt: TraceTables, after: pd.Timestamp | None) -> pd.DataFrame:
        rows = land(self.target, tt, after=after)
        ends = [df["time"].max() for df in (tt.creations, tt.transitions) if len(df)]
        if self._until is not None:
            ends.append(self._until)
        if ends:
            self._until = max(ends)
        return rows

    def _landed(self, tt: TraceTables) -> pd.DataFrame:
        """A whole trace (a freeze, a capture's end): what is newer than the rows landed
        already lands; all of it is the window."""
        self.result = tt
        self.window = self._land(tt, self._until)
        return self.window

    def _chunk(self, tt: TraceTables) -> None:
        """A streamed frame's rows, as they come: all new (a frame's transitions and
        creations interleave in time, so no time cut applies)."""
        rows = self._land(tt, None)
        if len(rows):  # land numbers a chunk's rows consecutively
            self._landed_seqs.append((int(rows["seq"].iloc[0]), int(rows["seq"].iloc[-1])))

    def _streamed(self, tt: TraceTables) -> None:
        """A stream's end: its rows all landed as chunks (``tt`` holds none), so the
        window is the rows it landed that the target's table still holds, less the
        agent's goroutines found out only later."""
        self.result = tt
        c = self.target.creations
        seq = c["seq"].to_numpy(np.int64)
        spans = np.array(self._landed_seqs or [(0, -1)], dtype=np.int64).reshape(-1, 2)
        first, last = spans[:, 0], spans[:, 1]
        i = np.searchsorted(first, seq, side="right") - 1
        mine = (i >= 0) & (seq <= last[np.maximum(i, 0)]) & (c["source"] == "trace").to_numpy()
        landed = int((last - first + 1).sum())
        self.let_go = landed - int(mine.sum())
        mine &= ~c["new_goid"].isin(sorted(tt.agent_goids)).to_numpy(bool)
        self.window = c[mine].reset_index(drop=True)

    def _finish(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.error = str(error).rstrip(".")
        self.ended_ns = time.time_ns()
        self._done.set()
        if self.on_done is not None:
            self.on_done(self)

    def _follow(self) -> None:
        """Land a stream's rows when it ends (stop, duration, the program's exit)."""
        assert self.capture is not None
        self.capture.wait()
        try:
            self._streamed(self.capture.result())
        except GoleakError as e:
            self._finish(e)
            return
        self._finish()

    def stop(self) -> GoTrace:
        """End the capture (a stream flushes first) or the flight recorder."""
        if self._watch is not None:
            self._watch.stop()
        if self.mode == "flight":
            if self.running:
                with contextlib.suppress(GoleakError):
                    exectrace.flight_stop(need_agent(self.target))
                self._finish()
            return self
        if self.capture is not None:
            self.capture.stop()
            self._done.wait(120)
        return self

    def freeze(self) -> pd.DataFrame:
        """The flight recorder's window now, landed in the target's tables."""
        if self.mode != "flight" or not self.running:
            raise GoleakError(
                f"{self.target.name} has no flight recorder running; start one with "
                f"%gotrace {self.target.name} --flight SECONDS."
            )
        with self._lock:
            tt = exectrace.flight_freeze(need_agent(self.target))
            return self._landed(tt)

    def arm(self) -> None:
        """Freeze once when the goroutine count spikes (``spike_rule``); again after a
        spike, for the next one (``spike`` then starts empty)."""
        if self._watch is not None and self._watch.running:
            return
        self.spike = None
        self._watch = SpikeWatch(self)


class _Poller:
    """A daemon thread running ``_run``, which waits on ``_stop`` between polls."""

    def __init__(self, thread_name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        raise NotImplementedError


class SpikeWatch(_Poller):
    """Polls runtime/metrics and freezes the flight recorder at the first spike."""

    def __init__(self, trace: GoTrace) -> None:
        self.trace = trace
        super().__init__("goleak-on-spike")

    def _run(self) -> None:
        tr = self.trace
        sock = need_agent(tr.target)
        seen: deque[tuple[float, float]] = deque()
        first = time.monotonic()
        while not self._stop.wait(SPIKE_POLL_S) and tr.running:
            try:
                m = exectrace.metrics(sock)
            except GoleakError:
                return  # the target is gone: nothing to freeze
            now, count = time.monotonic(), float(m["goroutines"])
            while seen and seen[0][0] < now - SPIKE_BASELINE_S:
                seen.popleft()
            base = spike_rule([c for _, c in seen], count)
            if base is not None and now - first >= SPIKE_MIN_HISTORY_S:
                tr.spike = Spike(m["time"], int(count), base)
                try:
                    tr.freeze()
                    tr.spike.ready_s = (pd.Timestamp.now(tz="UTC") - m["time"]).total_seconds()
                except GoleakError as e:
                    tr.spike.error = str(e)
                return
            seen.append((now, count))


class MetricsPoller(_Poller):
    """runtime/metrics goroutine counts into the target's ``metrics`` table every
    ``every`` seconds, until stopped or the target is gone."""

    def __init__(self, target: Record, every: float) -> None:
        self.target = target
        self.every = every
        self.sock = need_agent(target)
        exectrace.metrics(self.sock)  # a target without the endpoint says so now
        super().__init__("goleak-metrics")

    def stop(self) -> None:
        super().stop()
        self._thread.join(5)

    def _run(self) -> None:
        log = self.target.tables["metrics"]
        while True:
            try:
                log.append(exectrace.metrics(self.sock))
            except GoleakError:
                return
            if self._stop.wait(self.every):
                return


# ---- starting -----------------------------------------------------------------------
_lock = threading.Lock()  # one %gotrace starts at a time per process


def _check_free(target: Record) -> None:
    prev = target.gotrace
    if prev is not None and prev.running:
        raise GoleakError(
            f"{target.name} already has a {prev.mode} trace running; stop it with "
            f"%gotrace --stop {target.name} first."
        )


def _positive(value: float | None, what: str) -> None:
    if value is not None and value <= 0:
        raise GoleakError(f"{what} takes a positive number of seconds, e.g. 5.")


def start(
    target: Record,
    *,
    duration: float | None = None,
    flight: float | None = None,
    on_spike: bool = False,
    save: Path | None = None,
    on_done: Callable[[GoTrace], None] | None = None,
) -> GoTrace:
    """Stream ``target``'s execution trace (for ``duration`` seconds, else until
    stopped), or with ``flight`` keep its flight recorder holding that many seconds
    (``on_spike``: frozen at the first spike). A Go without the flight recorder streams
    instead, with a note saying so."""
    _positive(duration, "duration (--duration)")
    _positive(flight, "flight (--flight)")
    if on_spike and flight is None:
        prev = target.gotrace
        if prev is not None and prev.running and prev.mode == "flight":
            prev.arm()  # its recorder runs: watch for the next spike
            return prev
        raise GoleakError(
            "on_spike (--on-spike) freezes the flight recorder: add flight (--flight "
            "SECONDS), e.g. --flight 10 --on-spike."
        )
    sock = need_agent(target)
    if not target.alive:
        raise GoleakError(f"{target.name} is not running ({target.state}); launch it again.")
    with _lock:
        _check_free(target)
        notes = []
        if flight is not None:
            try:
                exectrace.flight_start(sock, min_age=flight)
                handle = GoTrace(target, "flight", "the flight recorder")
                handle.on_done = on_done
                target.gotrace = handle
                if on_spike:
                    handle.arm()
                return handle
            except FlightUnsupported as e:
                notes.append(f"{str(e).split(';')[0]}; streaming the trace instead.")
        handle = GoTrace(target, "stream", "the streamed trace")
        handle.notes = notes
        handle.on_done = on_done

        def progress(p: dict[str, int]) -> None:
            handle.progress = p

        handle.capture = exectrace.stream(
            sock, seconds=duration, progress=progress, save=save, on_chunk=handle._chunk
        )
        target.gotrace = handle
    threading.Thread(target=handle._follow, name="goleak-gotrace-land", daemon=True).start()
    return handle


def from_url(
    target: Record, url: str, *, seconds: float = 5.0, on_done: Callable[[GoTrace], None] | None
) -> GoTrace:
    """Read ``url`` (a live service's /debug/pprof/trace) for ``seconds`` into ``target``."""
    _positive(seconds, "duration (--duration)")
    with _lock:
        _check_free(target)
        handle = GoTrace(target, "url", url)
        handle.on_done = on_done

        def progress(p: dict[str, int]) -> None:
            handle.progress = p

        handle.capture = exectrace.from_url(
            url, seconds=seconds, progress=progress, on_chunk=handle._chunk
        )
        target.gotrace = handle
    threading.Thread(target=handle._follow, name="goleak-gotrace-land", daemon=True).start()
    return handle


def from_file(target: Record, path: str | Path) -> GoTrace:
    """Read a trace file into ``target``."""
    _check_free(target)
    handle = GoTrace(target, "file", str(path))

    def progress(p: dict[str, int]) -> None:
        handle.progress = p

    handle._landed(exectrace.from_file(path, progress=progress))
    handle._finish()
    target.gotrace = handle
    return handle


def metrics(target: Record, every: float | None) -> MetricsPoller | None:
    """Poll ``target``'s runtime/metrics every ``every`` seconds (None or 0: stop)."""
    if target.metrics_poll is not None:
        target.metrics_poll.stop()
        target.metrics_poll = None
    if not every:
        return None
    if every < 0:
        raise GoleakError("metrics_ms (--metrics) takes a positive number of ms, e.g. 250.")
    target.metrics_poll = MetricsPoller(target, every)
    return target.metrics_poll


def stop_all(target: Record) -> None:
    """Stop whatever %gotrace runs on ``target`` (before the target stops)."""
    if target.gotrace is not None and target.gotrace.running:
        target.gotrace.stop()
    metrics(target, None)
