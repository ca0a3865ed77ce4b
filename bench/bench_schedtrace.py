"""Does the schedtrace parser keep up with ``--detail`` on 100,000 live goroutines?

Drives the real thing: ``goleak_magic.session().launch("example:spawn", detail=True)``
with ``spawn -n N`` at a 500 ms interval, then for a window of wall time measures

- the CPU time of our stderr reader thread (``/proc/self/task/<tid>/schedstat``, ns),
  as a share of one core (target: < 25%);
- keeping up: every tick becomes a row with every goroutine in it, the lag from a tick's
  ``time`` to its row showing up stays flat, the bytes waiting in the stderr pipe stay small;
- the anchor, from the same run: the CPU the Go process itself spends (``/proc/<pid>/stat``)
  minus that of the same program under plain schedtrace (no detail, measured first for
  the same window) = the runtime's cost of printing the lines we parse;
- our RSS over the window (bounded for long runs: ``--minutes 10``).

Usage: python bench/bench_schedtrace.py [--minutes M] [-n N] [--interval MS]
"""

from __future__ import annotations

import argparse
import array
import fcntl
import itertools
import os
import statistics
import struct
import termios
import threading
import time
from dataclasses import dataclass, field

import goleak_magic
from goleak_magic.target import Target
from goleak_magic.tools import find_go, go_version

CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(tid: int) -> float:
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def thread_reads(tid: int) -> int | None:
    try:
        with open(f"/proc/self/task/{tid}/io") as f:
            return int(next(ln for ln in f if ln.startswith("syscr:")).split()[1])
    except OSError:
        return None


def process_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
    return kb / 1024


def pipe_backlog(fd: int) -> int:
    buf = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def reader_tid(target: Target) -> int:
    name = f"goleak-err-{target.name}"
    thread = next(t for t in threading.enumerate() if t.name == name)
    assert thread.native_id is not None
    return thread.native_id


def wait_rows(target: Target, cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond(target):
        if time.monotonic() > deadline or not target.alive:
            raise SystemExit(f"gave up waiting for {what} ({target!r})")
        time.sleep(0.05)


@dataclass
class Window:
    wall_s: float = 0.0
    reader_cpu_s: float = 0.0
    go_cpu_s: float = 0.0
    lines: int = 0
    bytes: int = 0
    reads: int | None = None
    rows: list[dict] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)
    # Samples live in arrays: one long-lived int object per sample, allocated among the
    # reader's churn, would pin allocator pools and show up as RSS growth of our own.
    backlogs: array.array = field(default_factory=lambda: array.array("q"))
    rss_mb: array.array = field(default_factory=lambda: array.array("d"))


