"""Timeline data: a target's tables aggregated into the columns each panel draws.

No bokeh here. Each panel's data is a dict of equal-length columns built from whatever
tables exist, so the same code feeds the static figure, the exported HTML and the live
stream. Times are float milliseconds since the epoch (bokeh's datetime unit), UTC.

Creations are never shipped one by one: they are counted per (time bin, site). The rate
panel draws those counts and the linked table sums them over a selected window, so a
million creations cost a few thousand rows in the page.

A fleet (goleak_magic.fleet) adds one panel: go_goroutines per instance as Prometheus
scraped it, one line each (climbing ones flagged); its goroutines are told apart by
(instance, run, goid), as goroutine ids repeat across processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import analysis, tables
from ..analysis import growth_episodes
from ..creations import latest, newest_listing, trace_listing

if TYPE_CHECKING:
    from ..record import Record

MAX_INSTANCE_POINTS = 500  # samples drawn per instance line; above this, evenly picked

TOP_SITES = 8  # coloured sites; the rest share the "other sites" colour
MAX_BINS = 200  # creation-rate bins across the recording
MAX_POINTS = 4000  # sched ticks drawn one by one; above this, one (the peak) per bin
MAX_TABLE_SITES = 500  # sites the table can list one by one; the rest are summed
MAX_EPISODES = 300  # spikes and climbs marked; the largest rises when there are more
NICE_MS = tuple(
    sorted(  # ascending: choose_bin takes the first that fits (30 h comes after 1 d)
        [
            m * u
            for u in (1, 1_000, 60_000, 3_600_000)
            for m in ((1, 2, 5, 10, 20, 50, 100, 200, 500) if u == 1 else (1, 2, 5, 10, 15, 30))
        ]
        + [86_400_000 * d for d in (1, 2, 7, 14, 30, 90, 365)]
    )
)
OTHER = "other sites"
STATES = ("waiting", "runnable", "running", "syscall", "leaked", "other")
SCHED_LINES = ("threads", "idlethreads", "runqueue", "local_runq")
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass
class Recording:
    """The tables one timeline is drawn from; any of them may be empty."""

    sched: pd.DataFrame = field(default_factory=lambda: tables.empty("sched"))
    waits: pd.DataFrame = field(default_factory=lambda: tables.empty("waits"))
    creations: pd.DataFrame = field(default_factory=lambda: tables.empty("creations"))
    goroutines: pd.DataFrame = field(default_factory=lambda: tables.empty("goroutines"))
    suspects: pd.DataFrame = field(default_factory=lambda: tables.empty("suspects"))
    transitions: pd.DataFrame = field(default_factory=lambda: tables.empty("transitions"))
    metrics: pd.DataFrame = field(default_factory=lambda: tables.empty("metrics"))
    name: str = ""
    dropped: dict[str, int] = field(default_factory=dict)
    # Live goroutine ids and when (ns) Delve listed them at the end of a trace (None: no
    # such listing); ``build`` uses the last snapshot's instead when that is newer.
    live: tuple[frozenset[int], int] | None = None
    # A fleet's go_goroutines per instance (the instance_series table) and which climb.
    series: pd.DataFrame = field(default_factory=lambda: tables.empty("instance_series"))
    climbing: frozenset[str] = frozenset()

    @classmethod
    def of(cls, target: Record) -> Recording:
        from ..fleet.record import Fleet

        handle = latest(target)
        fleet = (
            {"series": target.series, "climbing": frozenset(target.climbing)}
            if isinstance(target, Fleet)
            else {}
        )
        return cls(
            sched=target.sched,
            waits=target.waits,
            creations=target.creations,
            goroutines=target.goroutines,
            suspects=target.suspects,
            transitions=target.transitions,
            metrics=target.metrics,
            name=target.name,
            dropped={k: log.dropped for k, log in target.tables.items() if log.dropped},
            live=trace_listing(handle.trace if handle is not None else None),
            **fleet,
        )


@dataclass
class TimelineData:
    sources: dict[str, dict[str, Any]]
    bin_ms: int
    groups: list[str]  # label of each coloured slot ("" when unused), then OTHER
    group_stacks: list[str]  # the stack text of each coloured slot's site
    reasons: list[str]  # heatmap rows, most common first
    notes: list[str]
    alive_known: bool  # a goroutine listing exists, so "alive" means something
    creation_source: str  # "trace", "snapshots" or "" (what the table counts)
    name: str = ""  # the target's, for hints such as "%dlvtrace NAME"
    alive_at: float | None = None  # ms: when the listing behind "alive" was taken

    @property
    def has(self) -> dict[str, bool]:
        """Which panels have something to draw."""
        n = {k: len(next(iter(v.values()), ())) for k, v in self.sources.items()}
        return {
            "counts": n["counts"] > 0 or n["snaps"] > 0,
            "sched": n["sched"] > 0,
            "rate": n["rate"] > 0,
            "alive": n["alive"] > 0,
            "heat": n["heat"] > 0,
            "instances": n["instances"] > 0,
            "table": n["agg"] > 0,
        }


def title_of(target: Record) -> str:
    """``goroutines of NAME (pid P, STATE)``; a loaded recording shows the pid and state
    it was saved with, a --connect target the pid behind the remote dlv."""
    recorded = target.recorded
    pid = target.pid or target.remote_pid
    state = target.state
    if recorded is not None:
        pid = recorded.pid
        state = f"recorded while {recorded.state}"
        if recorded.saved_at:
            state += f", saved {pd.Timestamp(recorded.saved_at):%Y-%m-%d %H:%M} UTC"
    if target.exit_status is not None:
        from ..process import describe_status

        state += f", {describe_status(target.exit_status)}"
    return f"goroutines of {target.name} ({f'pid {pid}, ' if pid else ''}{state})"


def ms(times: pd.Series) -> np.ndarray:
    """Wall-clock times as float ms since the epoch (NaN for NaT)."""
    return ((pd.to_datetime(times, utc=True) - _EPOCH) / pd.Timedelta(1, "ms")).to_numpy(float)


def choose_bin(span_ms: float, at_least: float = 0) -> int:
    """The smallest round bin width (ms), at least ``at_least``, that cuts ``span_ms`` into
    at most MAX_BINS."""
    for b in NICE_MS:
        if b >= at_least and span_ms / b <= MAX_BINS:
            return b
    return NICE_MS[-1]


def heat_high(data: TimelineData) -> float:
    """The top of the heatmap's colour scale: the largest cell, at least 2 (a log scale)."""
    return max(2.0, float(max(data.sources["heat"]["count"], default=2)))


