"""Fleet snapshot: N loopback instances x G goroutines against one instance's snapshot.

One run starts N instances of the shipped ``fleetservice`` example, each parking G
goroutines on a worker pool (``-idle G``, no client load), and measures:

  one     ``snapshot_fleet`` of a single instance (the anchor: the same code path, the
          same dump size), median of the rounds
  fleet   ``snapshot_fleet`` of all N instances (default pool), median of the rounds;
          the rounds interleave with ``one`` so load on the machine hits both alike
  serial  N single-instance snapshots one after the other (N x the median of one), and
          the floor of a fleet snapshot in one Python process: N x the parse (dump parser
          + DataFrame, best of 3) of one instance's dump text, fetched beforehand; and the
          Go side's floor here, where the N instances dump on the same cores as the
          notebook: N x one dump's fetch time (best of 3) / the cores
  memory  the first fleet snapshot (after one small uncounted one): its peak memory,
          counted where it lives — Python objects and numpy arrays (tracemalloc's peak)
          plus Arrow buffers (the string columns are pyarrow-backed; the Arrow pool's
          peak above what it held before) — against the resulting DataFrame's
          ``memory_usage(deep=True)``; the sum of two peaks is an upper bound. The
          process's peak RSS growth (VmHWM, reset before) is shown as a cross-check:
          it also counts allocator caches and freed pages not yet returned.

Targets (issue 12): fleet <= 3x one; peak <= 1.5x the DataFrame.

    python bench/bench_fleet.py [--instances 20] [--goroutines 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow as pa

from goleak_magic.dumps.model import to_frame
from goleak_magic.dumps.text import parse_dump
from goleak_magic.fleet import snapshot_fleet
from goleak_magic.fleet.local import Instance, build_fleetservice


def goroutines(addr: str) -> int:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("go_goroutines "):
                return int(float(line.split()[1]))
    return 0


def timed(rows: list[dict[str, object]]) -> tuple[float, int]:
    t0 = time.perf_counter()
    snap = snapshot_fleet(rows, steady=None)
    took = time.perf_counter() - t0
    if snap.failures:
        sys.exit("snapshot failed: " + "; ".join(snap.failures))
    return took, len(snap.goroutines)


def rss_kib(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process, in KiB."""
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith(field + ":"))
    return int(line.split()[1])


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measured(rows: list[dict[str, object]]) -> tuple[pd.DataFrame, int, int, int]:
    """(frame, tracemalloc peak, Arrow pool peak growth, peak RSS growth), in bytes."""
    pool = pa.default_memory_pool()
    arrow0 = pool.bytes_allocated()
    reset_peak()
    rss0 = rss_kib("VmRSS")
    tracemalloc.start()
    snap = snapshot_fleet(rows, steady=None)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = (rss_kib("VmHWM") - rss0) * 1024
    return snap.goroutines, py_peak, pool.max_memory() - arrow0, rss_peak


def parse_s(dump: bytes) -> float:
    """Best of 3: the dump parser and the DataFrame, as the fleet snapshot does it."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        cols, _ = parse_dump(dump)
        to_frame(cols, snapshot=1, time=pd.Timestamp.now(tz="UTC"), source="pprof")
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--goroutines", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_fleetservice(Path(tmp))
        fleet = [
            Instance(binary, "-idle", str(a.goroutines), "-rate", "0") for _ in range(a.instances)
        ]
        try:
            deadline = time.monotonic() + 120
            while min(goroutines(i.addr) for i in fleet) < a.goroutines:
                if time.monotonic() > deadline:
                    sys.exit("the instances did not park their goroutines in 120 s")
                time.sleep(0.2)
            rows: list[dict[str, object]] = [
                {"instance": i.addr, "climbing": True, "labels": {}} for i in fleet
            ]
            timed(rows[:1])  # uncounted: first dumps, imports, page faults
            df, py_peak, arrow_peak, rss_peak = measured(rows)
            one, many = [], []
            for _ in range(a.rounds):
                t, n_one = timed(rows[:1])
                one.append(t)
                t, n_many = timed(rows)
                many.append(t)
            url = f"http://{fleet[0].addr}/debug/pprof/goroutineleak?debug=2"
            fetches = []
            for _ in range(3):
                t0 = time.perf_counter()
                with urllib.request.urlopen(url, timeout=60) as r:
                    dump = r.read()
                fetches.append(time.perf_counter() - t0)
            t_fetch = min(fetches)
            t_parse = parse_s(dump)
        finally:
            for i in fleet:
                i.stop()
    deep = int(df.memory_usage(deep=True).sum())
    peak = py_peak + arrow_peak
    t_one, t_many = statistics.median(one), statistics.median(many)
    print(f"fleet of {a.instances} instances x {a.goroutines:,} goroutines, {a.rounds} rounds")
    print(f"one instance:  {t_one:.3f} s  ({n_one:,} rows)")
    print(f"fleet:         {t_many:.3f} s  ({n_many:,} rows)")
    print(f"ratio fleet/one: {t_many / t_one:.2f}x  (target <= 3x)")
    n = a.instances
    serial, floor = n * t_one, n * t_parse
    print(f"{n} single snapshots in a row: {serial:.3f} s  -> fleet/serial {t_many / serial:.2f}x")
    print(
        f"parse floor ({n} x {t_parse:.3f} s): {floor:.3f} s  -> fleet/floor {t_many / floor:.2f}x"
    )
    # The instances dump on this machine's cores too: n dumps cost n x one fetch of CPU.
    cores = len(os.sched_getaffinity(0))
    go_floor = n * t_fetch / cores
    print(
        f"Go side: one dump fetched in {t_fetch:.3f} s (best of 3); {n} of them on {cores} "
        f"cores: {go_floor:.3f} s -> fleet/(Go floor + parse floor) "
        f"{t_many / (go_floor + floor):.2f}x"
    )
    mib = 2**20
    print(f"DataFrame memory_usage(deep=True): {deep / mib:.1f} MiB")
    print(f"peak: Python+numpy {py_peak / mib:.1f} MiB + Arrow {arrow_peak / mib:.1f} MiB")
    print(f"  -> peak/DataFrame {peak / deep:.2f}x  (target <= 1.5x)")
    print(f"peak RSS growth {rss_peak / mib:.1f} MiB -> {rss_peak / deep:.2f}x the DataFrame")


if __name__ == "__main__":
    main()
