"""Streaming parser for ``GODEBUG=schedtrace=MS[,scheddetail=1]`` output on stderr.

Feed it raw bytes as they arrive; it returns finished ``sched`` rows, ``waits`` rows and
the lines that are not schedtrace (the program's own stderr, passed through untouched).

Forms handled (all seen in tests/fixtures): ``[ 0 0 ] schedticks=[ 7 8 ]`` (Go 1.26,
1.27) and ``[0 0]`` (Go 1.22 and older) per-P lists; fields an older runtime lacks
(``needspinning`` before Go 1.20) become NA; ``scheddetail=1`` summaries (no per-P
list, ``gcwaiting=...``) followed by P, M and G lines, with ``nil`` or (before Go 1.20)
``-1`` for absent links. With detail, one tick's G lines (~100k for 100k goroutines) are
aggregated into per-state and per-wait-reason counts by regex calls over whole chunks,
never a Python loop per G line (~2M lines/s in 64 KB chunks; bench/RESULTS.md).

The runtime prints each line in many small writes (one per field), so a program that
writes to stderr at the same time cuts runtime lines in two, e.g.
``SCHED 24ms: gomaxprocs=2 idleprocs=chatty 1301``; a number is always written whole.
Hence: every line starting with ``SCHED `` ends the open tick; a SCHED line cut short is
counted in ``malformed`` and passed through, and if its ``Nms`` survived it still makes
a row from the fields before the cut (the rest NA), unless its ``Nms`` is earlier than
the last row's (a line the program printed). P, M and G lines must match in full;
a cut one is counted malformed, passed through, and not counted. P/M/G lines with no
open tick (its SCHED line was garbled) are the runtime's, not the program's: they are
counted malformed and dropped. A quiet spell (``idle``) neither ends a tick nor cuts a
half-written runtime line: a program a debugger has halted mid-print goes on with the
same line and tick when it runs again.
"""

from __future__ import annotations

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
# waits counts these goroutines by wait reason: per tick it sums to g_waiting + g_leaked
BLOCKED_COLUMNS = {"g_waiting", "g_leaked"}
DETAIL_COLUMNS = ("goroutines", *sorted(set(STATE_COLUMN.values())), "g_other")
MAX_LINE = 1 << 20  # a longer run without a newline is handed over as a line of its own

# The summary, each field nested in the one before so that a line cut short still
# yields the fields before the cut; `end` marks a complete line's last part.
_SUMMARY_RE = re.compile(
    rb"SCHED (?P<t_ms>\d+)(?:ms:"
    rb"(?: gomaxprocs=(?P<gomaxprocs>-?\d+)"
    rb"(?: idleprocs=(?P<idleprocs>-?\d+)"
    rb"(?: threads=(?P<threads>-?\d+)"
    rb"(?: spinningthreads=(?P<spinningthreads>-?\d+)"
    rb"(?: needspinning=(?P<needspinning>-?\d+))?"
    rb"(?: idlethreads=(?P<idlethreads>-?\d+)"
    rb"(?: runqueue=(?P<runqueue>-?\d+)"
    rb"(?P<end> \[(?P<plist>[\d ]*)\](?: schedticks=\[[\d ]*\])?"
    rb"|(?P<detail> gcwaiting=\w+ nmidlelocked=-?\d+ stopwait=-?\d+ sysmonwait=\w+))?"
    rb")?)?)?)?)?)?)?"
)
_ID = rb"(?:nil|-?\d+)"
# One group: the "status(wait reason)" key; the reason may hold parentheses
# ("GC worker (idle)"), so the greedy match runs to the line's last ") m=".
_G_BODY = rb"  G\d+: status=(\d+\([^\n]*\)) m=" + _ID + rb" lockedm=" + _ID
_P_BODY = (
    rb"  P\d+: status=\d+ schedtick=\d+ syscalltick=\d+ m="
    + _ID
    + rb" runqsize=(\d+) gfreecnt=-?\d+ timerslen=\d+"
)
_M_BODY = (
    rb"  M\d+: p=" + _ID + rb" curg=" + _ID + rb" mallocing=-?\d+ throwing=\d+"
    rb" preemptoff=[^\n]* locks=-?\d+ dying=-?\d+ spinning=(?:true|false)"
    rb" blocked=(?:true|false) lockedg=" + _ID
)
# Over a whole chunk: each line is preceded by "\n" (the literal prefix makes the
# search fast) and followed by one (a lookahead, so consecutive lines all match).
_G_LINE = re.compile(b"\n" + _G_BODY + rb"(?=\n)")
_P_LINE = re.compile(b"\n" + _P_BODY + rb"(?=\n)")
_M_LINE = re.compile(b"\n" + _M_BODY + rb"(?=\n)")
_DETAIL_LINE = re.compile(b"|".join((_G_BODY, _P_BODY, _M_BODY)))
_DETAIL_START = re.compile(rb"  [PMG]\d+:")
_SCHED_LINE = re.compile(rb"\nSCHED [^\n]*")
# A partial line that is (the start of) a runtime line: "S", "SCHED 5ms: gomax", " ",
# "  G12", "  G12: status=4(chan". A debugger halts every thread, sysmon mid-print too.
_RUNTIME_HEAD = re.compile(
    rb"S(?:C(?:H(?:E(?:D(?: .*)?)?)?)?)?| {1,2}| {2}[PMG](?:\d+(?::.*)?)?", re.S
)


