"""Reading a 1 GB CI log that holds one 100k-goroutine dump (``dumps.dumpfile.read_dumps``).

The dump is captured in the run from a real program: tests/fixtures/exitdumps/running
with ``-n N -panic`` and ``GOTRACEBACK=all`` (N goroutines blocked, then a panic prints
every goroutine). It is put in the middle of generated log lines (timestamped request
logs, some mentioning goroutines, ``go test`` lines) up to the file size, in a temporary
file that is removed after the run.

Each measurement runs in its own Python process, so that its peak RSS is its own:

  ours    ``read_dumps(path)``: finds the dump, parses it into the goroutines columns
  anchor  a plain ``for line in f: pass`` over the same file (binary mode)

After one uncounted pass (the page cache), rounds alternate ours and the anchor; the
best of each is reported, with throughput, the ratio and ours' peak RSS.

    python bench/bench_dumpfile.py [--size-mb 1024] [--n 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "fixtures" / "exitdumps"

OURS = """
import json, resource, sys, time
from goleak_magic.dumps.dumpfile import read_dumps
t0 = time.perf_counter()
dumps = read_dumps(sys.argv[1])
took = time.perf_counter() - t0
print(json.dumps({"s": took, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "dumps": [(d.end, len(d.cols["goid"]), d.first_line) for d in dumps]}))
"""
ANCHOR = """
import json, resource, sys, time
t0 = time.perf_counter()
n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        n += 1
took = time.perf_counter() - t0
print(json.dumps({"s": took, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "lines": n}))
"""


def capture_dump(n: int, work: Path) -> bytes:
    binary = work / "running"
    subprocess.run(["go", "build", "-o", str(binary), "./running"], cwd=PROGRAM, check=True)
    done = subprocess.run(
        [str(binary), "-n", str(n), "-panic"],
        env={**os.environ, "GOTRACEBACK": "all"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False,
    )  # fmt: skip
    assert done.stdout.count(b"\ngoroutine ") >= n, "the program did not dump its goroutines"
    return done.stdout


def noise_block(size: int, rng: random.Random) -> bytes:
    """Log lines as a service and its test runner print them."""
    lines = []
    total = 0
    while total < size:
        m, sec, us = rng.randrange(60), rng.randrange(60), rng.randrange(10**6)
        t = f"2026-12-07T12:{m:02d}:{sec:02d}.{us:06d}Z"
        kind = rng.randrange(10)
        if kind < 6:
            line = (
                f"{t} INFO  http: handler=/api/items/{rng.randrange(10**5)} status=200 "
                f"took={rng.random() * 20:.2f}ms request=r-{rng.randrange(10**8)}"
            )
        elif kind < 8:
            line = (
                f"{t} DEBUG worker pool: goroutine {rng.randrange(10**4)} picked job "
                f"{rng.randrange(10**6)} (queue={rng.randrange(100)})"
            )
        elif kind == 8:
            line = f"=== RUN   TestItems/case_{rng.randrange(1000)}"
        else:
            line = f"--- PASS: TestItems/case_{rng.randrange(1000)} (0.{rng.randrange(100):02d}s)"
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def write_log(path: Path, dump: bytes, size: int) -> None:
    """Noise, the dump, noise: ``size`` bytes in all, the dump in the middle."""
    block = noise_block(4 << 20, random.Random(7))

    def noise(f: IO[bytes], n: int) -> None:
        while n >= len(block):
            f.write(block)
            n -= len(block)
        f.write(block[: block.rfind(b"\n", 0, n) + 1])  # whole lines

    half = (size - len(dump)) // 2
    with path.open("wb") as f:
        noise(f, half)
        f.write(dump)
        noise(f, size - len(dump) - half)


def measure(code: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dump = capture_dump(a.n, work)
        log = work / "ci.log"
        write_log(log, dump, a.size_mb << 20)
        size = log.stat().st_size
        headers = dump.count(b"\ngoroutine ")
        print(f"log {size / 2**20:,.0f} MiB with one dump of {len(dump) / 2**20:.1f} MiB "
              f"({headers:,} goroutines)")  # fmt: skip
        measure(ANCHOR, log)  # the page cache
        ours, anchor = [], []
        for _ in range(a.rounds):
            ours.append(measure(OURS, log))
            anchor.append(measure(ANCHOR, log))
        best = min(ours, key=lambda r: r["s"])
        base = min(anchor, key=lambda r: r["s"])
        (end, rows, line), *more = best["dumps"]
        assert not more and rows >= a.n, best["dumps"]
        mb = size / 1e6
        print(
            f"  ours    read_dumps   {best['s']:6.2f} s  {mb / best['s']:6.0f} MB/s  "
            f"peak RSS {max(r['rss_mb'] for r in ours):5.0f} MiB  "
            f"({end} dump at line {line:,}, {rows:,} rows)"
        )
        print(
            f"  anchor  for line in f {base['s']:5.2f} s  {mb / base['s']:6.0f} MB/s  "
            f"peak RSS {max(r['rss_mb'] for r in anchor):5.0f} MiB  ({base['lines']:,} lines)"
        )
        ratio = best["s"] / base["s"]
        print(f"  ours / anchor = {ratio:.2f}x the time (best of {a.rounds})")


if __name__ == "__main__":
    main()
