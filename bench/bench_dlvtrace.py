"""Cost per recorded goroutine creation: %dlvtrace's tracer against `dlv trace`.

One run measures, on the shipped ``spawn`` example creating N goroutines in a tight loop
after a start-up delay (so the debugger is attached first, as with ``%golaunch``):

  native     the program alone (its own report: N creations took X)
  dlv trace  ``dlv trace -p PID --timestamp --stack 8 'runtime\\.newproc$'``
             (two stops per creation: entry and return)
  ours       goleak_magic's tracer, stack 8 (one stop per creation, new goroutine id too)

Per creation = (time of the last creation - time of the first) / (N - 1), from each
tool's own event timestamps, so attaching and start-up are left out alike. Rounds
interleave the two tracers so load on the machine hits both alike; medians are
compared. Both must see exactly N creations at spawn's go statement (checked).

    python bench/bench_dlvtrace.py [--n 1000] [--rounds 3] [--delay 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import re
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
from goleak_magic.tools import find_dlv, find_go

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


def per_creation(times_ns: list[int], n: int, who: str, delay: float) -> tuple[float, float]:
    """(mean, median) seconds between consecutive creations; the median shrugs off the
    moments another process had the CPU."""
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


def dlv_trace(binary: Path, n: int, delay: float) -> tuple[float, float]:
    prog = start(binary, n, delay)
    argv = [find_dlv(), "trace", "-p", str(prog.pid), "--timestamp", "--stack", "8",
            r"runtime\.newproc$"]  # fmt: skip
    out = ANSI.sub("", subprocess.run(argv, capture_output=True, text=True).stderr)
    prog.wait()
    times = []
    # An entry ("> goroutine(1): runtime.newproc(...)") whose stack holds spawn's go statement.
    for block in re.split(r"\n(?=\d{4}-\d\d-\d\dT)", out):
        m = EVENT.match(block)
        if m and f"main.go:{SPAWN_LINE}\n" in block:
            secs = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.UTC).timestamp()
            times.append(int(secs) * 10**9 + int((m.group(2) or "0").ljust(9, "0")[:9]))
    return per_creation(times, n, "dlv trace", delay)


def ours(binary: Path, n: int, delay: float, workdir: Path) -> tuple[float, float]:
    prog = start(binary, n, delay)
    rows: list[dict] = []
    server = dlv.attach(prog.pid, workdir=workdir).acquire()
    trace = Trace(server, rows.extend, stacks=Stacks(), depth=8).start()
    if not trace.wait(600) or trace.state != "exited":
        raise SystemExit(f"our trace ended badly: {trace.summary()}")
    prog.wait()
    site = f"main.main {SPAWN_GO}:{SPAWN_LINE}"
    return per_creation([r["time"] for r in rows if r["site"] == site], n, "ours", delay)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="goroutines the program creates")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--delay", type=float, default=4.0, help="seconds before it creates them")
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench_dlvtrace-"))
    go = find_go()
    binary = build.build("example:spawn", workdir, go=go).binary
    print(f"spawn -n {a.n}, {a.rounds} rounds; {binary} ({build.go_version(go)})", flush=True)
    per: dict[str, list[tuple[float, float]]] = {"native": [], "dlv trace": [], "ours": []}
    started = time.monotonic()
    for r in range(a.rounds):
        per["native"].append(native(binary, a.n))
        per["dlv trace"].append(dlv_trace(binary, a.n, a.delay))
        per["ours"].append(ours(binary, a.n, a.delay, workdir))
        line = ", ".join(f"{k} {v[-1][0] * 1e3:.3f} ms (median gap {v[-1][1] * 1e3:.3f})"
                         for k, v in per.items())  # fmt: skip
        print(f"round {r + 1}: {line}", flush=True)
    mean = {k: statistics.median(x[0] for x in v) for k, v in per.items()}
    gap = {k: statistics.median(x[1] for x in v) for k, v in per.items()}
    print("per creation (median over rounds)   mean          median gap")
    print(f"native       {mean['native'] * 1e6:12.3f} us {gap['native'] * 1e6:12.3f} us")
    for k in ("dlv trace", "ours"):
        print(f"{k:12s} {mean[k] * 1e3:12.3f} ms {gap[k] * 1e3:12.3f} ms")
    print(f"ratio ours / dlv trace: {mean['ours'] / mean['dlv trace']:.2f} (mean), "
          f"{gap['ours'] / gap['dlv trace']:.2f} (median gap); target <= 0.50; "
          f"count == {a.n} checked for both; {time.monotonic() - started:.0f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