@dataclass
class Parsed:
    """What one ``feed``/``idle``/``flush`` produced."""

    sched: list[dict[str, Any]] = field(default_factory=list)
    waits: list[dict[str, Any]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    malformed: int = 0

    def extend(self, other: Parsed) -> None:
        self.sched += other.sched
        self.waits += other.waits
        self.other += other.other
        self.malformed += other.malformed


def _parse_summary(line: bytes) -> tuple[dict[str, Any] | None, bool, bool]:
    """(row or None if no ``Nms`` survived, complete?, scheddetail form?)."""
    m = _SUMMARY_RE.match(line)
    if m is None:
        return None, False, False
    row: dict[str, Any] = {"t_ms": int(m["t_ms"])}
    for name in SUMMARY_FIELDS:
        v = m[name]
        row[name] = None if v is None else int(v)
    if m["plist"] is not None:
        runq = tuple(int(x) for x in m["plist"].split())
        row["runq_per_p"] = runq
        row["local_runq"] = sum(runq)
    complete = m["end"] is not None and m.end() == len(line)
    return row, complete, m["detail"] is not None


def parse_summary(line: bytes) -> dict[str, Any] | None:
    """One complete ``SCHED`` line as a row (without ``time``); None for anything else."""
    row, complete, _ = _parse_summary(line.rstrip(b"\r\n"))
    return row if complete else None


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace")


class SchedTraceParser:
    """Incremental parser. ``feed`` bytes in any chunking; ``idle`` on a quiet spell,
    ``flush`` at EOF.

    A tick stays open until the next ``SCHED`` line or ``flush`` ends it, because its
    detail lines can span many reads (and a halt of the program). ``lines_seen`` and
    ``bytes_seen`` count the input.
    """

    def __init__(self) -> None:
        self._tail = b""
        self._tick: dict[str, Any] | None = None
        self._detail = False  # the open tick is a scheddetail one
        self._g: Counter[bytes] = Counter()
        self._p_runq: list[int] = []
        self._last_t_ms = 0
        self.lines_seen = 0
        self.bytes_seen = 0

    def feed(self, data: bytes) -> Parsed:
        self.bytes_seen += len(data)
        out = Parsed()
        cut = data.rfind(b"\n") + 1
        if not cut:
            self._tail += data
            if len(self._tail) > MAX_LINE:
                self.lines_seen += 1
                out.other.append(_decode(self._tail))
                self._tail = b""
            return out
        # One copy; regexes then work on positions in it, never on slices.
        text = b"\n" + self._tail + data
        self._tail = data[cut:]
        self._consume(text, len(text) - len(self._tail) - 1, out)
        return out

    def idle(self) -> Parsed:
        """A quiet spell: hand over the program's partial last line (``partial_line``).

        The open tick stays open: its next line may come after a halt (a debugger stops
        every thread, sysmon mid-print too, for seconds), so only the next SCHED line or
        EOF ends it, and a half-written runtime line waits for its newline.
        """
        out = Parsed()
        if self.partial_line:
            self._hand_over_tail(out)
        return out

    def flush(self) -> Parsed:
        """At EOF: end the open tick and hand over a partial last line."""
        out = Parsed()
        self._hand_over_tail(out)
        self._end_tick(out)
        return out

    def end(self) -> Parsed:
        """At the end of a running program's output (it exited or was stopped): as
        ``flush``, but an open scheddetail tick is dropped, not recorded. The end may
        have cut its G lines (a stop lands mid-print often enough: the runtime writes a
        field per write(2)), and a cut tick would read as a fall in the count."""
        if self._detail:
            self._tick, self._detail = None, False
            self._g.clear()
            self._p_runq = []
        return self.flush()

    def _hand_over_tail(self, out: Parsed) -> None:
        if self._tail:
            text = b"\n" + self._tail + b"\n"
            self._tail = b""
            self._consume(text, len(text) - 1, out)

    @property
    def pending(self) -> bool:
        """An open tick or a partial line: ``flush`` (at EOF) hands both over."""
        return self._tick is not None or bool(self._tail)

    @property
    def holding(self) -> bool:
        """The partial last line may be a runtime line: only its newline or EOF ends it.
        (A program's own partial line that looks like one waits too.)"""
        return bool(self._tail) and _RUNTIME_HEAD.fullmatch(self._tail) is not None

    @property
    def partial_line(self) -> bool:
        """A partial last line that ``idle`` hands over (the program's, e.g. a prompt)."""
        return bool(self._tail) and not self.holding

    @property
    def open_t_ms(self) -> int | None:
        """The open tick's ``Nms``: with scheddetail, a tick's row is complete (and
        returned) only when the next SCHED line starts, one interval after it began."""
        return None if self._tick is None else self._tick["t_ms"]

    def _consume(self, text: bytes, end: int, out: Parsed) -> None:
        """Parse the lines of ``text[:end + 1]``: each follows a "\\n"; text[end] is the
        last one's newline."""
        self.lines_seen += text.count(b"\n", 1, end + 1)
        pos = 0
        for m in _SCHED_LINE.finditer(text, 0, end):
            self._body(text, pos, m.start(), out)
            self._summary(text[m.start() + 1 : m.end()], out)
            pos = m.end()
        self._body(text, pos, end, out)

    def _body(self, text: bytes, a: int, b: int, out: Parsed) -> None:
        """The lines between two SCHED lines: ``text[a:b]``, each line after a "\\n"."""
        if a == b:
            return
        if self._tick is not None:
            keys = _G_LINE.findall(text, a, b + 1)
            runq = _P_LINE.findall(text, a, b + 1)
            n_m = len(_M_LINE.findall(text, a, b + 1))
            if keys or runq or n_m:
                self._detail = True
                self._g.update(keys)
                self._p_runq += map(int, runq)
            if len(keys) + len(runq) + n_m == text.count(b"\n", a, b):
                return  # nothing but detail lines: the usual case
        self._others(text[a + 1 : b].split(b"\n"), out)

    def _others(self, lines: list[bytes], out: Parsed) -> None:
        """Lines that are not all detail lines: pass the program's through, in order."""
        in_tick = self._tick is not None
        for line in lines:
            if line.startswith(b"  ") and _DETAIL_START.match(line):
                whole = _DETAIL_LINE.fullmatch(line) is not None
                if whole and in_tick:
                    continue  # counted by _body
                out.malformed += 1
                if whole:
                    continue  # the runtime's, with no tick to count it in
            out.other.append(_decode(line))

    def _summary(self, line: bytes, out: Parsed) -> None:
        self._end_tick(out)
        row, complete, detail = _parse_summary(line)
        if row is not None and row["t_ms"] < self._last_t_ms:
            row, complete = None, False  # the runtime's clock never goes back: not its line
        if not complete:
            out.malformed += 1
            out.other.append(_decode(line))
        if row is None:
            return
        self._last_t_ms = row["t_ms"]
        if "runq_per_p" in row:  # the plain form: nothing follows it
            out.sched.append(row)
            return
        self._tick = row
        self._detail = detail

    def _end_tick(self, out: Parsed) -> None:
        tick = self._tick
        if tick is None:
            return
        self._tick = None
        if self._detail:
            self._aggregate(tick, out)
        self._detail = False
        out.sched.append(tick)

    def _aggregate(self, tick: dict[str, Any], out: Parsed) -> None:
        counts = dict.fromkeys(DETAIL_COLUMNS, 0)
        reasons: Counter[str] = Counter()
        for key, n in self._g.items():
            paren = key.index(b"(")
            status = int(key[:paren]) & ~G_SCAN
            if status in NOT_LIVE:
                continue
            column = STATE_COLUMN.get(status, "g_other")
            counts["goroutines"] += n
            counts[column] += n
            if column in BLOCKED_COLUMNS:
                reasons[_decode(key[paren + 1 : -1])] += n
        self._g.clear()
        runq, self._p_runq = self._p_runq, []
        # A P line lost to interleaved output would shift every P after it: no list then.
        if runq and tick["gomaxprocs"] in (None, len(runq)):
            tick["runq_per_p"] = tuple(runq)
            tick["local_runq"] = sum(runq)
        tick.update(counts)
        out.waits += [
            {"t_ms": tick["t_ms"], "wait_reason": r, "count": n} for r, n in reasons.most_common()
        ]