def measure(target: Target, seconds: float) -> Window:
    """Sample every 10 ms for ``seconds``: rows as they arrive, pipe backlog, RSS."""
    tid = reader_tid(target)
    parser = target.parser
    assert parser is not None and target.pid is not None and target._proc is not None
    fd = target._proc.stderr.fileno()
    log = target.tables["sched"]
    w = Window()
    first = seen = len(log)
    arrivals = array.array("q")  # wall ns at which row first + i showed up
    t0, cpu0, go0 = time.monotonic(), thread_cpu_s(tid), process_cpu_s(target.pid)
    lines0, bytes0, reads0 = parser.lines_seen, parser.bytes_seen, thread_reads(tid)
    next_rss = t0
    while (now := time.monotonic()) - t0 < seconds:
        if (n := len(log)) > seen:  # the rows themselves are read once, at the end
            arrivals.extend([time.time_ns()] * (n - seen))
            seen = n
        w.backlogs.append(pipe_backlog(fd))
        if now >= next_rss:
            w.rss_mb.append(rss_mb())
            next_rss = now + 1.0
        time.sleep(0.01)
    w.wall_s = time.monotonic() - t0
    w.rows = log.frame().iloc[first : first + len(arrivals)].to_dict("records")
    w.lags_s = [(at - row["time"].value) / 1e9 for at, row in zip(arrivals, w.rows, strict=True)]
    w.reader_cpu_s = thread_cpu_s(tid) - cpu0
    w.go_cpu_s = process_cpu_s(target.pid) - go0
    w.lines = parser.lines_seen - lines0
    w.bytes = parser.bytes_seen - bytes0
    reads1 = thread_reads(tid)
    w.reads = None if reads0 is None or reads1 is None else reads1 - reads0
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0, help="measured window (detail run)")
    ap.add_argument("-n", type=int, default=100_000, help="live goroutines")
    ap.add_argument("--interval", type=int, default=500, help="schedtrace interval, ms")
    ap.add_argument("--anchor-s", type=float, default=20.0, help="plain-schedtrace window")
    a = ap.parse_args()
    s = goleak_magic.session()
    args = ["-n", str(a.n)]
    print(f"Go: {go_version(find_go())}")
    print(f"python RSS at start: {rss_mb():.0f} MB, {os.cpu_count()} cores")
    print(f"load average at the start: {os.getloadavg()[0]:.1f} (other work on the machine)")

    # The anchor: the same program, plain schedtrace, same interval.
    plain = s.launch("example:spawn", name="plain", args=args, schedtrace_ms=a.interval)
    wait_rows(plain, lambda t: any("created=" in ln for ln in t.log_lines(5)), 60, "spawn")
    pw = measure(plain, a.anchor_s)
    s.stop("plain")

    t = s.launch("example:spawn", name="detail", detail=True, args=args, schedtrace_ms=a.interval)
    # Warm up: two ticks that see every goroutine.
    wait_rows(
        t,
        lambda t: (t.sched.goroutines >= a.n).sum() >= 2,
        120,
        f"two ticks with {a.n} goroutines",
    )
    w = measure(t, a.minutes * 60)
    s.stop("detail")

    ticks = [r["t_ms"] for r in w.rows]
    gaps = [b - c for c, b in itertools.pairwise(ticks)]
    full = sum(1 for r in w.rows if (r["goroutines"] or 0) >= a.n)
    share = w.reader_cpu_s / w.wall_s
    go_print_s = w.go_cpu_s - pw.go_cpu_s * (w.wall_s / pw.wall_s)
    third = max(1, len(w.lags_s) // 3)
    lag_first = statistics.median(w.lags_s[:third])
    lag_last = statistics.median(w.lags_s[-third:])
    print(f"\n--detail, spawn -n {a.n}, schedtrace={a.interval}ms, window {w.wall_s:.1f}s")
    print(f"  rows {len(w.rows)}, of them with >= {a.n} goroutines: {full}")
    print(
        f"  tick spacing (t_ms deltas) median {statistics.median(gaps):.0f} ms, max {max(gaps)} ms"
    )
    print(
        f"  lag (row arrival minus its time column, which is anchored on the first SCHED "
        f"line's arrival; a detail row comes when the next tick starts, one interval "
        f"later; only its trend counts): median {statistics.median(w.lags_s) * 1000:.0f} ms, "
        f"max {max(w.lags_s) * 1000:.0f} ms; first third {lag_first * 1000:.0f} ms, "
        f"last third {lag_last * 1000:.0f} ms"
    )
    backlog = sorted(w.backlogs)
    print(
        f"  stderr pipe backlog (1 MB pipe): median {backlog[len(backlog) // 2]:,}, "
        f"p99 {backlog[len(backlog) * 99 // 100]:,}, max {backlog[-1]:,} bytes; "
        f"{sum(b > 1 << 19 for b in backlog) / len(backlog):.2%} of samples over 512 KB"
    )
    print(
        f"  parsed {w.lines:,} lines, {w.bytes / 1e6:.0f} MB: "
        f"{w.lines / w.wall_s:,.0f} lines/s wall, {w.lines / w.reader_cpu_s:,.0f} lines/s "
        f"per reader-CPU-second"
    )
    if w.reads:
        print(f"  reads {w.reads:,}, mean {w.bytes / w.reads:,.0f} bytes per read")
    print(f"  reader thread CPU {w.reader_cpu_s:.2f} s = {share:.1%} of one core (target < 25%)")
    print(
        f"  anchor: Go process CPU {w.go_cpu_s:.2f} s with detail, "
        f"{pw.go_cpu_s:.2f} s in {pw.wall_s:.0f} s plain -> runtime printing "
        f"{go_print_s:.2f} s ({w.lines / go_print_s:,.0f} lines/s)"
    )
    print(f"  RATIO our parse CPU / runtime print CPU = {w.reader_cpu_s / go_print_s:.2f}")
    step = max(1, round(len(w.rss_mb) / 10))  # one sample a second: show about ten
    print(
        f"  python RSS over the window (MB, every {step} s): "
        + " ".join(f"{m:.0f}" for m in w.rss_mb[::step])
        + f"; max {max(w.rss_mb):.0f}, last {w.rss_mb[-1]:.0f}"
    )
    p99 = backlog[len(backlog) * 99 // 100]
    keeps_up = lag_last < lag_first + 0.5 and p99 < 1 << 19 and len(w.rows) > 2
    print(f"  keeps up (lag flat, pipe p99 < 512 KB): {'yes' if keeps_up else 'NO'}")
    print(
        f"  rows with fewer than {a.n} goroutines (a tick whose G lines were lost): "
        f"{len(w.rows) - full}"
    )
    print(f"  under 25% of a core: {'yes' if share < 0.25 else 'NO'}")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")
    s.close()


if __name__ == "__main__":
    main()