def describe_ms(b: float) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:g} ms"


def site_codes(sites: pd.Series, names: np.ndarray) -> np.ndarray:
    """Each name's row in the site catalogue ``sites``; unknown ones go to its last row."""
    which, distinct = pd.factorize(names)  # few distinct names: look each up once
    per_name = pd.Index(sites).get_indexer(distinct)
    per_name[per_name < 0] = len(sites) - 1
    return per_name[which].astype(np.int64) if len(which) else np.zeros(0, np.int64)


def _mode(s: pd.Series) -> str:
    s = s.dropna()
    s = s[s != ""]
    return str(s.mode().iloc[0]) if len(s) else ""


def _stack_text(stack: Any) -> str:
    if isinstance(stack, (tuple, list, np.ndarray)):
        return "\n".join(str(f) for f in stack)
    return "" if stack is None or (isinstance(stack, float) and np.isnan(stack)) else str(stack)


def build(rec: Recording, *, min_bin_ms: int = 0) -> TimelineData:
    """Aggregate ``rec`` into the columns of every panel (see the module docstring).

    The creation bin is the smallest round width, at least ``min_bin_ms``, that keeps the
    recording within MAX_BINS bins.
    """
    top = TOP_SITES
    sched, creations, g = rec.sched, rec.creations, rec.goroutines
    t_sched, t_created, t_snap = ms(sched["time"]), ms(creations["time"]), ms(g["time"])
    all_t = np.concatenate([t_sched, t_created, t_snap])
    all_t = all_t[~np.isnan(all_t)]
    span = float(all_t.max() - all_t.min()) if len(all_t) else 0.0
    b = choose_bin(span, at_least=min_bin_ms)

    snap_ids = g["snapshot"].to_numpy()
    g_sites = analysis.goroutine_sites(g).fillna(analysis.NO_SITE).astype(object)
    in_last = snap_ids == snap_ids.max() if len(g) else np.zeros(0, bool)
    last, last_sites = g[in_last], g_sites[in_last]
    live, from_snapshot = newest_listing(rec.live, last)
    created_alive = creations["new_goid"].isin(live[0] if live else ()).to_numpy(bool)
    if from_snapshot:
        alive_by_site = last_sites.value_counts()
    else:  # Delve's listing at the end of a trace is newer: count the traced goroutines
        alive_by_site = creations.loc[created_alive, "site"].value_counts()
    sites = _site_catalogue(creations, last, last_sites, alive_by_site, rec.suspects, top)
    _trace_blocks(sites, rec.transitions)
    n_slots = top + 1

    # ---- creations per (bin, site): the rate panel and the table -----------------------
    if len(creations):
        created_site = creations["site"].fillna("(unknown site)").to_numpy(object)
        created_t, is_alive, source = t_created, created_alive, "trace"
    elif len(g):
        # No trace: a goroutine counts as created in the snapshot where it first appears.
        ids = goroutine_ids(g)
        order = np.argsort(snap_ids, kind="stable")
        first_rows = order[~pd.Series(ids[order]).duplicated().to_numpy()]
        created_site, created_t = g_sites.to_numpy(object)[first_rows], t_snap[first_rows]
        is_alive = np.isin(ids[first_rows], ids[in_last])
        source = "snapshots"
    else:
        created_site, created_t, is_alive = np.array([], object), np.array([]), np.array([])
        source = ""
    created = pd.DataFrame(
        {
            "bin": np.floor(created_t / b) * b,
            "site": site_codes(sites["site"], created_site),
            "alive": is_alive.astype(np.int64),
        }
    )
    agg = (
        created.groupby(["bin", "site"], sort=True)["alive"]
        .agg(created="size", alive="sum")
        .reset_index()
    )
    alive_known = live is not None
    if not alive_known:
        agg["alive"] = np.nan
    slot_of_code = sites["slot"].to_numpy()

    groups, group_stacks = [""] * top + [OTHER], [""] * (top + 1)
    for i, site, stack in zip(sites["slot"], sites["site"], sites["stack"], strict=True):
        if i < top:
            groups[i], group_stacks[i] = site, stack

    sources = {
        "counts": _counts(sched, t_sched, b, g, t_snap, rec.metrics),
        "snaps": _snaps(g, t_snap),
        "sched": _sched(sched, t_sched, b),
        # only traced creations are a rate: first sightings in snapshots feed the table only
        "rate": _rate(agg if source == "trace" else agg.iloc[:0], slot_of_code, b, n_slots),
        "alive": _alive(g, t_snap, g_sites, sites["site"], slot_of_code, n_slots),
        "spikes": _spikes(sched, g, rec.metrics),
        "instances": _instances(rec.series, rec.climbing),
        "agg": {
            "bin": agg["bin"].to_numpy(float),
            "site": agg["site"].to_numpy(np.int64),
            "created": agg["created"].to_numpy(np.int64),
            "alive": agg["alive"].to_numpy(float),
        },
        "sites": {
            "site": sites["site"].tolist(),
            "slot": sites["slot"].to_numpy(np.int64),
            "created": sites["created"].to_numpy(np.int64),
            "alive": sites["alive"].to_numpy(float) if alive_known else np.full(len(sites), np.nan),
            "blocked_at": sites["blocked_at"].tolist(),
            "wait_reason": sites["wait_reason"].tolist(),
            "blocked_for": sites["blocked_for"].tolist(),
            "stack": sites["stack"].tolist(),
        },
        "table": {
            k: []
            for k in (
                "site",
                "created",
                "alive",
                "blocked_at",
                "wait_reason",
                "blocked_for",
                "stack",
            )
        },
        "window": {"x0": [], "x1": []},
    }
    heat, reasons = _heat(rec.waits, g, t_snap, b)
    sources["heat"] = heat
    for cols in sources.values():  # live mode patches these in place: no read-only views
        for k, v in cols.items():
            if isinstance(v, np.ndarray) and not v.flags.writeable:
                cols[k] = v.copy()
    data = TimelineData(
        sources=sources,
        bin_ms=b,
        groups=groups,
        group_stacks=group_stacks,
        reasons=reasons,
        notes=[],
        alive_known=alive_known,
        creation_source=source,
        name=rec.name,
        alive_at=live[1] / 1e6 if live is not None else None,
    )
    data.notes = _notes(rec, data, n_created=len(creations), n_sites=len(sites), top=top)
    return data


