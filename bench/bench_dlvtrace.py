"""Cost per recorded goroutine creation: %dlvtrace's tracer against `dlv trace`.

One run measures, on the shipped ``spawn`` example creating N goroutines in a tight loop
after a start-up delay (so the debugger is attached first, as with ``%golaunch``):

  native     the program alone (its own report: N creations took X)
  dlv trace  ``dlv trace -p PID --timestamp --stack 8 'runtime\\.newproc$'``
             (two stops per creation: entry and return)
  ours       goleak_magic's tracer, stack 8 (one stop per creation, new goroutine id too)

Per creation, three ways:
  mean        (time of the last creation - time of the first) / (N - 1), from each
              tool's own event timestamps (attaching and start-up left out alike)
  median gap  the median time between consecutive creations: what one costs when no
              other process takes the CPU away (this machine is shared)
  cpu         (CPU(N) - CPU(0)) / N of everything involved: the program, dlv, and for
              ours this Python process (reader thread included)
  switches    the same for context switches (voluntary + involuntary): the count of
              hand-offs a stop costs, which load on the machine hardly changes
Rounds interleave the tracers so load on the machine hits both alike; medians over
rounds are compared. Both must see exactly N creations at spawn's go statement.

    python bench/bench_dlvtrace.py [--n 1000] [--rounds 3] [--delay 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goleak_magic import build, process
from goleak_magic.build import examples_dir
from goleak_magic.delve import server as dlv
from goleak_magic.delve.tracer import Stacks, Trace
from goleak_magic.tools import find_dlv, find_go, go_version

SPAWN_GO = examples_dir() / "spawn" / "main.go"
SPAWN_LINE = next(
    i + 1 for i, ln in enumerate(SPAWN_GO.read_text().splitlines()) if ln.strip() == "go park(ch)"
)
EVENT = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:]+)(?:\.(\d+))?Z > goroutine\(\d+\): ", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def start(binary: Path, n: int, delay: float) -> subprocess.Popen[bytes]:
    return process.spawn(
        [str(binary), "-n", str(n), "-delay", f"{delay}s", "-hold", "1ms"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def usage() -> tuple[float, int]:
    """CPU seconds and context switches of this process and every child it has reaped."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
        own.ru_nvcsw + own.ru_nivcsw + kids.ru_nvcsw + kids.ru_nivcsw,
    )


def since(before: tuple[float, int]) -> tuple[float, int]:
    now = usage()
    return now[0] - before[0], now[1] - before[1]


def per_creation(times_ns: list[int], n: int, who: str, delay: float) -> tuple[float, float]:
    """(mean, median) seconds between consecutive creations."""
    if n == 0:
        return 0.0, 0.0
    if len(times_ns) != n:
        raise SystemExit(
            f"{who} saw {len(times_ns)} creations at spawn's go statement, expected {n}"
            f" (attaching slower than --delay {delay:g}s? raise it)"
        )
    gaps = [b - a for a, b in itertools.pairwise(times_ns)]
    return (times_ns[-1] - times_ns[0]) / (n - 1) / 1e9, statistics.median(gaps) / 1e9


def native(binary: Path, n: int) -> tuple[float, float]:
    out = subprocess.run([str(binary), "-n", str(n), "-hold", "1ms"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    took = re.search(r"created=\d+ in (\S+)", out).group(1)  # a Go duration, e.g. 1.2ms
    value, unit = re.fullmatch(r"([\d.]+)(\D+)", took).groups()
    mean = float(value) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit] / n
    return mean, mean


Run = tuple[float, float, tuple[float, int]]


def dlv_trace(binary: Path, n: int, delay: float) -> Run:
    """(mean, median gap, (CPU seconds, switches) of program + dlv trace)."""
    u0 = usage()
    prog = start(binary, n, delay)
    argv = [find_dlv(), "trace", "-p", str(prog.pid), "--timestamp", "--stack", "8",
            r"runtime\.newproc$"]  # fmt: skip
    out = ANSI.sub("", subprocess.run(argv, capture_output=True, text=True).stderr)
    prog.wait()
    used = since(u0)
    times = []
    # An entry ("> goroutine(1): runtime.newproc(...)") whose stack holds spawn's go statement.
    for block in re.split(r"\n(?=\d{4}-\d\d-\d\dT)", out):
        m = EVENT.match(block)
        if m and f"main.go:{SPAWN_LINE}\n" in block:
            secs = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.UTC).timestamp()
            times.append(int(secs) * 10**9 + int((m.group(2) or "0").ljust(9, "0")[:9]))
    return (*per_creation(times, n, "dlv trace", delay), used)


