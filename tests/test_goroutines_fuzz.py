"""A short fuzz run of the dump parsers (the long one: bench/fuzz_dumps.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from goleak_magic.dumps.text import parse_dump
from tests.dumpfuzz import SEEDS, inputs, target


def test_seeds_are_the_captured_dumps() -> None:
    assert len(SEEDS) >= 20 and all(b"goroutine" in s for s in SEEDS)


@settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(inputs)
def test_mutated_dumps_give_a_result_or_one_goleak_error(data: bytes) -> None:
    target(data)


@pytest.mark.parametrize(
    "line",
    [b"a" + b"(" * 200_000, b"goroutine 3 [a" + b" labels:{" * 20_000 + b"]:",
     b"\t/x.go:1" + b" +0x1" * 40_000 + b"z", b"panic: " + b"(" * 200_000],
    ids=["parens", "labels", "offsets", "preamble"],
)  # fmt: skip
def test_long_garbled_lines_are_read_in_one_pass(line: bytes) -> None:
    """Lines a regex could backtrack over for ever (quadratic in their length): each
    parser must come back (with a result or a GoleakError) rather than hang."""
    head = b"panic: x\n\ngoroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1d\n\n"
    for data in (head + line + b"\n", line + b"\n" + head):
        target(data)


LAST = b"\n\ngoroutine 9 [running]:\nmain.h()\n\t/x.go:9\n"  # the parser holds the last back


@pytest.mark.parametrize(
    "data",
    [
        # found by bench/fuzz_dumps.py: an unclosed "(" at the end of one block and a ")"
        # at the start of the next must not be read as one call's arguments
        b"goroutine 1 [running]:\nmain.f(0x1\n\ngoroutine 2 [running]:\n0x2)\n\t/x.go:2" + LAST,
        # a NUL (the parser's own block separator) inside a frame
        b"goroutine 1 [running]:\nmain.f\x00()\n\t/x.go:1\n\ngoroutine 2 [running]:\nmain.g()\n"
        b"\t/x.go:2" + LAST,
    ],
    ids=["paren-across-blocks", "nul"],
)
def test_found_by_fuzzing(data: bytes) -> None:
    target(data)
    cols, _ = parse_dump(data)
    tops = dict(zip(cols["goid"], cols["top"], strict=True))
    assert list(cols["goid"]) == [1, 2, 9] and tops[9] == "main.h /x.go:9"
    if b"\x00" in data:  # each block keeps its own frames
        assert tops[2] == "main.g /x.go:2"
