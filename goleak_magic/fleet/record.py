"""A fleet in the session: a :class:`~goleak_magic.record.Record` whose tables are the
whole fleet's, so listing, status, save/load and the timeline work on it as on a target.

Its ``goroutines`` are the ``fleet_goroutines`` table (every instance's snapshots, with
``instance`` and ``run``); its ``suspects`` are the fleet suspects (``fleet_suspects``);
``instances`` and ``series`` are what Prometheus said. Headers (auth) are held for the
next snapshot and never saved, shown or put in a message.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

from .. import analysis, tables
from ..record import Record
from .snapshots import DEFAULT_TEMPLATE, FleetSnapshot
from .suspects import fleet_suspects

STATE = "fleet"


@dataclass(eq=False, repr=False)
class Fleet(Record):
    """One named fleet: the instances Prometheus lists and their goroutine snapshots."""

    state: str = STATE  # a fleet has no process of its own
    kind: str | None = STATE
    prometheus: str | None = None  # the Prometheus base URL asked (never with credentials)
    match: str | None = None  # the selector, PromQL label matchers (job="api")
    window_s: float | None = None  # seconds of go_goroutines the instances were judged on
    pprof_template: str = DEFAULT_TEMPLATE  # how to reach an instance's pprof
    instances: pd.DataFrame = field(default_factory=lambda: tables.empty("instances"))
    series: pd.DataFrame = field(default_factory=lambda: tables.empty("instance_series"))
    failures: list[str] = field(default_factory=list)  # one line per failed instance dump
    notes: list[str] = field(default_factory=list)  # restarts, interruptions
    headers: dict[str, str] = field(default_factory=dict)  # sent only; never saved or shown

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tables["goroutines"] = tables.FrameLog("fleet_goroutines", self.settings.max_rows)
        self._suspects = (0, tables.empty("fleet_suspects"))

    @property
    def suspects(self) -> pd.DataFrame:
        """The fleet suspects of every snapshot round taken (``fleet_suspects``)."""
        n = self.tables["goroutines"].appended
        if self._suspects[0] != n:
            self._suspects = (n, fleet_suspects(self.goroutines))
        return self._suspects[1].copy()

    @property
    def climbing(self) -> list[str]:
        """The instances whose go_goroutines climb, by Prometheus."""
        return [str(i) for i in self.instances.loc[self.instances["climbing"], "instance"]]

    def add(self, snap: FleetSnapshot) -> FleetSnapshot:
        """Keep ``snap``'s rounds, numbered after the rounds already kept; returns ``snap``
        with the same numbers."""
        g = snap.goroutines
        base = max((int(s["id"]) for s in self.snapshots), default=0)
        g["snapshot"] += base
        for k, chunk in g.groupby("snapshot", sort=True):
            self.snapshots.append(
                {
                    "id": int(k),
                    "time": pd.Timestamp(chunk["time"].min()).isoformat(),
                    "source": "pprof",
                    "goroutines": len(chunk),
                    "leaked": int(chunk["leaked"].sum()),
                    "instances": int(chunk["instance"].nunique()),
                }
            )
            self.tables["goroutines"].add(chunk.reset_index(drop=True))
        self.failures.extend(snap.failures)
        self.notes.extend(snap.notes)
        return snap

    def report(self) -> FleetReport:
        return FleetReport(self.name, self.suspects, self.instances, list(self.snapshots),
                           list(self.failures))  # fmt: skip

    def __repr__(self) -> str:
        rounds = len(self.snapshots)
        return (
            f"<Fleet {self.name}: {len(self.instances)} instances ({len(self.climbing)} "
            f"climbing) from {self.prometheus} {{{self.match}}}, {rounds} snapshot round(s), "
            f"{len(self.failures)} failure(s)>"
        )

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(repr(self))}</code>"


@dataclass
class FleetReport:
    """The verdict on a fleet: the top fleet suspect, on how many instances, and where not."""

    fleet: str
    suspects: pd.DataFrame
    instances: pd.DataFrame
    snapshots: list[dict[str, object]]
    failures: list[str]

    def _lines(self) -> tuple[str, list[str]]:
        rounds = len(self.snapshots)
        taken = self.suspects["of"].iloc[0] if len(self.suspects) else None
        climbing = [str(i) for i in self.instances.loc[self.instances["climbing"], "instance"]]
        climb = f"Prometheus shows {len(climbing)} of {len(self.instances)} instances climbing" + (
            f" ({', '.join(climbing)})" if climbing else ""
        )
        if not rounds:
            return (
                f"No snapshot of fleet {self.fleet} yet; {climb}. Take them with "
                f"%schedsnap --fleet {self.fleet}.",
                [],
            )
        basis = f"{rounds} snapshot round(s)"
        if not len(self.suspects):
            return (
                f"No leak suspect on fleet {self.fleet}: no instance shows a creation site "
                f"that leaks ({basis}); {climb}.",
                self.failures,
            )
        top = self.suspects.iloc[0]
        verdict = (
            f"Leak on {top['instances']} of {taken} instances of fleet {self.fleet}: "
            f"goroutines started at {analysis.short_loc(top['site'])}, blocked in "
            f"{top['blocked_at']}, {top['why']} ({basis})."
        )
        lines = [
            f"site: {top['site']}",
            f"evidence: {top['evidence']}",
            f"on: {', '.join(top['affected'])}",
            f"not on: {', '.join(top['unaffected']) or 'none (every instance taken shows it)'}",
            climb,
            *(
                f"other suspect: {analysis.short_loc(r.site)}: {r.evidence}"
                for r in self.suspects.iloc[1:4].itertuples()
            ),
            *(f"skipped: {f}" for f in self.failures),
        ]
        return verdict, lines

    def text(self) -> str:
        verdict, lines = self._lines()
        return "\n".join([verdict, *lines])

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        verdict, lines = self._lines()
        e = html.escape
        items = "".join(f"<li>{e(x)}</li>" for x in lines)
        head = f"<h3>goleak fleet report: {e(self.fleet)}</h3>"
        return f"{head}<p><b>{e(verdict)}</b></p><ul>{items}</ul>"

    def save_html(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"<!doctype html><meta charset='utf-8'>{self._repr_html_()}")
