"""``%goleak tests`` (goleak_magic.testrun) against plain ``go test`` on the same package.

A generated package of N tests (``--tests 30``), each doing a little concurrent work (a
worker pool over a channel, a WaitGroup, a mutex-guarded map: ~0.1-1 ms), none leaking,
is run ``--count`` times (100) per test:

  go test   ``go test -count C .`` in the package: one process, every test in turn (the
            anchor, measured in the same run)
  ours      ``testrun.run_tests(DIR, count=C)``: ``go test -c`` with the agent and the
            injected TestMain, ``-test.list``, then one process per test, one per core,
            each writing its settled final snapshot with the GC's leak profile (the
            build alone is timed apart, after each round)

Both start from a warm build cache (one untimed round first), and ours keeps its workdir
across rounds as a notebook session does (the go command then does not link again an
up-to-date test binary); the build alone, timed apart, is a fresh link each time. Rounds
interleave the two so load on the machine hits both alike; medians are reported. Target:
ours <= 1.3x go test.

    python bench/bench_tests.py [--tests 30] [--count 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goleak_magic import testrun

TEST = """
func Test{i:02d}(t *testing.T) {{
	jobs := make(chan int)
	var mu sync.Mutex
	seen := map[int]int{{}}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {{
		wg.Add(1)
		go func() {{
			defer wg.Done()
			for j := range jobs {{
				s := 0
				for k := 0; k < {work}; k++ {{
					s += k * j
				}}
				mu.Lock()
				seen[j] = s
				mu.Unlock()
			}}
		}}()
	}}
	for j := 0; j < 64; j++ {{
		jobs <- j
	}}
	close(jobs)
	wg.Wait()
	if len(seen) != 64 {{
		t.Fatalf("%d results", len(seen))
	}}
}}
"""


def write_package(root: Path, n: int) -> Path:
    pkg = root / "thirty"
    pkg.mkdir()
    (pkg / "go.mod").write_text("module thirty\n\ngo 1.22\n")
    (pkg / "doc.go").write_text("// Package thirty is bench_tests.py's package.\npackage thirty\n")
    body = "".join(TEST.format(i=i, work=200 * (1 + i % 10)) for i in range(n))
    (pkg / "thirty_test.go").write_text(
        'package thirty\n\nimport (\n\t"sync"\n\t"testing"\n)\n' + body
    )
    return pkg


def go_test(pkg: Path, count: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        ["go", "test", "-count", str(count), "."], cwd=pkg, capture_output=True, text=True
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"go test failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    return took


def ours(pkg: Path, count: int, work: Path) -> tuple[float, testrun.TestRun]:
    start = time.perf_counter()
    r = testrun.run_tests(str(pkg), count=count, workdir=work)
    took = time.perf_counter() - start
    bad = [x.row for x in r.results if x.outcome != "pass" or x.row["leaked"]]
    if bad:
        sys.exit(f"the clean package did not come out clean: {bad[:3]}")
    return took, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", type=int, default=30)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tests-") as tmp:
        root = Path(tmp)
        pkg = write_package(root, a.tests)
        go_test(pkg, 1)  # warm the build cache for both
        ours(pkg, 1, root / "work")
        anchor, mine, settle, builds = [], [], [], []
        for i in range(a.rounds):
            anchor.append(go_test(pkg, a.count))
            took, r = ours(pkg, a.count, root / "work")
            mine.append(took)
            settle.append(statistics.median(x.settle["settle_ns"] / 1e6 for x in r.results))
            start = time.perf_counter()
            (root / f"build{i}").mkdir()
            testrun.build_tests(str(pkg), root / f"build{i}", go="go")
            builds.append(time.perf_counter() - start)
        g, o = statistics.median(anchor), statistics.median(mine)
        print(
            f"{a.tests} tests x --count {a.count}, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"go test -count {a.count}:     {g:6.2f} s  (rounds: {_fmt(anchor)})")
        print(f"testrun.run_tests:      {o:6.2f} s  (rounds: {_fmt(mine)})")
        fresh = statistics.median(builds)
        print(f"a build with a fresh link: {fresh:6.2f} s  (go list + go test -c)")
        print(f"median settle per test: {statistics.median(settle):6.2f} ms")
        print(f"ratio ours / go test:   {o / g:6.2f}x  (target <= 1.3x)")


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    main()
