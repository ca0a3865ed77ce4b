"""Goroutine snapshots of many instances at once, into one ``goroutines`` table.

Each instance's pprof (``goroutineleak?debug=2`` where served, which is the whole dump
with the GC's ``(leaked)`` marks, else ``goroutine?debug=2``) is streamed through the
dump parser by a bounded pool of threads; each finished dump becomes a DataFrame chunk at
once, so only the chunks and the dumps in flight are ever held. An instance that is
down, silent, not pprof, or answers an error, an HTML page or garbage costs one line in
``failures``; the others go on and nothing gathered is dropped.

Restarts: a new process between two rounds is a new instance *run* (column ``run``,
from 1): seen when the instance's ``process_start_time_seconds`` (read from the address
Prometheus scrapes) changes, or when a goroutine id of the earlier round comes back with
another creation site or start function (ids are never reused within one process).
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import tables
from ..dumps.model import to_frame
from ..dumps.text import DumpParser
from ..errors import GoleakError
from . import web

DEFAULT_TEMPLATE = "http://{instance}/debug/pprof"
READ_CHUNK = 1 << 20
TOTAL_FACTOR = 10  # a dump may take this many per-read timeouts in all
STEADY = 4  # non-climbing instances taken beside the climbing ones, to compare with
METRICS_LIMIT = 1 << 22  # bytes of /metrics read for process_start_time_seconds
_START_RE = re.compile(rb"^process_start_time_seconds(?:\{[^}]*\})? (\S+)", re.M)
_NETLOC_LITERAL_RE = re.compile(r":?\d*")
FLEET_COLUMNS = ["instance", "run"]

# (instance, round, what happened: "ok: N goroutines" or "failed: why"), on the caller's thread
Progress = Callable[[str, int, str], None]


@dataclass
class FleetSnapshot:
    """The fleet's goroutines (the ``goroutines`` schema + ``instance``, ``run``), the
    instances taken, one line per failed instance per round, and notes (restarts)."""

    goroutines: pd.DataFrame
    instances: list[str]
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rounds: int = 1

    def summary(self) -> str:
        g = self.goroutines
        ok = g["instance"].nunique() if len(g) else 0
        return (
            f"fleet snapshot: {len(g):,} goroutines from {ok} of {len(self.instances)} "
            f"instances over {self.rounds} round(s); {len(self.failures)} failure(s)"
        )

    def __repr__(self) -> str:
        return "\n".join([self.summary(), *self.failures, *self.notes])


@dataclass
class _Instance:
    name: str
    pprof: str  # base URL, no trailing slash
    scrape_url: str | None
    run: int = 1
    start_time: float | None = None
    last: pd.DataFrame | None = None  # goid, created_at, start_func of its last round


def snapshot_fleet(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    pprof_template: str = DEFAULT_TEMPLATE,
    headers: web.Headers = None,
    pool: int = 8,
    timeout: float = 10.0,
    progress: Progress | None = None,
    *,
    rounds: int = 1,
    every: float = 10.0,
    steady: int | None = STEADY,
    stacks: bool = False,
) -> FleetSnapshot:
    """Snapshot the climbing instances of ``rows`` (from ``instances``) and ``steady`` of
    the others (None: all), ``rounds`` times ``every`` seconds apart.

    ``pprof_template`` is formatted with each row's target labels (and ``instance``,
    ``job``); its host must come from those labels, so requests go only to instances
    Prometheus lists. ``pool`` bounds the dumps in flight; ``timeout`` bounds the connect
    and every read of one instance (and TOTAL_FACTOR times it the whole dump).
    ``headers`` (or ``$GOLEAK_HEADERS``) are sent with every request and kept nowhere.
    """
    if pool < 1 or timeout <= 0 or rounds < 1:
        raise GoleakError("pool and rounds must be at least 1 and timeout above zero.")
    hdrs = web.resolve_headers(headers)
    chosen = _choose(_records(rows), steady)
    plan = [_plan(r, pprof_template) for r in chosen]
    chunks: list[pd.DataFrame] = []
    failed: dict[str, tuple[str, list[int]]] = {}  # instance -> (first reason, rounds)
    notes: list[str] = []
    ex = ThreadPoolExecutor(max_workers=min(pool, len(plan)))
    k = 0
    try:
        for k in range(1, rounds + 1):
            t_round = time.monotonic()
            futures = {ex.submit(_take, inst, k, hdrs, timeout, stacks): inst for inst in plan}
            for fut in as_completed(futures):
                inst = futures[fut]
                try:
                    chunk, start_time = fut.result()
                except Exception as e:  # one instance's trouble, whatever it is, is its line
                    why = str(e) if isinstance(e, _Failed) else f"unreadable ({e!r})"
                    failed.setdefault(inst.name, (why, []))[1].append(k)
                    if progress is not None:
                        progress(inst.name, k, f"failed: {why}")
                    continue
                note = _restarted(inst, chunk, start_time, k)
                if note:
                    notes.append(note)
                chunk["instance"] = pd.array([inst.name] * len(chunk), dtype="string")
                chunk["run"] = inst.run
                chunks.append(chunk)
                if progress is not None:
                    progress(inst.name, k, f"ok: {len(chunk):,} goroutines")
            if k < rounds:
                time.sleep(max(0.0, every - (time.monotonic() - t_round)))
    except KeyboardInterrupt:
        notes.append(f"interrupted in round {k}; the dumps gathered until then are kept.")
    finally:
        ex.shutdown(wait=False, cancel_futures=True)  # a dump in flight ends by its timeout
    # String columns are Arrow-backed: concat chains their buffers instead of copying.
    frame = pd.concat(chunks, ignore_index=True) if chunks else tables.empty("fleet_goroutines")
    chunks.clear()
    failures = [_failure_line(name, why, ks, rounds) for name, (why, ks) in failed.items()]
    return FleetSnapshot(frame, [i.name for i in plan], failures, notes, rounds)


def _failure_line(name: str, why: str, ks: list[int], rounds: int) -> str:
    if rounds == 1:
        return f"{name}: {why}"
    which = "round" if len(ks) == 1 else "rounds"
    return f"{name} ({which} {', '.join(map(str, sorted(ks)))} of {rounds}): {why}"


def _records(rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    recs = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else [dict(r) for r in rows]
    if not recs or any(not r.get("instance") for r in recs):
        raise GoleakError(
            "snapshot_fleet needs the rows of instances() (each with an 'instance'); "
            "none were given."
        )
    return recs


def _choose(recs: list[dict[str, Any]], steady: int | None) -> list[dict[str, Any]]:
    climbing = [r for r in recs if r.get("climbing")]
    others = [r for r in recs if not r.get("climbing")]
    if steady is not None:
        # The flattest first: the clearest contrast to the climbing ones.
        others.sort(key=lambda r: abs(float(r.get("growth_per_min") or 0.0)))
        others = others[:steady]
    return climbing + others


def _plan(rec: Mapping[str, Any], template: str) -> _Instance:
    labels = {**(rec.get("labels") or {}), "instance": rec["instance"]}
    if rec.get("job"):
        labels["job"] = rec["job"]
    labels = {k: str(v) for k, v in labels.items() if v is not None}
    check_template(template)
    try:
        url = template.format_map(labels)
    except KeyError as e:
        raise GoleakError(
            f"the pprof template {template!r} names the label {e.args[0]!r}, which instance "
            f"{rec['instance']} does not have (it has: {', '.join(sorted(labels))})."
        ) from None
    except (ValueError, IndexError) as e:
        raise GoleakError(
            f"the pprof template {template!r} is not a format string ({e}); write it like "
            f"{DEFAULT_TEMPLATE}."
        ) from None
    base = web.http_url(url, "the pprof URL").rstrip("/")
    scrape = rec.get("scrape_url")
    return _Instance(str(rec["instance"]), base, str(scrape) if isinstance(scrape, str) else None)


def check_template(template: str) -> None:
    """Raise unless the host of the pprof URL is made of target labels (a port may be
    added)."""
    scheme, sep, rest = template.partition("://")
    netloc = rest.split("/", 1)[0] if sep else ""
    parts = list(string.Formatter().parse(netloc)) if netloc else []
    literal = "".join(p[0] for p in parts)
    fields = [p[1] for p in parts if p[1]]
    if scheme not in ("http", "https") or not fields or not _NETLOC_LITERAL_RE.fullmatch(literal):
        raise GoleakError(
            f"the pprof template {template!r} must be an http(s) URL whose host comes from "
            "the instance's labels, e.g. http://{instance}/debug/pprof or "
            "http://{pod_ip}:6060/debug/pprof (requests go only to instances Prometheus lists)."
        )


class _Failed(Exception):
    """One instance's snapshot failed; the message is its one line."""


