"""Streaming parser for ``GODEBUG=schedtrace=MS[,scheddetail=1]`` output on stderr.

Feed it raw bytes as they arrive; it returns finished ``sched`` rows, ``waits`` rows and
the lines that are not schedtrace (the program's own stderr, passed through untouched).

Forms handled (FACTS.md): ``[ 0 0 ] schedticks=[ 7 8 ]`` (new) and ``[0 0]`` (old) per-P
lists; fields that older runtimes lack (``needspinning``) become NA; ``scheddetail=1``
summaries (no bracket list, ``gcwaiting=...``) followed by P, M and G lines, with ``nil``
or ``-1`` for absent links. With detail, one tick's G lines (~100k for 100k goroutines)
are aggregated into per-state and per-wait-reason counts with regex calls over whole
chunks, never a Python loop per G line, so the parser keeps up with the runtime.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SUMMARY_FIELDS = (
    "gomaxprocs",
    "idleprocs",
    "threads",
    "spinningthreads",
    "needspinning",
    "idlethreads",
    "runqueue",
)

# G status codes (runtime2.go); the 0x1000 bit means "being scanned" by the GC.
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING = 0, 1, 2, 3, 4
G_DEAD, G_COPYSTACK, G_PREEMPTED, G_LEAKED, G_DEADEXTRA = 6, 8, 9, 10, 11
G_SCAN = 0x1000
NOT_LIVE = {G_IDLE, G_DEAD, G_DEADEXTRA}
STATE_COLUMN = {
    G_RUNNABLE: "g_runnable",
    G_RUNNING: "g_running",
    G_SYSCALL: "g_syscall",
    G_WAITING: "g_waiting",
    # copystack and preempted are a waiting goroutine mid-transition
    G_COPYSTACK: "g_waiting",
    G_PREEMPTED: "g_waiting",
    G_LEAKED: "g_leaked",
}
DETAIL_COLUMNS = ("goroutines", *sorted(set(STATE_COLUMN.values())), "g_other")

_SCHED_RE = re.compile(rb"^SCHED (\d+)ms: (.*)$")
_KV_RE = re.compile(rb"(\w+)=(-?\d+)")
_PLIST_RE = re.compile(rb"\[([\d ]*)\]")
# A detail line: two spaces, P/M/G and a number, a colon. Matched with its newline.
_DETAIL_LINE_RE = re.compile(rb"^  [PMG]\d+: [^\n]*\n", re.M)
# G21: status=4(chan receive) m=nil lockedm=nil; the reason itself may hold parentheses
# ("GC worker (idle)"), so the greedy group runs to the last ") m=" of the line.
_G_RE = re.compile(rb"^  G\d+: status=(\d+)\(([^\n]*)\) m=", re.M)
_P_RUNQ_RE = re.compile(rb"^  P\d+: [^\n]*?runqsize=(\d+)", re.M)
_SCHED_START_RE = re.compile(rb"^SCHED ", re.M)


@dataclass
class Parsed:
    """What one ``feed``/``flush`` produced."""

    sched: list[dict[str, Any]] = field(default_factory=list)
    waits: list[dict[str, Any]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    malformed: int = 0

    def extend(self, other: Parsed) -> None:
        self.sched += other.sched
        self.waits += other.waits
        self.other += other.other
        self.malformed += other.malformed


def parse_summary(line: bytes) -> dict[str, Any] | None:
    """One ``SCHED`` line as a row (without ``time``), or None if it is not one."""
    m = _SCHED_RE.match(line.rstrip(b"\r"))
    if not m:
        return None
    rest = m.group(2)
    kv = {k.decode(): int(v) for k, v in _KV_RE.findall(rest)}
    if "gomaxprocs" not in kv:
        return None
    row: dict[str, Any] = {"t_ms": int(m.group(1))}
    for name in SUMMARY_FIELDS:
        row[name] = kv.get(name)
    plist = _PLIST_RE.search(rest)
    if plist is not None:
        runq = tuple(int(x) for x in plist.group(1).split())
        row["runq_per_p"] = runq
        row["local_runq"] = sum(runq)
    return row


class SchedTraceParser:
    """Incremental parser. ``feed`` bytes in any chunking; ``flush`` at idle or EOF.

    A detail tick stays pending until the next ``SCHED`` line or ``flush`` ends it,
    because its G lines can span many reads.
    """

    def __init__(self) -> None:
        self._tail = b""
        self._tick: dict[str, Any] | None = None
        self._g: Counter[tuple[bytes, bytes]] = Counter()
        self._p_runq: list[int] = []
        self.lines_seen = 0
        self.bytes_seen = 0

    def feed(self, data: bytes) -> Parsed:
        self.bytes_seen += len(data)
        buf = self._tail + data
        cut = buf.rfind(b"\n") + 1
        self._tail = buf[cut:]
        out = Parsed()
        if cut:
            self._consume(buf[:cut], out)
        return out

    def flush(self) -> Parsed:
        """End a pending tick and hand over a partial last line (idle or EOF)."""
        out = Parsed()
        if self._tail:
            tail, self._tail = self._tail, b""
            self._consume(tail + b"\n", out)
        self._end_tick(out)
        return out

    @property
    def pending(self) -> bool:
        return self._tick is not None or bool(self._tail)

    def _consume(self, text: bytes, out: Parsed) -> None:
        self.lines_seen += text.count(b"\n")
        # Split at SCHED lines: each piece is one summary plus whatever follows it.
        starts = [m.start() for m in _SCHED_START_RE.finditer(text)]
        if not starts or starts[0] != 0:
            starts.insert(0, 0)
        starts.append(len(text))
        for a, b in itertools.pairwise(starts):
            if a != b:
                self._segment(text[a:b], out)

    def _segment(self, seg: bytes, out: Parsed) -> None:
        if seg.startswith(b"SCHED "):
            nl = seg.index(b"\n")
            self._end_tick(out)
            self._summary(seg[:nl], out)
            seg = seg[nl + 1 :]
            if not seg:
                return
        detail_lines = self._tick is not None and seg.startswith(b"  ")
        if detail_lines:
            self._g.update(_G_RE.findall(seg))
            self._p_runq += [int(x) for x in _P_RUNQ_RE.findall(seg)]
            rest = _DETAIL_LINE_RE.sub(b"", seg)
        else:
            rest = seg
        if not rest:
            return
        lines = rest.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        if lines:
            # The program's own stderr lines can interleave with a tick's G lines; they
            # pass through and the tick stays open until the next SCHED line or flush.
            out.other += [ln.decode("utf-8", "replace") for ln in lines]

    def _summary(self, line: bytes, out: Parsed) -> None:
        row = parse_summary(line)
        if row is None:
            out.malformed += 1
            out.other.append(line.decode("utf-8", "replace"))
            return
        if "runq_per_p" in row:
            out.sched.append(row)
        else:  # scheddetail summary: its P/M/G lines follow
            self._tick = row

    def _end_tick(self, out: Parsed) -> None:
        tick = self._tick
        if tick is None:
            return
        self._tick = None
        counts = dict.fromkeys(DETAIL_COLUMNS, 0)
        reasons: Counter[str] = Counter()
        for (status_b, reason_b), n in self._g.items():
            status = int(status_b) & ~G_SCAN
            if status in NOT_LIVE:
                continue
            counts["goroutines"] += n
            counts[STATE_COLUMN.get(status, "g_other")] += n
            if status in (G_WAITING, G_LEAKED) and reason_b:
                reasons[reason_b.decode("utf-8", "replace")] += n
        self._g.clear()
        if self._p_runq:
            tick["runq_per_p"] = tuple(self._p_runq)
            tick["local_runq"] = sum(self._p_runq)
        self._p_runq = []
        tick.update(counts)
        out.sched.append(tick)
        out.waits += [
            {"t_ms": tick["t_ms"], "wait_reason": r, "count": n} for r, n in reasons.most_common()
        ]
