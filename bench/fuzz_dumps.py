"""A long fuzz run of the dump parsers (the suite runs 25 examples of the same target).

Seeds are the real captured dumps in tests/fixtures, mutated (byte flips, cuts,
deletions, repeats, splices: ``tests/dumpfuzz.py``). Any exception other than
``GoleakError`` fails the run and hypothesis prints the smallest input it found.

    python bench/fuzz_dumps.py [--examples 5000] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dumpfuzz import SEEDS, inputs, target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    ran = 0

    @seed(a.seed)
    @settings(
        max_examples=a.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def run(data: bytes) -> None:
        nonlocal ran
        ran += 1
        target(data)

    t0 = time.perf_counter()
    run()
    took = time.perf_counter() - t0
    print(f"{ran:,} mutated inputs from {len(SEEDS)} captured dumps (seed {a.seed}) in "
          f"{took:.0f} s: every one gave a result or a GoleakError")  # fmt: skip


if __name__ == "__main__":
    main()
