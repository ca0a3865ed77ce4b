"""Growth trends, spike detection, snapshot diff, suspects ranking.

Suspects: per creation site (``created_by created_at``, the "func file:line" form of the
``creations`` table), over the snapshot series —

alive           its goroutines in the last snapshot
growth_per_min  Theil-Sen slope of its count over the snapshots (median of the pairwise
                slopes: one odd snapshot does not move it); NaN with a single snapshot
persisted       goroutines of the last snapshot already seen in an earlier one (ids are
                never reused)
leaked_proven   goroutines of the last snapshot the GC proved can never wake up
blocked_at      the dominant "wait reason at innermost frame of the program's own code"
                (among the proven leaks, when there are some)
score           goroutines the evidence says are leaking: the proven ones, or, if more,
                the ones that arrived during the series and stayed — first seen after the
                first snapshot, still there in the last, so alive across at least one
                interval (with two snapshots: seen in both) — capped by what the growth
                adds up to over the window (growth_per_min x minutes). A site at or
                above SUSPECT_THRESHOLD is a suspect.

Short-lived workers do not outlive a snapshot interval, so bursts (however big) score
~0; a pool that stays but does not grow, or churns at a flat count, scores ~0; a leak
keeps what it adds, or is proven.

The rule (``suspect``, with the reason in ``why``), first that applies:

proven          the GC proved at least one of its goroutines can never wake up: a
                certainty, whatever the count.
left behind     the last snapshot was taken when the tests had returned (``test-end``),
                or from a test-timeout dump (``timeout``): its goroutines blocked on
                another goroutine (channel, select, lock, WaitGroup, Cond) in the
                program's own code are left behind by the tests.
deadlock        the last snapshot is a deadlock's dump (``fatal error: all goroutines
                are asleep``), or the program is hung: every goroutine it has (the
                runtime's own left out, as dumps do) is blocked on another goroutine,
                at least one of its own code on a channel, lock, WaitGroup or Cond (a
                lone ``select`` may be a ticker loop), none runnable, in I/O, asleep or
                in a syscall (os/signal's loop is); and each of its own blocked for
                ``HANG_MINUTES`` or more by the runtime's count (a dump's ``N minutes``,
                kept when a GC ran meanwhile: two snapshots of a busy pipeline can look
                the same, a minute blocked cannot). Every site with a goroutine of its
                own code in it is a suspect.
growth          ``score`` at or above SUSPECT_THRESHOLD (long-running services).

An execution trace (``%gotrace``), where there is one, adds to each site's ``evidence``
what it saw in its window (``with_trace``): goroutines created, how many never ended and
where most of those last blocked. It changes no score and no verdict; a site only the
trace saw gets a row that is never a suspect (no snapshot series, no trend).

A healthy program has none of these: its workers end, it waits in I/O or on timers,
and nothing it keeps grows. Suspects come first, sites whose ``go`` statement is in
the program's own code before the test harness's (``testing.*``), then by score.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from . import tables
from .dumps.filters import HARNESS_FILE_RE
from .errors import GoleakError

EPISODE_COLUMNS = ["start", "end", "start_count", "peak_count", "rise", "per_s", "kind"]
MIN_RISE = 10  # goroutines: smaller rises are scheduling noise, not a spike or a climb


def growth_episodes(
    times: pd.Series, counts: pd.Series, min_rise: float | None = None
) -> pd.DataFrame:
    """Spikes and steady climbs in a goroutine-count series.

    An episode runs from a trough to its peak and lasts as long as no dip gives back
    half of what it gained so far, so a noisy climb stays one episode. It is a
    ``spike`` when the count falls back by half the rise within as long as it took to
    rise, and at least five ticks of the series (a burst that is collected), else a
    ``climb`` (what stays: the leak shape).
    ``min_rise`` defaults to max(10, 20% of the starting level).
    Returns one row per episode: start, end (the peak), start_count, peak_count, rise,
    per_s (goroutines per second while rising), kind.
    """
    ok = counts.notna().to_numpy() & times.notna().to_numpy()
    t = times[ok].reset_index(drop=True)
    v = counts[ok].to_numpy(dtype=float)
    n = len(v)
    tick_s = float(np.median(np.diff(t.astype("int64")))) / 1e9 if n > 1 else 0.0
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
            soon = max(1.5 * rise_s, 5 * tick_s)  # a one-tick burst may linger a few ticks
            fell = j < n and (t[j] - t[peak]).total_seconds() <= soon
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


# ---- suspects ----------------------------------------------------------------------------
SUSPECT_THRESHOLD = 5.0  # goroutines; the healthy example stays far below it
MAX_SLOPE_POINTS = 64  # Theil-Sen over at most this many snapshots (evenly picked)
NO_SITE = "(no creator: main or runtime)"
HANG_MINUTES = 1  # a hang: every goroutine blocked this long, by the runtime's count
MAX_CYCLE_LINES = 20  # goroutines of a deadlock named in the report
MAX_GOIDS = 5  # goroutine ids shown per place in a report's "blocked at the end" lines

# How a snapshot relates to the end of the program (Snapshot.end): the tests had
# returned (the injected TestMain), or the dump a dying program printed.
TEST_END = "test-end"
END_KINDS = (TEST_END, "timeout", "deadlock", "panic", "sigquit")
LEFT_BEHIND_ENDS = frozenset([TEST_END, "timeout"])
WHY = {
    "proven": "proven leaked by the GC",
    TEST_END: "left blocked after the tests returned",
    "timeout": "blocked when the test timed out",
    "deadlock": "deadlock: every goroutine is blocked on another",
    "growth": "grows and keeps what it adds",
}
# Blocked on another goroutine: what leaks and deadlocks are made of. The rest of the
# wait reasons (IO wait, sleep, syscall, GC) end by themselves or from outside.
_ON_GOROUTINE_RE = r"^(?:chan |select|sync\.|semacquire|synctest)"
# ...of which a plain select can also be a healthy ticker loop: a hang needs one other.
_ON_SYNC_RE = r"^(?:chan |sync\.|semacquire|synctest)"


def goroutine_sites(g: pd.DataFrame) -> pd.Series:
    """Each row's creation site, ``created_by created_at`` (NA without a creator).

    Built once per distinct (created_by, created_at): a snapshot series has millions of
    rows but few sites.
    """
    key = g[["created_by", "created_at"]]
    group = key.groupby(list(key), dropna=False, sort=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(g))).groupby(group).first().sort_index().to_numpy()
    u = g.iloc[first]
    site = (u["created_by"].fillna("") + " " + u["created_at"].fillna("")).str.strip()
    per_group = site.mask(site == "", pd.NA).to_numpy(object)
    return pd.Series(per_group[group], index=g.index, dtype="string")


def short_loc(frame: str) -> str:
    """``func /long/path/file.go:12`` → ``func file.go:12``."""
    func, sep, where = str(frame).rpartition(" ")
    return f"{func} {PurePosixPath(where).name}" if sep else str(frame)


def theil_sen(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Median pairwise slope of each row of ``y`` (sites x snapshots) over times ``t``."""
    if len(t) > MAX_SLOPE_POINTS:
        pick = np.unique(np.linspace(0, len(t) - 1, MAX_SLOPE_POINTS).round().astype(int))
        t, y = t[pick], y[:, pick]
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    ok = dt > 0
    if not ok.any():
        return np.full(len(y), np.nan)
    slopes = (y[:, j[ok]] - y[:, i[ok]]) / dt[ok]
    return np.median(slopes, axis=1)


