"""Fleet suspects: analysis.suspects on each instance run's series, then per site across
the fleet.

An instance *shows* a site when that site is a suspect in the instance's own suspects
table (analysis.suspects, unchanged: proven leaked, left behind, deadlock, or growth
that scores at least the threshold). A fleet suspect is a site that at least one instance
shows: it says on how many of the instances taken, the typical growth there (the median
over those instances), where its goroutines block (the dominant place over those
instances' last snapshots), and which instances do not show it (a bad deploy on a few,
or a common bug on all). Sites no instance shows are left out, so healthy instances add
no suspect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, tables
from ..errors import GoleakError
from .snapshots import FLEET_COLUMNS, FleetSnapshot


def fleet_suspects(
    goroutines: pd.DataFrame | FleetSnapshot, threshold: float = analysis.SUSPECT_THRESHOLD
) -> pd.DataFrame:
    """One row per creation site some instance shows, highest total score first.

    Columns: site, instances (how many show it), of (instance runs taken), alive and
    leaked_proven (totals over every instance), growth_per_min (median over the
    instances that show it), blocked_at, score (sum of their scores), why (the suspect
    rule's reason on most of those instances), affected and
    unaffected (instance names; a restarted instance's later run is "name (run N)"),
    example_stack, evidence. ``.attrs["per_instance"]`` holds every instance's own
    suspects table (with an ``instance`` column).
    """
    g = goroutines.goroutines if isinstance(goroutines, FleetSnapshot) else goroutines
    if any(c not in g.columns for c in FLEET_COLUMNS):
        raise GoleakError(
            "fleet_suspects needs a fleet goroutines table (with instance and run columns); "
            "pass what snapshot_fleet returned."
        )
    per_run, lasts = [], {}
    for (inst, run), part in g.groupby(FLEET_COLUMNS, sort=True):
        name = str(inst) if run == 1 else f"{inst} (run {run})"
        part = part.drop(columns=FLEET_COLUMNS).reset_index(drop=True)
        per_run.append(analysis.suspects(part, threshold).assign(instance=name))
        last = part[part["snapshot"] == part["snapshot"].max()].reset_index(drop=True)
        lasts[name] = last.assign(site=analysis.goroutine_sites(last))
    names = list(lasts)
    every = pd.concat(per_run, ignore_index=True) if per_run else pd.DataFrame()
    rows = []
    if len(every):
        totals = every.groupby("site")[["alive", "leaked_proven"]].sum()
        shown = every[every["suspect"]]
        for site, hits in shown.groupby("site", sort=False):
            rows.append(_row(str(site), hits, totals.loc[site], names, lasts))
    out = tables.frame("fleet_suspects", rows)
    out = out.sort_values(["score", "instances"], ascending=False, ignore_index=True)
    out.attrs["per_instance"] = every
    return out


def _row(
    site: str,
    hits: pd.DataFrame,
    totals: pd.Series,
    names: list[str],
    lasts: dict[str, pd.DataFrame],
) -> dict[str, object]:
    affected = list(dict.fromkeys(hits["instance"]))
    unaffected = [n for n in names if n not in affected]
    last = pd.concat([lasts[n][lasts[n]["site"] == site] for n in affected], ignore_index=True)
    where, share, stack = analysis.blocking(last).get(site, (None, 0.0, ()))
    rates = hits["growth_per_min"].to_numpy(float)
    rate = float(np.median(rates[np.isfinite(rates)])) if np.isfinite(rates).any() else np.nan
    alive, leaked = int(totals["alive"]), int(totals["leaked_proven"])
    parts = [f"on {len(affected)} of {len(names)} instances"]
    parts.append(f"{rate:+,.0f}/min each" if np.isfinite(rate) else "one snapshot each")
    if where:
        reason, _, frame = where.partition(" at ")
        parts.append(f"{share:.0%} blocked in {reason} at {analysis.short_loc(frame)}")
    parts.append(f"{alive:,} alive")
    if leaked:
        parts.append(f"{leaked:,} proven leaked by the GC")
    if unaffected:
        parts.append("not on " + ", ".join(unaffected))
    return {
        "site": site,
        "instances": len(affected),
        "of": len(names),
        "alive": alive,
        "leaked_proven": leaked,
        "growth_per_min": rate,
        "blocked_at": where,
        "score": round(float(hits["score"].sum()), 2),
        "why": str(hits["why"].mode().iloc[0]),
        "affected": tuple(affected),
        "unaffected": tuple(unaffected),
        "example_stack": stack,
        "evidence": ", ".join(parts),
    }