def _site_catalogue(
    creations: pd.DataFrame,
    last: pd.DataFrame,
    last_sites: pd.Series,
    alive: pd.Series,
    suspects: pd.DataFrame,
    top: int,
) -> pd.DataFrame:
    """One row per creation site, most suspicious first, plus a catch-all last row.

    Ranked by the suspects' score, then goroutines ``alive`` (per site) in the newest
    listing, then creations; the first ``top`` get a colour slot, the rest share slot
    ``top``. Blocked location and wait reason come from the last snapshot (``last``).
    """
    created = creations["site"].fillna("(unknown site)").value_counts()
    score = suspects.dropna(subset=["site"]).drop_duplicates("site").set_index("site")["score"]
    names = pd.Index(created.index).union(alive.index).union(score.index)
    cat = pd.DataFrame(
        {
            "created": created.reindex(names, fill_value=0),
            "alive": alive.reindex(names, fill_value=0),
            "score": score.reindex(names),
        }
    )
    cat = cat.sort_values(["score", "alive", "created"], ascending=False, na_position="last")
    cat = cat.rename_axis("site").reset_index()
    if len(cat) > MAX_TABLE_SITES:
        rest = cat.iloc[MAX_TABLE_SITES:]
        cat = cat.iloc[:MAX_TABLE_SITES]
        more = f"({len(rest):,} more sites)"
        extra = {"created": rest["created"].sum(), "alive": rest["alive"].sum()}
    else:
        more, extra = "(more sites)", {"created": 0, "alive": 0}
    cat = pd.concat([cat, pd.DataFrame([{"site": more, "score": np.nan, **extra}])])
    cat = cat.reset_index(drop=True)
    cat["slot"] = np.minimum(np.arange(len(cat)), top)
    cat.loc[cat.index[-1], "slot"] = top

    blocked = pd.DataFrame({"site": last_sites.to_numpy(object)})
    blocked["at"] = last["user_top"].fillna(last["top"]).to_numpy(object)
    blocked["reason"] = last["wait_reason"].to_numpy(object)
    by_site = blocked.groupby("site")
    blocked_at = by_site["at"].agg(_mode).to_dict() if len(blocked) else {}
    reason = by_site["reason"].agg(_mode).to_dict() if len(blocked) else {}
    sus = suspects.dropna(subset=["site"]).drop_duplicates("site")
    sus_blocked = dict(zip(sus["site"], sus["blocked_at"].fillna(""), strict=True))
    cat["blocked_at"] = [sus_blocked.get(s) or blocked_at.get(s, "") for s in cat["site"]]
    cat["wait_reason"] = [reason.get(s, "") for s in cat["site"]]
    cat["stack"] = _stacks(cat["site"], creations, last, last_sites, suspects, blocked_at)
    return cat


