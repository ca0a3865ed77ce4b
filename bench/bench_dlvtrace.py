"""Cost per recorded goroutine creation: %dlvtrace's tracer against `dlv trace`.

One run measures, on the shipped ``spawn`` example creating N goroutines in a tight loop:

  native     the program alone
  dlv trace  ``dlv trace --stack 8 'runtime\\.newproc$'`` (stops on entry and return)
  ours       goleak_magic's tracer, stack 8 (one stop per creation, new goroutine id too)

Each traced variant runs with -n N and with -n 0; (T(N) - T(0)) / N is the cost of one
creation without start-up. Rounds interleave the variants so load on the machine hits
all of them alike; the medians are compared. Ours must record exactly N creations at
spawn's go statement (checked).

    python bench/bench_dlvtrace.py [--n 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goleak_magic import build
from goleak_magic.delve import server as dlv
from goleak_magic.delve.tracer import Stacks, Trace
from goleak_magic.tools import find_dlv, find_go

SPAWN_SITE = re.compile(r"^main\.main .*/spawn/main\.go:\d+$")


def native(binary: Path, n: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(binary), "-n", str(n), "-hold", "1ms"], check=True, capture_output=True)
    return time.perf_counter() - t0


def dlv_trace(binary: Path, n: int) -> tuple[float, int]:
    """Seconds, and how many newproc entries it printed."""
    argv = [find_dlv(), "trace", "--exec", str(binary), "--stack", "8", r"runtime\.newproc$",
            "--", "-n", str(n), "-hold", "1ms"]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    # entries look like "> goroutine(1): runtime.newproc(...)" (with ANSI bold codes)
    entries = len(re.findall(r"^> goroutine\(\d+\): \S*runtime\.newproc\(", out.stderr, re.M))
    return took, entries


def ours(binary: Path, n: int, workdir: Path) -> tuple[float, int]:
    """Seconds from starting dlv to the program's exit, and creations at spawn's site."""
    rows: list[dict] = []
    t0 = time.perf_counter()
    server = dlv.exec_binary(binary, ["-n", str(n), "-hold", "1ms"], workdir=workdir).acquire()
    trace = Trace(server, rows.extend, stacks=Stacks(), depth=8).start()
    if not trace.wait(600):
        raise SystemExit("the traced program did not finish within 600 s")
    took = time.perf_counter() - t0
    if trace.state != "exited":
        raise SystemExit(f"trace ended badly: {trace.summary()}")
    return took, sum(1 for r in rows if r["site"] and SPAWN_SITE.match(r["site"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="goroutines the program creates")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench_dlvtrace-"))
    binary = build.build("example:spawn", workdir, go=find_go()).binary
    print(f"spawn -n {a.n}, {a.rounds} rounds, {binary.name} built with {find_go()}")
    per: dict[str, list[float]] = {"native": [], "dlv trace": [], "ours": []}
    for r in range(a.rounds):
        per["native"].append((native(binary, a.n) - native(binary, 0)) / a.n)
        t_n, entries = dlv_trace(binary, a.n)
        t_0, _ = dlv_trace(binary, 0)
        if entries < a.n:
            raise SystemExit(f"dlv trace printed {entries} newproc entries, expected >= {a.n}")
        per["dlv trace"].append((t_n - t_0) / a.n)
        o_n, count = ours(binary, a.n, workdir)
        o_0, _ = ours(binary, 0, workdir)
        if count != a.n:
            raise SystemExit(f"ours recorded {count} creations at spawn's site, expected {a.n}")
        per["ours"].append((o_n - o_0) / a.n)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1] * 1e3:.3f} ms" for k, v in per.items()))
    med = {k: statistics.median(v) for k, v in per.items()}
    print(f"native     {med['native'] * 1e6:9.2f} us per creation")
    print(f"dlv trace  {med['dlv trace'] * 1e3:9.3f} ms per creation (anchor)")
    print(f"ours       {med['ours'] * 1e3:9.3f} ms per creation, count == {a.n} checked")
    ratio = med["ours"] / med["dlv trace"]
    print(f"ratio ours / dlv trace = {ratio:.2f} (target <= 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