def waiting_on_goroutine(g: pd.DataFrame) -> pd.Series:
    """Rows blocked on another goroutine: a channel, select, lock, WaitGroup, Cond."""
    reason = g["wait_reason"].fillna("")
    return g["status"].isin(["waiting", "leaked"]) & reason.str.contains(_ON_GOROUTINE_RE)


def own_code(g: pd.DataFrame) -> pd.Series:
    """Rows whose innermost frame outside GOROOT is the program's, not the test harness's
    (``dumps.filters.harness_file``: the generated test main, the injected TestMain)."""
    return g["user_top"].notna() & ~g["user_top"].fillna("").str.contains(HARNESS_FILE_RE)


def blocked_on_goroutine(g: pd.DataFrame) -> pd.Series:
    """...and in the program's own code."""
    return waiting_on_goroutine(g) & own_code(g)


def stuck(g: pd.DataFrame, ends: Mapping[int, str] | None = None) -> pd.DataFrame:
    """The goroutines of a deadlock or hang in the last snapshot of ``g`` (empty if
    there is none; see the rule above): each with its state, where it blocks and its
    ``go`` statement."""
    if not len(g):
        return g.iloc[:0]
    if "site" not in g:
        g = g.assign(site=goroutine_sites(g))
    last_id = int(g["snapshot"].max())
    last = g[g["snapshot"] == last_id]
    own = last[own_code(last)]
    end = (ends or {}).get(last_id)
    if end == "deadlock":
        return own[blocked_on_goroutine(own)]
    # Anything else (running, in I/O or a syscall such as os/signal's loop, asleep)
    # may still wake the rest.
    if end in LEFT_BEHIND_ENDS or not len(own) or not waiting_on_goroutine(last).all():
        return own.iloc[:0]
    if not own["wait_reason"].fillna("").str.contains(_ON_SYNC_RE).any():
        return own.iloc[:0]
    # Two snapshots of a busy pipeline can look the same; a minute blocked cannot.
    if not (own["wait_minutes"].fillna(0) >= HANG_MINUTES).all():
        return own.iloc[:0]
    return own