def block_times(transitions: pd.DataFrame) -> pd.DataFrame:
    """Every block of an execution trace: site, where (``at``), ``reason``, ``seconds``
    (until woken, or until the trace's end) and ``open`` (never woken in the trace)."""
    t = transitions.sort_values(["goid", "time"], kind="stable")
    by = t.groupby("goid", sort=False)
    nxt_time, nxt_from = by["time"].shift(-1), by["from_state"].shift(-1)
    blocks = (t["to_state"] == "waiting").to_numpy()
    woken = (nxt_from == "waiting").to_numpy() & blocks
    end = nxt_time.where(woken, t["time"].max())[blocks]
    b = t[blocks]
    return pd.DataFrame(
        {
            "site": b["site"].astype(object).fillna("(unknown site)").to_numpy(),
            "at": b["at"].astype(object).to_numpy(),
            "reason": b["reason"].astype(object).to_numpy(),
            "seconds": (end - b["time"]).dt.total_seconds().to_numpy(),
            "open": ~woken[blocks],
        }
    )


def _trace_blocks(cat: pd.DataFrame, transitions: pd.DataFrame) -> None:
    """Per site, from the execution trace: where its goroutines blocked (most often),
    why, and for how long (``blocked_for``); the snapshot's place stays where it has one."""
    cat["blocked_for"] = ""
    if not len(transitions):
        return
    b = block_times(transitions)
    if not len(b):
        return
    by = b.groupby("site")
    at, reason = by["at"].agg(_mode), by["reason"].agg(_mode)
    text = {
        site: f"median {describe_s(g['seconds'].median())} over {len(g):,} blocks"
        + (f", {int(g['open'].sum()):,} still blocked" if g["open"].any() else "")
        for site, g in by
    }
    cat["blocked_for"] = [text.get(s, "") for s in cat["site"]]
    cat["blocked_at"] = [a or at.get(s, "") for s, a in zip(cat["site"], cat["blocked_at"],
                                                             strict=True)]  # fmt: skip
    cat["wait_reason"] = [w or reason.get(s, "") for s, w in zip(cat["site"], cat["wait_reason"],
                                                                  strict=True)]  # fmt: skip


