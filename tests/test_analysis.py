"""The analysis on captured dumps (tests/fixtures), without go: diffs and trend slopes.

Expected values come from plain set and count arithmetic on the same rows, not from the
analysis code. The suspects on real running examples are in test_suspects.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goleak_magic import GoleakError, analysis
from goleak_magic.dumps.model import to_frame
from goleak_magic.dumps.text import parse_dump

FIXTURES = Path(__file__).parent / "fixtures"


def snapshot(version: str, n: int) -> pd.DataFrame:
    data = (FIXTURES / f"goroutineleak_debug2_go{version}.txt").read_bytes()
    cols, _ = parse_dump(data)
    return to_frame(cols, snapshot=n, time=pd.Timestamp(n, tz="UTC"), source="agent")


@pytest.mark.parametrize("version", ["1.26.8", "1.27.3"])
def test_diff_of_a_captured_dump_and_its_every_other_goroutine(version: str) -> None:
    """Snapshot 2 keeps every other goroutine of snapshot 1: the rest are gone, none new."""
    one = snapshot(version, 1)
    two = snapshot(version, 2).iloc[::2]
    d = analysis.diff(pd.concat([one, two], ignore_index=True), 1, 2)
    dropped = set(one["goid"]) - set(two["goid"])
    assert dropped and set(d.gone.tolist()) == dropped
    assert len(d.new) == 0 and set(d.persisting.tolist()) == set(two["goid"])
    site = (one["created_by"].fillna("") + " " + one["created_at"].fillna("")).str.strip()
    site = site.mask(site == "", analysis.NO_SITE)
    gone_per_site = Counter(site[one["goid"].isin(dropped)])
    got = d.sites.set_index("site")
    assert {s: int(got.loc[s, "gone"]) for s in gone_per_site} == dict(gone_per_site)
    assert (got["delta"] == -got["gone"]).all()
    with pytest.raises(GoleakError, match="no snapshot 3"):
        analysis.diff(one, 1, 3)


def test_theil_sen_ignores_one_outlier() -> None:
    t = np.arange(8.0)
    line = 3.0 * t + 2.0
    spiky = line.copy()
    spiky[4] += 100.0
    assert analysis.theil_sen(t, np.vstack([line, spiky])).tolist() == [3.0, 3.0]
    assert np.isnan(analysis.theil_sen(np.zeros(3), np.ones((1, 3)))).all()  # no time passed