def _take(
    inst: _Instance, k: int, headers: Mapping[str, str], timeout: float, stacks: bool
) -> tuple[pd.DataFrame, float | None]:
    start_time = _start_time(inst, headers, timeout)
    deadline = time.monotonic() + TOTAL_FACTOR * timeout
    when = pd.Timestamp.now(tz="UTC")
    try:
        resp = _open_dump(inst, headers, timeout)
    except web.Unreachable as e:
        raise _Failed(f"down or unreachable at {inst.pprof} ({e})") from None
    parser = DumpParser(stacks=stacks)
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        try:
            first = resp.read(READ_CHUNK)
            if web.is_html(ctype, first):
                raise _Failed(
                    f"{inst.pprof} answered an HTML page, not a goroutine dump (a login page?)"
                )
            chunk = first
            while chunk:
                parser.feed(chunk)
                if time.monotonic() > deadline:
                    raise _Failed(f"the dump took over {TOTAL_FACTOR * timeout:g} s; cut off")
                chunk = resp.read(READ_CHUNK)
        except (OSError, ValueError) as e:
            raise _Failed(f"the dump broke off after {parser.bytes_read:,} bytes ({e})") from None
        if resp.length:
            raise _Failed(
                f"the dump broke off after {parser.bytes_read:,} bytes (connection closed)"
            )
    cols = parser.finish()
    if parser.count == 0:
        raise _Failed(
            f"{inst.pprof} answered {parser.bytes_read:,} bytes that are not a goroutine dump "
            f"(starting {first[:24]!r}); is the pprof template right?"
        )
    return to_frame(cols, snapshot=k, time=when, source="pprof"), start_time


