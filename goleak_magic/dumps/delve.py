"""Delve's ``ListGoroutines`` results (``delve.api.Goroutine``) as dump columns.

The same columns as a ``debug=2`` dump gives, decided by the same ``filters``: the
runtime's own goroutines and the agent's are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import tables
from ..delve.api import G_SCAN, G_STATUS
from ..frames import frame_text
from . import filters

# Delve's status numbers (runtime._G*, named in delve.api); the wait reason, when waiting,
# overrides the word. _Gdeadextra is as dead as _Gdead for a listing.
DELVE_STATUS = {**G_STATUS, 11: "dead"}


def _site_loc(loc: Any) -> str | None:
    return f"{loc.file}:{loc.line}" if loc.file else None


def _loc(loc: Any) -> str | None:
    return frame_text(loc.function or "?", f"{loc.file}:{loc.line}") if loc.file else None


def from_delve(
    gs: list[Any],
    wait_reasons: list[str],
    stacks: Mapping[int, tuple[Any, ...]] | None = None,
) -> dict[str, Any]:
    """Delve ``ListGoroutines`` results (``delve.api.Goroutine``) as parser columns.

    Like a dump, it leaves out the runtime's own goroutines and the agent's (by its
    label, which every goroutine it starts inherits, or its code), shows the main
    goroutine without a creator, and takes as ``top`` the innermost frame a dump would
    print (``filters.shown``). ``stacks`` (goroutine id -> Delve locations,
    innermost first) fills ``stack``. Delve does not say how long a goroutine has waited
    in minutes, nor its parent's id: those stay NA. ``start_func`` is what Delve
    reports: the compiler's ``gowrapN`` wrapper where a dump shows the wrapped function.
    ``testing`` marks the testing harness's goroutines, as the text parser does.
    """
    rows = [
        g
        for g in gs
        if not filters.is_system(g.start_loc.function)
        and not filters.agent_label(g.labels)
        and not filters.agent_code(g.go_statement_loc.file)
        and DELVE_STATUS.get(g.status & ~G_SCAN) != "dead"
    ]
    goroot = next(
        filter(None, (filters.goroot_of(x.function, x.file) for g in gs
                      for x in (g.current_loc, g.go_statement_loc))),
        None,
    )  # fmt: skip
    status = [DELVE_STATUS.get(g.status & ~G_SCAN, f"status {g.status}") for g in rows]
    reason = [
        wait_reasons[g.wait_reason]
        if st in ("waiting", "leaked") and 0 < g.wait_reason < len(wait_reasons)
        else None
        for g, st in zip(rows, status, strict=True)
    ]

    def in_goroot(loc: str) -> bool:
        return goroot is not None and loc.startswith(goroot)

    tops, user_tops, frames, testing = [], [], [], []
    for g in rows:
        locs = list(stacks.get(g.id, ())) if stacks is not None else []
        if not locs:
            locs = [g.current_loc, g.user_current_loc]
        shown = [
            x for i, x in enumerate(locs) if x.file and filters.shown(x.function or "?", i == 0)
        ]
        mine = [x for x in shown if not in_goroot(x.file)]
        tops.append(_loc(shown[0]) if shown else _loc(g.current_loc))
        user_tops.append(_loc(mine[0]) if mine else None)
        frames.append(tuple(_loc(x) for x in locs if x.file) if stacks is not None else None)
        pairs = [(x.function or "?", f"{x.file}:{x.line}") for x in shown]
        testing.append(filters.is_testing(pairs, g.go_statement_loc.function or None, in_goroot))
    main = [g.start_loc.function == "runtime.main" for g in rows]
    return {
        "goid": np.array([g.id for g in rows], np.int64),
        "status": pd.array(status, dtype="string"),
        "wait_reason": pd.array(reason, dtype="string"),
        "wait_minutes": pd.array([None] * len(rows), dtype="Int64"),
        "locked": np.zeros(len(rows), bool),
        "top": pd.array(tops, dtype="string"),
        "user_top": pd.array(user_tops, dtype="string"),
        "created_by": pd.array(
            [None if m else g.go_statement_loc.function for g, m in zip(rows, main, strict=True)],
            dtype="string",
        ),
        "created_at": pd.array(
            [None if m else _site_loc(g.go_statement_loc) for g, m in zip(rows, main, strict=True)],
            dtype="string",
        ),
        "parent_goid": pd.array([None] * len(rows), dtype="Int64"),
        "start_func": pd.array(
            ["main.main" if m else g.start_loc.function for g, m in zip(rows, main, strict=True)],
            dtype="string",
        ),
        "labels": tables.objects([dict(g.labels) if g.labels else None for g in rows]),
        "leaked": np.array([st == "leaked" for st in status], bool),
        "stack": tables.objects(frames),
        "testing": np.array(testing, bool),
    }