def describe_s(seconds: float) -> str:
    return describe_ms(seconds * 1000) if seconds >= 1 else f"{seconds * 1000:.3g} ms"


def _stacks(
    sites: pd.Series,
    creations: pd.DataFrame,
    last: pd.DataFrame,
    last_sites: pd.Series,
    suspects: pd.DataFrame,
    blocked_at: dict[str, str],
) -> list[str]:
    """Per site: its most common creation stack, and one of its goroutines blocked at the
    site's most common place (``blocked_at``)."""
    created: dict[str, str] = {}
    if len(creations):
        c = creations.dropna(subset=["site"])
        top_ids = c.groupby(["site", "stack_id"]).size().reset_index(name="n")
        top_ids = top_ids.sort_values("n", ascending=False).drop_duplicates("site")
        kinds = top_ids.groupby("site")["stack_id"].first()
        stacks = c.drop_duplicates("stack_id").set_index("stack_id")["stack"]
        distinct = c.groupby("site")["stack_id"].nunique()
        for site, sid in kinds.items():
            more = (
                f" (most common of {distinct[site]} distinct stacks)" if distinct[site] > 1 else ""
            )
            created[site] = f"created at{more}:\n" + _indent(_stack_text(stacks.get(sid)))
    for _, row in suspects.dropna(subset=["site"]).iterrows():
        if row["site"] not in created and _stack_text(row["example_stack"]):
            created[row["site"]] = "example stack:\n" + _indent(_stack_text(row["example_stack"]))
    blocked: dict[str, str] = {}
    if len(last):
        at = last["user_top"].fillna(last["top"]).fillna("").astype(str).to_numpy(object)
        typical = at == np.array([blocked_at.get(s, "") for s in last_sites], dtype=object)
        ex = last.assign(_site=last_sites.to_numpy(object), _typical=typical)
        ex = ex.sort_values("_typical", ascending=False, kind="stable").drop_duplicates("_site")
        for _, row in ex.iterrows():
            # Snapshot columns are pandas strings: a missing one is NA, which has no truth value.
            reason = row["wait_reason"] if pd.notna(row["wait_reason"]) else row["status"]
            top = row["user_top"] if pd.notna(row["user_top"]) else row["top"]
            head = f"blocked: goroutine {row['goid']} [{reason}]"
            frames = _stack_text(row["stack"]) or _stack_text(top)
            blocked[row["_site"]] = f"{head}\n" + _indent(frames)
    out = []
    for site in sites:
        parts = [created.get(site) or f"created at:\n  {site}", blocked.get(site, "")]
        out.append("\n".join(p for p in parts if p))
    return out


