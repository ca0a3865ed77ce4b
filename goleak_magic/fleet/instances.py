"""Which instances of a fleet climb: ``go_goroutines`` per instance from Prometheus.

Climbing rule (all three, over the samples of the window):

growth    the Theil-Sen slope (analysis.theil_sen) is positive, and
steady    at least CONCORDANCE of the sample pairs that differ rise (a pair is two
          samples, earlier and later; a random walk or a noisy but flat count sits near
          half, a leak near all), and
rise      the slope adds up over the window to at least max(MIN_RISE, 10% of the
          instance's starting level) goroutines (a +2 drift of a busy service is not a
          leak)

so a healthy instance whose count jumps around does not climb, nor does one that grew
once (a spike, a deploy's warm-up) and then stays flat.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import tables
from ..analysis import MIN_RISE, theil_sen
from ..errors import GoleakError
from . import web
from .prometheus import Prometheus

CONCORDANCE = 0.7
MIN_SAMPLES = 4
MAX_POINTS = 240  # default step: the window in this many points (Prometheus allows 11k)
MAX_PAIR_POINTS = 256  # concordance over at most this many samples (evenly picked)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str | float, what: str = "window") -> float:
    """``30m``, ``1h30m``, ``90s`` or a number of seconds, as seconds."""
    if isinstance(duration, int | float):
        total = float(duration)
    else:
        text = duration.strip()
        parts = _DURATION_RE.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise GoleakError(
                f"the {what} {duration!r} is not a duration; write it like 30m, 1h or 90s."
            )
        total = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if total <= 0:
        raise GoleakError(f"the {what} must be longer than zero (got {duration!r}).")
    return total


def selector(match: str) -> str:
    """``go_goroutines{...}`` from ``job="api"`` or ``{job="api"}`` (empty: every series)."""
    inner = match.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    return f"go_goroutines{{{inner}}}" if inner else "go_goroutines"


def instances(
    prometheus_url: str,
    match: str,
    window: str | float = "30m",
    step: str | float | None = None,
    headers: web.Headers = None,
) -> pd.DataFrame:
    """One row per instance whose ``go_goroutines`` matches ``match`` over ``window``.

    Columns: instance, job, goroutines (the latest sample), growth_per_min (Theil-Sen
    slope), rise (that slope over the window), concordance (share of differing sample
    pairs that rise), climbing (the rule in this module's doc), samples, last_seen,
    labels (the series' target labels), scrape_url (where Prometheus scrapes it, when
    its targets API says). Climbing instances first, fastest growth first.
    ``headers`` (or ``$GOLEAK_HEADERS``) go with every request and nowhere else.
    """
    return query(prometheus_url, match, window, step, headers)[0]


def query(
    prometheus_url: str,
    match: str,
    window: str | float = "30m",
    step: str | float | None = None,
    headers: web.Headers = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``instances``' rows and the samples behind them (the ``instance_series`` table:
    one row per instance per sample, for the timeline's per-instance panel)."""
    prom = Prometheus(prometheus_url, web.resolve_headers(headers))
    span = seconds(window)
    step_s = seconds(step, "step") if step is not None else max(1.0, span / MAX_POINTS)
    end = time.time()
    promql = selector(match)
    series = prom.query_range(promql, end - span, end, step_s)
    if not series:
        raise GoleakError(
            f"no series match {promql} on {prom.url} in the last {span:g} s; check the "
            "selector against the job and instance labels on Prometheus' targets page, or "
            "widen the window."
        )
    scrape = {
        (t["labels"].get("job"), t["labels"].get("instance")): t.get("scrapeUrl")
        for t in prom.targets()
        if isinstance(t.get("labels"), dict)
    }
    rows, samples = zip(*(_row(s, scrape) for s in series), strict=True)
    out = tables.frame("instances", rows)
    out = out.sort_values(["climbing", "growth_per_min"], ascending=False, ignore_index=True)
    out.attrs.update(prometheus=prom.url, query=promql, window_s=span, step_s=step_s)
    return out, tables.conform("instance_series", pd.concat(samples, ignore_index=True))


def _row(
    series: Mapping[str, Any], scrape: Mapping[tuple[Any, Any], Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
    values = np.array(series["values"], dtype=float).reshape(-1, 2)
    values = values[np.isfinite(values[:, 1])]
    t, y = values[:, 0], values[:, 1]
    trend = _trend(t, y)
    job, instance = labels.get("job"), labels.get("instance")
    row = {
        "instance": instance,
        "job": job,
        "goroutines": int(y[-1]) if len(y) else None,
        **trend,
        "samples": len(y),
        "last_seen": pd.Timestamp(t[-1], unit="s", tz="UTC") if len(t) else pd.NaT,
        "labels": labels,
        "scrape_url": scrape.get((job, instance)),
    }
    samples = pd.DataFrame(
        {
            "instance": pd.array([instance] * len(t), dtype="string"),
            "time": pd.to_datetime(t, unit="s", utc=True).as_unit("ns"),
            "goroutines": y,
        }
    )
    return row, samples


def _trend(t: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if len(y) < MIN_SAMPLES:
        return {"growth_per_min": np.nan, "rise": np.nan, "concordance": np.nan, "climbing": False}
    minutes = (t - t[0]) / 60
    slope = float(theil_sen(minutes, y[None, :])[0])
    rise = slope * float(minutes[-1])
    concordance = _concordance(y)
    start = float(np.median(y[: max(1, len(y) // 4)]))
    climbing = slope > 0 and concordance >= CONCORDANCE and rise >= max(MIN_RISE, 0.1 * start)
    return {
        "growth_per_min": slope,
        "rise": rise,
        "concordance": concordance,
        "climbing": bool(climbing),
    }


def _concordance(y: np.ndarray) -> float:
    if len(y) > MAX_PAIR_POINTS:
        y = y[np.unique(np.linspace(0, len(y) - 1, MAX_PAIR_POINTS).round().astype(int))]
    i, j = np.triu_indices(len(y), k=1)
    d = np.sign(y[j] - y[i])
    moved = np.count_nonzero(d)
    return float(np.count_nonzero(d > 0) / moved) if moved else 0.0
