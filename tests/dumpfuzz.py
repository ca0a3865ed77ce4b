"""The dump parsers' fuzz target, shared by the suite's short run
(tests/test_goroutines_fuzz.py) and the long one (bench/fuzz_dumps.py).

Inputs are the real captured dumps (tests/fixtures) mutated: bytes flipped, cut,
deleted, repeated, and pieces of one spliced into another. Whatever comes in, every
parser entry must return a result or raise ``GoleakError``; nothing else may escape.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from hypothesis import strategies as st

from goleak_magic import GoleakError
from goleak_magic.dumps.dumpfile import read_dumps
from goleak_magic.dumps.leakprofile import parse_leak_profile
from goleak_magic.dumps.model import to_frame
from goleak_magic.dumps.text import parse_dump

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = [
    p.read_bytes()
    for p in sorted(FIXTURES.glob("exit_*.txt")) + sorted(FIXTURES.glob("goroutineleak_*.txt"))
]

_at = st.floats(0, 1, exclude_max=True)  # a position, as a fraction of the length
_ops = st.one_of(
    st.tuples(st.just("flip"), _at, st.integers(0, 255)),
    st.tuples(st.just("cut"), _at),
    st.tuples(st.just("delete"), _at, st.integers(1, 400)),
    st.tuples(st.just("repeat"), _at, st.integers(1, 400)),
    st.tuples(st.just("splice"), _at, st.integers(0, len(SEEDS) - 1), _at, st.integers(1, 4000)),
)


def mutate(seed: int, ops: list[tuple]) -> bytes:
    data = bytearray(SEEDS[seed])
    for op, at, *args in ops:
        i = int(at * len(data))
        if op == "flip" and data:
            data[i] = args[0]
        elif op == "cut":
            del data[i:]
        elif op == "delete":
            del data[i : i + args[0]]
        elif op == "repeat":
            data[i:i] = data[i : i + args[0]]
        elif op == "splice":
            other = SEEDS[args[0]]
            j = int(args[1] * len(other))
            data[i:i] = other[j : j + args[2]]
    return bytes(data)


inputs = st.builds(mutate, st.integers(0, len(SEEDS) - 1), st.lists(_ops, max_size=6))


def target(data: bytes) -> None:
    """Every dump parser on ``data``: each gives a result or raises GoleakError."""
    when = pd.Timestamp(0, tz="UTC")
    for chunk in (1 << 20, 997):  # one chunk, and many small ones
        try:
            dumps = read_dumps(io.BytesIO(data), stacks=True, chunk=chunk)
        except GoleakError:
            continue
        for d in dumps:
            to_frame(d.cols, snapshot=1, time=when, source="file")
            assert d.first_line <= d.last_line + 1
            assert d.note is None or d.note.endswith(".")
            assert len(d.harness) <= len(d.cols["goid"])
    try:
        cols, _ = parse_dump(data, stacks=True)
        to_frame(cols, snapshot=1, time=when, source="agent")
    except GoleakError:
        pass
    try:
        parse_leak_profile(data.decode("utf-8", "replace"))
    except GoleakError:
        pass