def _open_dump(inst: _Instance, headers: Mapping[str, str], timeout: float) -> Any:
    for profile in ("goroutineleak", "goroutine"):
        try:
            return web.get(f"{inst.pprof}/{profile}?debug=2", headers, timeout)
        except web.HTTPStatus as e:
            if e.code == 404 and profile == "goroutineleak":
                continue  # no leak profile in this Go: the plain dump
            auth = e.code in (401, 403)
            what = ""
            if web.is_html(e.content_type, e.body):
                what = " (an HTML login page)" if auth else " (an HTML page)"
            hint = "pass headers" if auth else "is it net/http/pprof?"
            raise _Failed(f"{inst.pprof}/{profile} answered {e}{what}; {hint}") from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _start_time(inst: _Instance, headers: Mapping[str, str], timeout: float) -> float | None:
    """``process_start_time_seconds`` at the scrape address (None: not there)."""
    if not inst.scrape_url:
        return None
    try:
        with web.get(inst.scrape_url, headers, timeout) as resp:
            m = _START_RE.search(resp.read(METRICS_LIMIT))
    except (web.Unreachable, web.HTTPStatus, OSError):
        return None
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


def _restarted(inst: _Instance, chunk: pd.DataFrame, start_time: float | None, k: int) -> str:
    """Move ``inst`` to a new run if its process changed since the last round; the note."""
    why = ""
    if start_time is not None and inst.start_time is not None and start_time != inst.start_time:
        why = "its process start time changed"
    elif inst.last is not None:
        both = inst.last.merge(chunk[["goid", "created_at", "start_func"]], on="goid")
        differ = ~(_same(both, "created_at") & _same(both, "start_func"))
        if bool(differ.any()):
            why = "goroutine ids of the last round came back as other goroutines"
    if start_time is not None:
        inst.start_time = start_time
    inst.last = chunk[["goid", "created_at", "start_func"]]
    if not why:
        return ""
    inst.run += 1
    return (
        f"{inst.name} restarted before round {k} ({why}): its rounds from {k} on are run "
        f"{inst.run}, a new instance run."
    )


def _same(both: pd.DataFrame, col: str) -> pd.Series:
    a, b = both[f"{col}_x"], both[f"{col}_y"]
    return (a == b).fillna(a.isna() & b.isna()).astype(bool)