def blocked_at_end(g: pd.DataFrame, ends: Mapping[int, str] | None = None) -> pd.DataFrame:
    """When the last snapshot was taken at the program's end (``ends``): its goroutines
    blocked on another goroutine in the program's own code, grouped by where they block
    and their ``go`` statement (site, blocked_at, count, goids: a few ids), most first;
    empty otherwise. What a report names after a dying program's dump."""
    cols = ["site", "blocked_at", "count", "goids"]
    if not len(g) or int(g["snapshot"].max()) not in (ends or {}):
        return pd.DataFrame(columns=cols)
    last = g[g["snapshot"] == g["snapshot"].max()]
    last = last[blocked_on_goroutine(last)]
    last = last.assign(
        site=goroutine_sites(last).fillna(NO_SITE),
        blocked_at=last["wait_reason"] + " at " + last["user_top"],
    )
    out = last.groupby(["site", "blocked_at"], sort=False)["goid"].agg(
        count="size", goids=lambda x: tuple(x.head(MAX_GOIDS))
    )
    return out.reset_index().sort_values("count", ascending=False, ignore_index=True)


def suspects(
    g: pd.DataFrame,
    threshold: float = SUSPECT_THRESHOLD,
    ends: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """The ``suspects`` table of a ``goroutines`` table, suspects first (see the rule
    above). ``ends`` maps snapshot numbers to how they relate to the program's end
    (``END_KINDS``): the tests had returned, or a dying program's dump."""
    if not len(g):
        return tables.empty("suspects")
    g = g.assign(site=goroutine_sites(g)).dropna(subset=["site"])
    snaps = g.groupby("snapshot")["time"].first().sort_index()
    if not len(g) or not len(snaps):
        return tables.empty("suspects")
    minutes = ((snaps - snaps.iloc[0]).dt.total_seconds() / 60).to_numpy()
    window = float(minutes[-1])
    counts = g.groupby(["site", "snapshot"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=snaps.index, fill_value=0)
    growth = theil_sen(minutes, counts.to_numpy(float)) if len(snaps) > 1 else np.nan
    growth = pd.Series(growth, index=counts.index, dtype=float)
    first_seen = counts.gt(0).idxmax(axis=1).map(snaps)

    first_id, last_id = snaps.index[0], snaps.index[-1]
    last = g[g["snapshot"] == last_id]
    arrived = last["goid"].map(g.groupby("goid")["snapshot"].min())
    seen_before = arrived < last_id
    # Arrived during the series and stayed; with only two snapshots there is no "during",
    # so everything seen in both.
    stayed = seen_before & (arrived > first_id) if len(snaps) > 2 else seen_before
    last = last.assign(seen_before=seen_before.to_numpy(), stayed=stayed.to_numpy())
    per = last.groupby("site").agg(
        alive=("goid", "size"),
        persisted=("seen_before", "sum"),
        stayed=("stayed", "sum"),
        leaked_proven=("leaked", "sum"),
    )
    per = per.reindex(counts.index, fill_value=0)
    block = blocking(last)
    end = (ends or {}).get(int(last_id))
    stuck_sites = stuck(g, ends)["site"].value_counts()
    left = (
        last[blocked_on_goroutine(last)]["site"].value_counts()
        if end in LEFT_BEHIND_ENDS
        else stuck_sites.iloc[:0]
    )

    rows = []
    for site in counts.index:
        alive, persisted = int(per.at[site, "alive"]), int(per.at[site, "persisted"])
        leaked, rate = int(per.at[site, "leaked_proven"]), float(growth[site])
        grown = max(0.0, rate) * window if np.isfinite(rate) else 0.0
        stayed = int(per.at[site, "stayed"])
        retained = min(float(stayed), grown)
        where, share, stack = block.get(site, (None, 0.0, None))
        behind = int(left.get(site, 0))
        hung = int(stuck_sites.get(site, 0))
        score = round(max(float(leaked), retained, float(behind), float(hung)), 2)
        why = (
            "proven" if leaked
            else end if behind
            else "deadlock" if hung
            else "growth" if score >= threshold
            else None
        )  # fmt: skip
        line = evidence(rate, window, alive, persisted, stayed, leaked, where, share, len(snaps))
        rows.append(
            {
                "site": site,
                "alive": alive,
                "growth_per_min": rate,
                "first_seen": first_seen[site],
                "persisted": persisted,
                "leaked_proven": leaked,
                "blocked_at": where,
                "example_stack": stack,
                "score": score,
                "suspect": why is not None,
                "why": WHY[why] if why else None,
                "evidence": f"{WHY[why]}: {line}" if why else line,
            }
        )
    out = tables.frame("suspects", rows)
    harness = out["site"].str.startswith("testing.").fillna(False)
    out = out.assign(_own=~harness)
    keys = ["suspect", "_own", "score", "alive"]
    out = out.sort_values(keys, ascending=False, ignore_index=True, kind="stable")
    return out.drop(columns="_own")


def trace_evidence(creations: pd.DataFrame, transitions: pd.DataFrame) -> pd.DataFrame:
    """Per creation site, from an execution trace: goroutines ``created`` in its window,
    how many of them ``never_ended`` there, and where most of those last blocked
    (``blocked_at``, "reason at func file:line")."""
    c = creations[creations["source"] == "trace"]
    cols = ["created", "never_ended", "blocked_at"]
    if not len(c):
        return pd.DataFrame(columns=cols, index=pd.Index([], name="site"))
    t = transitions
    ended = set(t.loc[t["to_state"] == "dead", "goid"].tolist())
    c = c.assign(open=~c["new_goid"].isin(ended))
    blocks = t[(t["to_state"] == "waiting") & t["goid"].isin(c.loc[c["open"], "new_goid"])]
    last = blocks.sort_values("time").drop_duplicates("goid", keep="last")
    place = (
        last["reason"].astype(object).fillna("?") + " at " + last["at"].astype(object).fillna("?")
    )
    where = place.groupby(last["site"].astype(object).to_numpy()).agg(lambda p: p.mode().iloc[0])
    out = c.groupby("site").agg(created=("seq", "size"), never_ended=("open", "sum"))
    out["blocked_at"] = where.reindex(out.index)
    return out


def with_trace(
    ranked: pd.DataFrame, creations: pd.DataFrame, transitions: pd.DataFrame
) -> pd.DataFrame:
    """``ranked`` (the suspects table) with an execution trace's evidence added to each
    site's ``evidence`` (the rule and the scores stay the snapshots'); a site only the
    trace saw gets a row of its own, never a suspect (no snapshot series, no trend)."""
    ev = trace_evidence(creations, transitions)
    if not len(ev):
        return ranked
    line = {
        site: f"trace: {int(r.created):,} created in its window, {int(r.never_ended):,} "
        "never ended" + (f", most last blocked in {r.blocked_at}" if isinstance(
            r.blocked_at, str) else "")
        for site, r in ev.iterrows()
    }  # fmt: skip
    out = ranked.copy()
    known = set(out["site"].dropna())
    out["evidence"] = [
        f"{e}; {line[s]}" if s in line else e
        for s, e in zip(out["site"], out["evidence"], strict=True)
    ]
    extra = [
        {
            "site": site,
            "alive": int(r.never_ended),
            "blocked_at": r.blocked_at if isinstance(r.blocked_at, str) else None,
            "score": 0.0,
            "suspect": False,
            "persisted": 0,
            "leaked_proven": 0,
            "evidence": line[site],
        }
        for site, r in ev.iterrows()
        if site not in known and r.never_ended
    ]
    if extra:
        more = tables.frame("suspects", extra).sort_values("alive", ascending=False)
        out = pd.concat([out, more], ignore_index=True) if len(out) else more
    return tables.conform("suspects", out.reset_index(drop=True))


def blocking(last: pd.DataFrame) -> dict[str, tuple[str, float, tuple[str, ...]]]:
    """Per site of ``last`` (one snapshot's rows with a ``site`` column): (dominant
    "reason at frame", its share, a stack of one such goroutine).

    Where the GC proved some leaked, the dominant place among those wins.
    """
    reason = last["wait_reason"].fillna(last["status"]).fillna("?")
    loc = last["user_top"].fillna(last["top"]).fillna("?")
    key = reason + " at " + loc
    out: dict[str, tuple[str, float, tuple[str, ...]]] = {}
    leaked = last["leaked"].to_numpy(bool)
    for site, keys in key.groupby(last["site"], sort=False):
        proven = keys[leaked[last.index.get_indexer(keys.index)]]
        counts = (proven if len(proven) else keys).value_counts()
        top = str(counts.index[0])
        row = last.loc[keys[keys == top].index[0]]
        out[str(site)] = (top, float((keys == top).mean()), _example(row))
    return out


def _example(row: pd.Series) -> tuple[str, ...]:
    stack = row["stack"]
    if isinstance(stack, (tuple, list, np.ndarray)) and len(stack):
        return tuple(str(f) for f in stack)
    frames = [f for f in (row["top"], row["user_top"]) if isinstance(f, str)]
    if isinstance(row["created_by"], str):
        frames.append(f"created by {row['created_by']} {row['created_at']}")
    return tuple(dict.fromkeys(frames))  # top and user_top are often the same frame


def _rate(per_min: float) -> str:
    return f"{per_min:+,.1f}/min" if np.isfinite(per_min) else "unknown (one snapshot)"


def _span(minutes: float) -> str:
    if minutes >= 1:
        return f"{minutes:.0f} min" if minutes >= 10 else f"{minutes:.1f} min"
    return f"{minutes * 60:.0f} s"


def evidence(
    rate: float,
    window: float,
    alive: int,
    persisted: int,
    stayed: int,
    leaked: int,
    where: str | None,
    share: float,
    n_snaps: int,
) -> str:
    """The plain-language line behind a score."""
    parts = []
    if np.isfinite(rate) and n_snaps > 1:
        parts.append(f"{rate:+,.0f}/min over {_span(window)} ({n_snaps} snapshots)")
    else:
        parts.append("one snapshot, no trend yet")
    parts.append(f"{alive:,} alive")
    if n_snaps > 1:
        parts.append(f"{persisted:,} of them seen in an earlier snapshot")
    if stayed:
        parts.append(f"{stayed:,} arrived during the series and stayed")
    if where:
        reason, _, frame = where.partition(" at ")
        parts.append(f"{share:.0%} blocked in {reason} at {short_loc(frame)}")
    if leaked:
        parts.append(f"{leaked:,} proven leaked by the GC")
    return ", ".join(parts)


# ---- diff --------------------------------------------------------------------------------
@dataclass
class SnapshotDiff:
    """Goroutines new in ``b``, gone since ``a``, in both; and the per-site deltas."""

    a: int
    b: int
    new: np.ndarray
    gone: np.ndarray
    persisting: np.ndarray
    sites: pd.DataFrame  # site, a, b, delta, new, gone (largest |delta| first)

    def summary(self) -> str:
        return (
            f"snapshot {self.a} -> {self.b}: {len(self.new):,} new, {len(self.gone):,} gone, "
            f"{len(self.persisting):,} persisting goroutines"
        )

    def __repr__(self) -> str:
        return f"<{self.summary()}>\n{self.sites.head(20).to_string(index=False)}"

    def _repr_html_(self) -> str:
        return f"<p>{self.summary()}</p>" + self.sites.head(50).to_html(index=False)


def diff(g: pd.DataFrame, a: int, b: int) -> SnapshotDiff:
    """Compare snapshots ``a`` and ``b`` of one ``goroutines`` table."""
    have = set(g["snapshot"].unique().tolist())
    missing = [x for x in (a, b) if x not in have]
    if missing:
        known = ", ".join(str(x) for x in sorted(have)) or "none yet"
        raise GoleakError(f"there is no snapshot {missing[0]} (taken: {known}); pick two of those.")
    ga, gb = g[g["snapshot"] == a], g[g["snapshot"] == b]
    ia, ib = ga["goid"].to_numpy(), gb["goid"].to_numpy()
    new, gone = np.setdiff1d(ib, ia), np.setdiff1d(ia, ib)
    both = np.intersect1d(ia, ib)
    sa = goroutine_sites(ga).fillna(NO_SITE)
    sb = goroutine_sites(gb).fillna(NO_SITE)
    table = pd.DataFrame(
        {
            "a": sa.value_counts(),
            "b": sb.value_counts(),
            "new": sb[gb["goid"].isin(new).to_numpy()].value_counts(),
            "gone": sa[ga["goid"].isin(gone).to_numpy()].value_counts(),
        }
    )
    table = table.fillna(0).astype("int64")
    table["delta"] = table["b"] - table["a"]
    table = table.rename_axis("site").reset_index()
    table = table[["site", "a", "b", "delta", "new", "gone"]]
    order = table["delta"].abs().sort_values(ascending=False, kind="stable").index
    return SnapshotDiff(a, b, new, gone, both, table.loc[order].reset_index(drop=True))


# ---- report ------------------------------------------------------------------------------
@dataclass
class Report:
    """The verdict on one target: top suspect, where it blocks, a stack, the numbers."""

    target: str
    suspects: pd.DataFrame
    snapshots: list[dict[str, Any]]
    stuck: pd.DataFrame | None = None  # a deadlock's goroutines (``stuck``), if any
    blocked: pd.DataFrame | None = None  # blocked at the program's end (``blocked_at_end``)

    @property
    def top(self) -> pd.Series | None:
        s = self.suspects
        return s.iloc[0] if len(s) and s["suspect"].iloc[0] else None

    def _cycle(self) -> list[str]:
        """One line per goroutine of a deadlock: where it blocks, its go statement."""
        if self.stuck is None or not len(self.stuck):
            return []
        lines = []
        for r in self.stuck.head(MAX_CYCLE_LINES).itertuples():
            site = short_loc(r.site) if isinstance(r.site, str) else NO_SITE
            lines.append(
                f"goroutine {r.goid}: {r.wait_reason} at {short_loc(r.user_top)}, started at {site}"
            )
        if len(self.stuck) > MAX_CYCLE_LINES:
            lines.append(f"... and {len(self.stuck) - MAX_CYCLE_LINES:,} more")
        return lines

    def _blocked(self) -> list[str]:
        """Where the goroutines of the program's own code were blocked as it ended."""
        if self.blocked is None or not len(self.blocked):
            return []
        b = self.blocked
        total = int(b["count"].sum())
        lines = [f"blocked in the program's own code at the end: {total:,} goroutine(s)"]
        for r in b.head(MAX_CYCLE_LINES).itertuples():
            ids = ", ".join(str(i) for i in r.goids) + (", ..." if r.count > len(r.goids) else "")
            reason, _, frame = str(r.blocked_at).partition(" at ")
            lines.append(
                f"    {r.count:,} in {reason} at {short_loc(frame)}, started at "
                f"{short_loc(r.site)} (goroutine {ids})"
            )
        return lines

    def _lines(self) -> tuple[str, list[str], list[str], tuple[str, ...]]:
        snaps = self.snapshots
        sources = ", ".join(dict.fromkeys(str(x["source"]) for x in snaps)) or "none"
        span = ""
        if len(snaps) > 1:
            t0, t1 = pd.Timestamp(snaps[0]["time"]), pd.Timestamp(snaps[-1]["time"])
            span = f" over {_span((t1 - t0).total_seconds() / 60)}"
        basis = f"{len(snaps)} snapshot(s){span} via {sources}"
        top = self.top
        last = snaps[-1] if snaps else {}
        said = [f"as it ended: {n}" for n in last.get("notes", [])] if last.get("end") else []
        if top is None:
            verdict = (
                f"No leak suspect in {self.target}: nothing proven leaked, left blocked "
                f"or deadlocked, and no creation site scores {SUSPECT_THRESHOLD:g} or more "
                f"({basis})."
            )
            return verdict, [*said, *self._blocked()], [], ()
        cycle = self._cycle()
        started = (
            f"a test's own goroutine ({short_loc(top['site'])})"
            if str(top["site"]).startswith("testing.")
            else f"goroutines started at {short_loc(top['site'])}"
        )
        if top["why"] == WHY["deadlock"] and cycle:
            verdict = (
                f"Deadlock in {self.target}: {len(self.stuck):,} goroutine(s) blocked on "
                f"one another, none can proceed ({basis}); the first started at "
                f"{short_loc(top['site'])}, blocked in {top['blocked_at']}."
            )
        else:
            verdict = (
                f"Leak suspect in {self.target}: {started}, blocked in {top['blocked_at']}, "
                f"{top['why']} ({basis})."
            )
        numbers = [
            *said,
            *(cycle or self._blocked()),
            f"site: {top['site']}",
            f"evidence: {top['evidence']}",
            f"alive {top['alive']:,}; growth {_rate(top['growth_per_min'])}; "
            f"seen in an earlier snapshot {top['persisted']:,}; proven leaked "
            f"{top['leaked_proven']:,}; score {top['score']:,.1f} "
            f"(threshold {SUSPECT_THRESHOLD:g}); first seen {top['first_seen']}",
        ]
        others = [
            f"{short_loc(r.site)}: score {r.score:,.1f}, {r.alive:,} alive"
            for r in self.suspects.iloc[1:6].itertuples()
            if r.suspect
        ]
        return verdict, numbers, others, tuple(top["example_stack"] or ())

    def text(self) -> str:
        verdict, numbers, others, stack = self._lines()
        out = [verdict, *numbers]
        if stack:
            out += ["representative stack:", *(f"    {f}" for f in stack)]
        if others:
            out += ["other suspects:", *(f"    {o}" for o in others)]
        return "\n".join(out)

    def html(self) -> str:
        verdict, numbers, others, stack = self._lines()
        e = html.escape
        parts = [f"<h3>goleak report: {e(self.target)}</h3>", f"<p><b>{e(verdict)}</b></p>"]
        if numbers:
            parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in numbers) + "</ul>")
        if stack:
            parts.append("<p>Representative stack:</p><pre>" + e("\n".join(stack)) + "</pre>")
        if others:
            parts.append("<p>Other suspects:</p><ul>")
            parts.append("".join(f"<li>{e(o)}</li>" for o in others) + "</ul>")
        cols = ["site", "alive", "growth_per_min", "persisted", "leaked_proven", "score"]
        parts.append(self.suspects[cols].head(10).to_html(index=False, float_format="%.1f"))
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return self.text()

    def save_html(self, path: str) -> None:
        doc = f"<!doctype html><meta charset='utf-8'><title>goleak report</title>{self.html()}"
        with open(path, "w", encoding="utf-8") as f:
            f.write(doc)