def delve_rows(prog: subprocess.Popen[bytes], workdir: Path, who: str) -> list[dict]:
    """Every creation goleak_magic's tracer (stack 8) records in ``prog`` until it exits."""
    rows: list[dict] = []
    server = dlv.attach(prog.pid, workdir=workdir).acquire()
    trace = Trace(server, rows.extend, stacks=Stacks(), depth=8).start()
    if not trace.wait(600) or trace.state != "exited":
        raise SystemExit(f"{who} ended badly: {trace.summary()}")
    prog.wait()
    return rows


def ours(binary: Path, n: int, delay: float, workdir: Path) -> Run:
    """(mean, median gap, (CPU seconds, switches) of program + dlv + this process)."""
    u0 = usage()
    rows = delve_rows(start(binary, n, delay), workdir, "our trace")
    used = since(u0)  # dlv was reaped when the trace ended
    site = f"main.main {SPAWN_GO}:{SPAWN_LINE}"
    times = [r["time"] for r in rows if r["site"] == site]
    return (*per_creation(times, n, "ours", delay), used)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="goroutines the program creates")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--delay", type=float, default=4.0, help="seconds before it creates them")
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench_dlvtrace-"))
    go = find_go()
    binary = build.build("example:spawn", workdir, go=go).binary
    print(f"spawn -n {a.n}, {a.rounds} rounds; {binary} ({go_version(go)})", flush=True)
    per: dict[str, list[tuple[float, float, float, float]]] = {"dlv trace": [], "ours": []}
    native_s = []
    started = time.monotonic()
    for r in range(a.rounds):
        native_s.append(native(binary, a.n)[0])
        for name, run in (("dlv trace", dlv_trace), ("ours", ours)):
            args = (workdir,) if run is ours else ()
            mean, gap, (cpu, cs) = run(binary, a.n, a.delay, *args)  # type: ignore[operator]
            _, _, (cpu0, cs0) = run(binary, 0, a.delay, *args)  # type: ignore[operator]
            per[name].append((mean, gap, (cpu - cpu0) / a.n, (cs - cs0) / a.n))
        line = ", ".join(
            f"{k} {m * 1e3:.3f} / {g * 1e3:.3f} / {c * 1e3:.3f} ms / {x:.0f}"
            for k, v in per.items()
            for m, g, c, x in v[-1:]
        )
        print(f"round {r + 1} (mean / median gap / cpu / switches): {line}", flush=True)
    med = {k: [statistics.median(x[i] for x in v) for i in range(4)] for k, v in per.items()}
    print(f"native: {statistics.median(native_s) * 1e6:.3f} us per creation")
    print("per creation     mean ms   median gap ms   cpu ms   switches")
    for k, (m, g, c, x) in med.items():
        print(f"{k:12s} {m * 1e3:10.3f} {g * 1e3:13.3f} {c * 1e3:10.3f} {x:8.0f}")
    labels = ("mean", "median gap", "cpu", "switches")
    ratios = "  ".join(
        f"{lbl} {o / t:.2f}"
        for lbl, o, t in zip(labels, med["ours"], med["dlv trace"], strict=True)
    )
    print(f"ratio ours / dlv trace: {ratios} (target <= 0.50); count == {a.n} checked for "
          f"both; {time.monotonic() - started:.0f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