def _indent(text: str) -> str:
    return "\n".join("  " + ln for ln in text.splitlines())


def _per_bin_peak(
    df: pd.DataFrame, x: np.ndarray, key: str, b: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Keep one row per bin (the one where ``key`` peaks) when there are too many to draw."""
    if len(df) <= MAX_POINTS:
        return df, x
    bins = pd.Series(np.floor(x / b))
    peak = df[key].astype(float).fillna(-1).groupby(bins.to_numpy()).idxmax().to_numpy()
    return df.loc[peak], x[peak]


def _counts(
    sched: pd.DataFrame,
    x: np.ndarray,
    b: int,
    g: pd.DataFrame,
    t_snap: np.ndarray,
    metrics: pd.DataFrame,
) -> dict[str, Any]:
    """Goroutines by state: per schedtrace tick with --detail, else per runtime/metrics
    poll (%gotrace --metrics), else per snapshot."""
    if not sched["goroutines"].notna().any() and len(metrics):
        return _metric_counts(metrics, b)
    if not sched["goroutines"].notna().any() and len(g):
        state = g["status"].fillna("other").astype(object).to_numpy()
        state = np.where(np.isin(state, STATES), state, "other")
        per = pd.crosstab(g["snapshot"].to_numpy(), state).reindex(columns=STATES, fill_value=0)
        when = pd.Series(t_snap).groupby(g["snapshot"].to_numpy()).min().reindex(per.index)
        cols = {"x": when.to_numpy(float), "total": per.sum(axis=1).to_numpy(float)}
        return cols | {c: per[c].to_numpy(float) for c in STATES}
    s = sched[sched["goroutines"].notna()]
    x = x[sched["goroutines"].notna().to_numpy()]
    s, x = _per_bin_peak(s.reset_index(drop=True), x, "goroutines", b)
    cols = {"x": x, "total": s["goroutines"].to_numpy(float, na_value=np.nan)}
    for state in STATES:
        cols[state] = s[f"g_{state}"].to_numpy(float, na_value=0.0)
    return cols


def goroutine_ids(g: pd.DataFrame) -> np.ndarray:
    """One id per goroutine: its goid, or in a fleet's table one per (instance, run, goid)."""
    if "instance" not in g:
        return g["goid"].to_numpy()
    keys = ["instance", "run", "goid"]
    return g.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()


def _instances(series: pd.DataFrame, climbing: frozenset[str]) -> dict[str, Any]:
    """One line per instance: xs, ys (lists), instance, climbing, latest goroutines."""
    cols: dict[str, Any] = {"xs": [], "ys": [], "instance": [], "climbing": [], "last": []}
    for inst, part in series.groupby("instance", sort=True):
        part = part.sort_values("time")
        if len(part) > MAX_INSTANCE_POINTS:
            pick = np.linspace(0, len(part) - 1, MAX_INSTANCE_POINTS).round().astype(int)
            part = part.iloc[np.unique(pick)]
        cols["xs"].append(ms(part["time"]))
        cols["ys"].append(part["goroutines"].to_numpy(float))
        cols["instance"].append(str(inst))
        cols["climbing"].append("climbing" if str(inst) in climbing else "steady")
        cols["last"].append(float(part["goroutines"].iloc[-1]))
    return cols


def _metric_counts(m: pd.DataFrame, b: int) -> dict[str, Any]:
    m, x = _per_bin_peak(m.reset_index(drop=True), ms(m["time"]), "goroutines", b)
    total = m["goroutines"].to_numpy(float, na_value=np.nan)
    cols = {
        "waiting": m["waiting"],
        "runnable": m["runnable"],
        "running": m["running"],
        "syscall": m["not_in_go"],
    }
    out = {"x": x, "total": total}
    out |= {k: v.to_numpy(float, na_value=0.0) for k, v in cols.items()}
    out["leaked"] = np.zeros(len(m))
    # before Go 1.26 there are no per-state counts: all of them are "other"
    out["other"] = np.maximum(total - sum(out[k] for k in cols), 0)
    return out


def _snaps(g: pd.DataFrame, x: np.ndarray) -> dict[str, Any]:
    per = (
        pd.DataFrame({"snapshot": g["snapshot"].to_numpy(), "x": x, "leaked": g["leaked"]})
        .groupby("snapshot")
        .agg(x=("x", "min"), total=("x", "size"), leaked=("leaked", "sum"))
    )
    return {
        "x": per["x"].to_numpy(float),
        "snapshot": per.index.to_numpy(np.int64),
        "total": per["total"].to_numpy(np.int64),
        "leaked": per["leaked"].to_numpy(np.int64),
    }


def _sched(sched: pd.DataFrame, x: np.ndarray, b: int) -> dict[str, Any]:
    s, x = _per_bin_peak(sched.reset_index(drop=True), x, "threads", b)
    return {"x": x, **{c: s[c].to_numpy(float, na_value=np.nan) for c in SCHED_LINES}}


def _rate(agg: pd.DataFrame, slot_of_code: np.ndarray, b: int, n_slots: int) -> dict[str, Any]:
    slot = slot_of_code[agg["site"].to_numpy(np.int64)] if len(agg) else np.array([], np.int64)
    wide = (
        pd.DataFrame({"bin": agg["bin"], "slot": slot, "n": agg["created"]})
        .pivot_table(index="bin", columns="slot", values="n", aggfunc="sum", fill_value=0)
        .reindex(columns=range(n_slots), fill_value=0)
    )
    per_s = 1000.0 / b
    cols: dict[str, Any] = {
        "x": wide.index.to_numpy(float) + b / 2,
        "w": np.full(len(wide), b * 0.9),
        "n": wide.sum(axis=1).to_numpy(np.int64),
    }
    for i in range(n_slots):
        cols[f"r{i}"] = wide[i].to_numpy(float) * per_s
    return cols


def _alive(
    g: pd.DataFrame,
    x: np.ndarray,
    g_sites: pd.Series,
    catalogue: pd.Series,
    slot_of_code: np.ndarray,
    n_slots: int,
) -> dict[str, Any]:
    codes = site_codes(catalogue, g_sites.to_numpy(object))
    slot = slot_of_code[codes] if len(codes) else codes
    wide = (
        pd.DataFrame({"snapshot": g["snapshot"].to_numpy(), "slot": slot, "x": x})
        .pivot_table(index="snapshot", columns="slot", values="x", aggfunc="size", fill_value=0)
        .reindex(columns=range(n_slots), fill_value=0)
    )
    when = pd.Series(x).groupby(g["snapshot"].to_numpy()).min().reindex(wide.index)
    cols: dict[str, Any] = {"x": when.to_numpy(float)}
    for i in range(n_slots):
        cols[f"a{i}"] = wide[i].to_numpy(float)
    for i in range(n_slots):  # the top of each slot's band: a marker that a lone snapshot shows
        top = sum(cols[f"a{j}"] for j in range(i + 1))
        cols[f"c{i}"] = np.where(cols[f"a{i}"] > 0, top, np.nan)
    return cols


def _spikes(sched: pd.DataFrame, g: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, Any]:
    if sched["goroutines"].notna().any():
        ep = growth_episodes(sched["time"], sched["goroutines"])
    elif len(metrics):
        ep = growth_episodes(metrics["time"], metrics["goroutines"])
    elif len(g):
        per = g.groupby("snapshot").agg(time=("time", "min"), n=("goid", "size"))
        ep = growth_episodes(per["time"], per["n"])
    else:
        ep = growth_episodes(pd.Series([], dtype=tables.TIME), pd.Series([], dtype="Int64"))
    if len(ep) > MAX_EPISODES:
        ep = ep.nlargest(MAX_EPISODES, "rise").sort_values("start")
    left, right = ms(ep["start"]), ms(ep["end"])
    label = [
        f"{k} +{r:,} goroutines ({a:,} → {p:,}) in {describe_ms(w)}"
        for k, r, a, p, w in zip(
            ep["kind"], ep["rise"], ep["start_count"], ep["peak_count"], right - left, strict=True
        )
    ]
    return {
        "left": left,
        "right": right,
        "mid": (left + right) / 2,
        "tag": [lab if k == "climb" else "" for k, lab in zip(ep["kind"], label, strict=True)],
        "top": ep["peak_count"].to_numpy(float),
        "bottom": np.zeros(len(ep)),
        "kind": ep["kind"].tolist(),
        "per_s": ep["per_s"].to_numpy(float),
        "label": label,
    }


def _heat(
    waits: pd.DataFrame, g: pd.DataFrame, t_snap: np.ndarray, b: int
) -> tuple[dict[str, Any], list[str]]:
    """Goroutines per wait reason per time cell (the peak within the cell)."""
    if len(waits):
        x, reason, count = ms(waits["time"]), waits["wait_reason"], waits["count"]
    elif len(g):
        w = pd.DataFrame({"x": t_snap, "reason": g["wait_reason"].to_numpy(object)})
        w = w[w["reason"].notna() & (w["reason"] != "")]
        w = w.groupby(["x", "reason"]).size().reset_index(name="count")
        x, reason, count = w["x"].to_numpy(float), w["reason"], w["count"]
    else:
        x, reason, count = np.array([]), pd.Series([], dtype=object), pd.Series([], dtype=int)
    ticks = np.unique(x)
    step = float(np.median(np.diff(ticks))) if len(ticks) > 1 else b
    hb = choose_bin(0, at_least=max(b, step))
    cells = (
        pd.DataFrame({"cell": np.floor(x / hb) * hb, "reason": reason.to_numpy(object), "n": count})
        .groupby(["cell", "reason"])["n"]
        .max()
        .reset_index()
    )
    order = cells.groupby("reason")["n"].sum().sort_values(ascending=False).index.tolist()
    return {
        "x": cells["cell"].to_numpy(float) + hb / 2,
        "w": np.full(len(cells), float(hb)),
        "reason": cells["reason"].tolist(),
        "count": cells["n"].to_numpy(float),
    }, [str(r) for r in order]


def _notes(
    rec: Recording, data: TimelineData, *, n_created: int, n_sites: int, top: int
) -> list[str]:
    has = data.has
    name = rec.name or "TARGET"
    notes = []
    if not any(has.values()):
        notes.append("Nothing recorded yet: with --live the panels fill in as the target runs.")
    if has["counts"] and not rec.sched["goroutines"].notna().any() and not len(rec.metrics):
        notes.append(
            "Goroutine counts by state come from the snapshots; launch with --detail for "
            "one per schedtrace tick."
        )
    if not has["counts"]:
        notes.append(
            f"No goroutine counts: launch with --detail (per-state counts from scheddetail) "
            f"or take snapshots with %schedsnap {name}."
        )
    if not has["rate"]:
        src = (
            " The table counts goroutines in the snapshot where they first appear."
            if data.creation_source == "snapshots"
            else ""
        )
        notes.append(
            f"No creation trace: %gotrace {name} or %dlvtrace {name} fills 'creations per "
            f"site'.{src}"
        )
    if not has["alive"]:
        notes.append(
            f"No snapshots: %schedsnap {name} fills 'alive per site' and the table's "
            "alive and blocked-at columns."
        )
    if not has["heat"]:
        notes.append("No wait reasons: launch with --detail or take snapshots to fill the heatmap.")
    if n_created:
        notes.append(
            f"{n_created:,} creations are drawn as counts per {describe_ms(data.bin_ms)} bin "
            f"and site, not one by one ({n_sites - 1:,} sites: top {min(top, n_sites - 1)} "
            "coloured, the rest grey)."
        )
    if len(rec.sched) > MAX_POINTS:
        notes.append(
            f"{len(rec.sched):,} schedtrace ticks are drawn as the peak of each "
            f"{describe_ms(data.bin_ms)} bin."
        )
    for kind, n in rec.dropped.items():
        notes.append(f"The oldest {n:,} {kind} rows were dropped (GoleakMagics.max_rows).")
    return notes
