"""Growth trends, spike detection, snapshot diff, suspects ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd

EPISODE_COLUMNS = ["start", "end", "start_count", "peak_count", "rise", "per_s", "kind"]
MIN_RISE = 10  # goroutines: smaller rises are scheduling noise, not a spike or a climb


def growth_episodes(
    times: pd.Series, counts: pd.Series, min_rise: float | None = None
) -> pd.DataFrame:
    """Spikes and steady climbs in a goroutine-count series.

    An episode runs from a trough to its peak and lasts as long as no dip gives back
    half of what it gained so far, so a noisy climb stays one episode. It is a
    ``spike`` when the count falls back by half the rise within as long as it took to
    rise (a burst that is collected), else a ``climb`` (what stays: the leak shape).
    ``min_rise`` defaults to max(10, 20% of the starting level).
    Returns one row per episode: start, end (the peak), start_count, peak_count, rise,
    per_s (goroutines per second while rising), kind.
    """
    ok = counts.notna().to_numpy() & times.notna().to_numpy()
    t = times[ok].reset_index(drop=True)
    v = counts[ok].to_numpy(dtype=float)
    n = len(v)
    rows = []
    i = 0
    while i < n - 1:
        start = peak = i
        j = i + 1
        while j < n:
            gained = v[peak] - v[start]
            if v[j] < v[peak] - max(1.0, gained / 2):
                break
            if v[j] > v[peak]:
                peak = j
            elif v[j] < v[start] and peak == start:
                start = peak = j  # still falling: the trough moves with it
            j += 1
        if peak > start:  # begin where it starts to move, not at a long flat trough
            lifted = v[start : peak + 1] > v[start] + max(1.0, 0.02 * (v[peak] - v[start]))
            start += int(np.argmax(lifted)) - 1
        rise = v[peak] - v[start]
        need = min_rise if min_rise is not None else max(MIN_RISE, 0.2 * v[start])
        if peak > start and rise >= need:
            rise_s = (t[peak] - t[start]).total_seconds()
            fell = j < n and (t[j] - t[peak]).total_seconds() <= 1.5 * rise_s
            rows.append(
                {
                    "start": t[start],
                    "end": t[peak],
                    "start_count": int(v[start]),
                    "peak_count": int(v[peak]),
                    "rise": int(rise),
                    "per_s": rise / rise_s if rise_s > 0 else np.nan,
                    "kind": "spike" if fell else "climb",
                }
            )
        i = max(j, i + 1) if j < n else n
    out = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    return out.astype({"start_count": "int64", "peak_count": "int64", "rise": "int64"})
