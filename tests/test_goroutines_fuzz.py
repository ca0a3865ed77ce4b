"""A short fuzz run of the dump parsers (the long one: bench/fuzz_dumps.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.dumpfuzz import SEEDS, inputs, target


def test_seeds_are_the_captured_dumps() -> None:
    assert len(SEEDS) >= 20 and all(b"goroutine" in s for s in SEEDS)


@settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(inputs)
def test_mutated_dumps_give_a_result_or_one_goleak_error(data: bytes) -> None:
    target(data)
