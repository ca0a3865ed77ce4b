"""The ``goroutineleak?debug=1`` profile: stacks with counts, no goroutine ids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import GoleakError
from ..frames import frame_text
from .text import parse_labels


@dataclass(frozen=True)
class LeakRecord:
    """One stack of the profile."""

    count: int
    """How many proven-leaked goroutines share this stack."""
    frames: tuple[str, ...]
    """``func file:line``, innermost first."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Their pprof labels (``# labels: {...}``)."""


_LEAK_HEADER_RE = re.compile(r"^goroutineleak profile: total (\d+)$", re.M)
_LEAK_RECORD_RE = re.compile(r"^(\d+) @[ 0-9a-fx]*\n((?:#.*\n?)*)", re.M)
_LEAK_FRAME_RE = re.compile(r"^#\t0x[0-9a-f]+\t(\S+?)\+0x[0-9a-f]+\t+(\S.*)$", re.M)
_LEAK_LABELS_RE = re.compile(r"^# labels: \{(.*)\}$", re.M)


def parse_leak_profile(text: str) -> tuple[int, list[LeakRecord]]:
    """``goroutineleak?debug=1`` → (total, records). Raises on text that is not one."""
    m = _LEAK_HEADER_RE.search(text)
    if m is None:
        raise GoleakError(
            "that text is not a goroutineleak profile (no 'goroutineleak profile: total N' "
            "line); fetch /debug/pprof/goroutineleak?debug=1 from Go 1.26+ (built with "
            "GOEXPERIMENT=goroutineleakprofile on 1.26)."
        )
    records = []
    for count, body in _LEAK_RECORD_RE.findall(text[m.end() :]):
        frames = tuple(frame_text(f, loc.strip()) for f, loc in _LEAK_FRAME_RE.findall(body))
        lm = _LEAK_LABELS_RE.search(body)
        records.append(LeakRecord(int(count), frames, parse_labels(lm.group(1)) if lm else {}))
    return int(m.group(1)), records
