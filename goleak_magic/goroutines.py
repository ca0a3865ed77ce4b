"""Parsers for goroutine dumps into the ``goroutines`` table schema (see ``tables``).

``DumpParser`` reads ``goroutine?debug=2`` text (what a panic prints; also what
``goroutineleak?debug=2`` returns, with ``(leaked)`` on the goroutines the GC proved can
never wake up). It is fed bytes as they arrive, so a dump of a million goroutines never
sits in memory whole. Forms handled: headers with state, ``(leaked)``, ``(scan)``,
``N minutes``, ``locked to thread``, ``gp=... m=...`` (GOTRACEBACK=system), pprof labels
(Go 1.26 ``labels:{"k": "v"}`` inside the brackets, Go 1.27 ``{k: v}`` after them);
frames ``func(args)`` + ``\\tfile:line +0xoff``; ``...N frames elided...``;
``created by F in goroutine N`` (``in goroutine`` since Go 1.21); the
``[originating from goroutine N]:`` blocks of ``GODEBUG=tracebackancestors`` (kept in
``stack``; the ancestors' ids are dropped so that identical histories intern as one).

Speed: one regex ``split`` with a literal prefix cuts the text at the headers (ids and
header texts come out of it), ``pandas.factorize`` interns the blocks as they are, and
only the distinct ones are normalised — call arguments, the creator's goroutine id and
ancestor ids taken out, in one regex pass over their joined text — and parsed. Per
goroutine that leaves a few integer codes and no Python-level work.

``parse_leak_profile`` reads the ``goroutineleak?debug=1`` profile (stacks with counts,
no goroutine ids).
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import agent, tables
from .delve.api import G_SCAN, G_STATUS
from .errors import GoleakError
from .frames import frame_text

# Status words the runtime prints when a goroutine is not waiting (gStatusStrings);
# any other text in the header is a wait reason, and the goroutine is waiting.
STATUS_WORDS = frozenset(
    ["idle", "runnable", "running", "syscall", "waiting", "dead", "copystack", "leaked",
     "preempted", "waiting for cgo callback"]
)  # fmt: skip

# Call arguments "(0xc000010000, ...)" at the end of a function line, the creator's id
# and the ids in ancestor headers: without them, goroutines with the same history have
# the same text.
_ARGS_RE = re.compile(r"\([^()\n]*\)(?=\n\t)")
# " in goroutine N" ends a goroutine's own "created by" line (not its ancestors').
IN_GOROUTINE = " in goroutine "
_PARENT_ID_RE = re.compile(r" in goroutine (\d+)$", re.M)
_ORIGIN_RE = re.compile(r"\[originating from goroutine \d+\]")
ORIGIN = "[originating from goroutine]"
_OFFSET_RE = re.compile(r" \+0x[0-9a-f]+$")
# A goroutine's header: "\n\ngoroutine ID REST:\n" (the text gets a leading "\n\n").
_HEADER_SPLIT_RE = re.compile(r"\n\ngoroutine (\d+) (.*):\n")
SEP = "\x00"  # joins distinct blocks for one regex pass; never in a dump
_HEADER_RE = re.compile(
    r"^(?:gp=\S+ m=\S+(?: mp=\S+)? )?\[(.*?)(?: labels:\{(.*)\})?\](?: \{(.*)\})?$"
)
_LABEL_RE = re.compile(r'("(?:[^"\\]|\\.)*"|[^:,"\s]*): ("(?:[^"\\]|\\.)*"|[^,"]*)(?:, |$)')
_MINUTES_RE = re.compile(r", (\d+) minutes?")
# First path elements of standard-library packages: a frame of one of them, at
# ".../src/<its package>/file.go", tells where GOROOT is.
STD_ROOTS = frozenset(
    ["runtime", "internal", "sync", "time", "net", "os", "syscall", "io", "reflect", "fmt",
     "context", "bufio", "bytes", "strings", "strconv", "errors", "log", "crypto", "encoding",
     "math", "sort", "unicode", "vendor"]
)  # fmt: skip
CREATED_BY = "created by "


@dataclass(frozen=True, slots=True)
class Header:
    status: str
    wait_reason: str | None
    wait_minutes: int | None
    locked: bool
    leaked: bool
    labels: Mapping[str, str] | None
    agent: bool  # carries the agent's pprof label


@dataclass(frozen=True, slots=True)
class Stack:
    frames: tuple[str, ...]  # "func file:line"; markers (elided, ancestors) as printed
    top: str | None
    user_top: str | None  # first frame outside GOROOT (the program's own code)
    start_func: str | None
    created_by: str | None  # the function holding the go statement
    created_at: str | None  # "file:line" of the go statement
    agent: bool  # runs, or was started by, the goleak_magic agent's code


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return codecs.decode(s[1:-1], "unicode_escape")
    return s


def parse_labels(text: str) -> dict[str, str]:
    """``"k": "v", "k2": "v2"`` (Go 1.26) or ``k: v, "k 2": v2`` (Go 1.27) as a dict."""
    return {_unquote(k): _unquote(v) for k, v in _LABEL_RE.findall(text) if k or v}


def parse_header(rest: str) -> Header | None:
    """The part of a ``goroutine N ...:`` line after the id, or None if malformed."""
    m = _HEADER_RE.match(rest)
    if m is None:
        return None
    inner, labels26, labels27 = m.groups()
    parts = inner.split(", ")
    state = parts[0]
    leaked = state.endswith(" (leaked)")
    for suffix in (" (durable)", " (scan)", " (leaked)"):
        state = state.removesuffix(suffix)
    mm = _MINUTES_RE.search(inner)
    labels_text = labels26 if labels26 is not None else labels27
    labels = parse_labels(labels_text) if labels_text else None
    if state in STATUS_WORDS:
        status, reason = state, None
    else:
        status, reason = "waiting", state
    return Header(
        status="leaked" if leaked else status,
        wait_reason=reason,
        wait_minutes=int(mm.group(1)) if mm else None,
        locked="locked to thread" in parts[1:],
        leaked=leaked,
        labels=labels,
        agent=labels is not None and labels.get(agent.LABEL[0]) == agent.LABEL[1],
    )


def _frame_pairs(lines: list[str]) -> list[tuple[str, str | None]]:
    """Frame lines as (func, "file:line") pairs; a marker line has no location."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i + 1].startswith("\t"):
            out.append((lines[i], _OFFSET_RE.sub("", lines[i + 1][1:])))
            i += 2
        else:  # "...N frames elided...", "[originating from goroutine]:", ...
            out.append((lines[i], None))
            i += 1
    return out


def goroot_of(func: str | None, loc: str | None) -> str | None:
    """GOROOT's "…/src/" from one standard-library frame (None if it is not one)."""
    if not func or not loc:
        return None
    pkg = func.split("/")
    pkg[-1] = pkg[-1].split(".", 1)[0]
    if pkg[0] not in STD_ROOTS:
        return None
    marker = "/src/" + "/".join(pkg) + "/"
    at = loc.find(marker)
    return loc[: at + len("/src/")] if at >= 0 else None


def _goroot_in_block(block: str) -> str | None:
    lines = block.split("\n")
    for func, loc in itertools.pairwise(lines):
        if loc.startswith("\t"):
            func = func.removeprefix(CREATED_BY).split(" in goroutine ")[0]
            found = goroot_of(func, loc[1:])
            if found:
                return found
    return None


def _is_agent_file(loc: str | None) -> bool:
    return loc is not None and f"/{agent.FILE_STEM}" in loc


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC: a parse makes ~a tuple per goroutine and no cycles, and in a
    notebook full of objects every collection it would trigger walks them all."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _intern(table: dict[str, int], values: np.ndarray) -> np.ndarray:
    """Codes of ``values`` in ``table`` (new values are added in first-seen order)."""
    codes, uniques = pd.factorize(values)
    ids = np.fromiter((table.setdefault(u, len(table)) for u in uniques), np.int64, len(uniques))
    return ids[codes]


class DumpParser:
    """Streaming ``debug=2`` parser: ``feed`` bytes, then ``finish`` for the columns.

    Goroutines of the goleak_magic agent (its label, its file, or started by one of its
    goroutines) are left out. ``stacks`` keeps each goroutine's frames, interned:
    identical stacks share one tuple. ``malformed`` counts blocks that could not be read
    (a truncated or garbled dump); the rest are kept. Memory per goroutine is a few
    integers, whatever the size of the dump.
    """

    def __init__(
        self,
        *,
        stacks: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.stacks = stacks
        self.progress = progress
        self.goroot: str | None = None
        self.bytes_read = 0
        self.malformed = 0
        self.count = 0  # goroutines read so far (the agent's included)
        self._tail = b""
        self._headers: dict[str, int] = {}
        self._bodies: dict[str, int] = {}  # normalised block text -> id
        self._chunks: list[tuple[np.ndarray, ...]] = []

    # ---- input ----------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.bytes_read += len(data)
        buf = self._tail + data
        # Cut at the last blank line before a header: every block before it is whole.
        cut = buf.rfind(b"\n\ngoroutine ")
        if cut < 0:
            self._tail = buf
            return
        self._tail = buf[cut + 2 :]
        with _no_gc():
            self._parse(buf[: cut + 2].decode("utf-8", "replace"))
        if self.progress is not None:
            self.progress(self.count, self.bytes_read)

    def finish(self) -> dict[str, Any]:
        """Parse what is left; the columns (pandas arrays of the schema's dtypes)."""
        with _no_gc():
            if self._tail:
                text = self._tail.decode("utf-8", "replace")
                self._tail = b""
                self._parse(text, whole=text.endswith("\n"))
            if self.progress is not None:
                self.progress(self.count, self.bytes_read)
            return self._columns()

    def _parse(self, text: str, whole: bool = True) -> None:
        """Blocks of ``text``; ``whole=False``: the last one was cut off, drop it."""
        parts = _HEADER_SPLIT_RE.split("\n\n" + text)
        if parts[0].strip():  # text before the first header
            self.malformed += 1
        goid_s, rests, blocks = parts[1::3], parts[2::3], parts[3::3]
        if not whole and blocks:
            goid_s, rests, blocks = goid_s[:-1], rests[:-1], blocks[:-1]
            self.malformed += 1
        if not blocks:
            return
        blocks[-1] = blocks[-1].rstrip("\n")
        self.count += len(blocks)
        raw, uniques = pd.factorize(np.array(blocks, dtype=object))
        # Normalise the distinct blocks only, in one pass over their joined text.
        joined = SEP.join(uniques)
        parent_of = np.full(len(uniques), -1, np.int64)
        if IN_GOROUTINE in joined:
            ids = _PARENT_ID_RE.findall(joined)
            has = pd.Series(uniques, dtype="string").str.contains(IN_GOROUTINE, regex=False)
            if int(has.sum()) == len(ids):  # one creator line per block, as always
                parent_of[has.to_numpy(bool)] = np.array(ids, np.int64)
            joined = _PARENT_ID_RE.sub("", joined)
        joined = _ARGS_RE.sub("", joined)
        if "[originating from goroutine " in joined:
            joined = _ORIGIN_RE.sub(ORIGIN, joined)
        normal = np.array(joined.split(SEP), dtype=object)
        self._chunks.append(
            (
                np.fromiter(map(int, goid_s), np.int64, len(goid_s)),
                parent_of[raw],
                _intern(self._headers, np.array(rests, dtype=object)),
                _intern(self._bodies, normal)[raw],
            )
        )

    # ---- output ---------------------------------------------------------------------
    def _columns(self) -> dict[str, Any]:
        if self._chunks:
            goid, parent, h, codes = (
                np.concatenate(col) for col in zip(*self._chunks, strict=True)
            )
        else:
            goid, parent, h, codes = (np.zeros(0, np.int64) for _ in range(4))
        self._chunks = []
        headers = [parse_header(text) for text in self._headers]
        if self.goroot is None:
            self.goroot = next(filter(None, map(_goroot_in_block, self._bodies)), None)
        stacks = [self._stack(text) for text in self._bodies]

        ok = np.array([x is not None for x in headers], bool)[h]
        self.malformed += int((~ok).sum())
        hdr = [x or _NO_HEADER for x in headers]
        agent_rows = (
            np.array([x.agent for x in hdr], bool)[h]
            | (np.array([x.agent for x in stacks], bool)[codes])
        )
        keep = ok & ~self._agent_goroutines(goid, parent, agent_rows)
        goid, parent, h, codes = goid[keep], parent[keep], h[keep], codes[keep]

        def per(values: list[Any], idx: np.ndarray, dtype: str) -> Any:
            return pd.array(values, dtype=dtype)[idx]  # indexing: several times take's speed

        return {
            "goid": goid,
            "status": per([x.status for x in hdr], h, "string"),
            "wait_reason": per([x.wait_reason for x in hdr], h, "string"),
            "wait_minutes": per([x.wait_minutes for x in hdr], h, "Int64"),
            "locked": np.array([x.locked for x in hdr], bool)[h],
            "top": per([x.top for x in stacks], codes, "string"),
            "user_top": per([x.user_top for x in stacks], codes, "string"),
            "created_by": per([x.created_by for x in stacks], codes, "string"),
            "created_at": per([x.created_at for x in stacks], codes, "string"),
            "parent_goid": pd.arrays.IntegerArray(parent, parent < 0),
            "start_func": per([x.start_func for x in stacks], codes, "string"),
            "labels": tables.objects([x.labels for x in hdr])[h],
            "leaked": np.array([x.leaked for x in hdr], bool)[h],
            "stack": tables.objects([x.frames if self.stacks else None for x in stacks])[codes],
        }

    @staticmethod
    def _agent_goroutines(goid: np.ndarray, parent: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Rows of the agent's goroutines: its own, and everything they started."""
        ids = goid[own]
        mask = own.copy()
        while len(ids):
            started = np.isin(parent, ids) & ~mask
            ids = goid[started]
            mask |= started
        return mask

    def _stack(self, block: str) -> Stack:
        """A normalised block: frames, "created by F", its location, ancestor blocks."""
        lines = block.split("\n")
        at = next((i for i, ln in enumerate(lines) if ln.startswith(CREATED_BY)), len(lines))
        creator = lines[at][len(CREATED_BY) :] if at < len(lines) else None
        loc_line = lines[at + 1] if at + 1 < len(lines) else ""
        created_at = _OFFSET_RE.sub("", loc_line[1:]) if loc_line.startswith("\t") else None
        pairs = _frame_pairs(lines[:at])
        ancestors = _frame_pairs(lines[at + 2 :])
        real = [(f, loc) for f, loc in pairs if loc is not None]
        user = next((fr for fr in real if not self._in_goroot(fr[1])), None)
        frames = tuple(f if loc is None else frame_text(f, loc) for f, loc in pairs + ancestors)
        return Stack(
            frames=frames,
            top=frame_text(*real[0]) if real else None,
            user_top=frame_text(*user) if user else None,
            start_func=real[-1][0] if real else None,
            created_by=creator,
            created_at=created_at,
            agent=_is_agent_file(created_at) or any(_is_agent_file(loc) for _, loc in real),
        )

    def _in_goroot(self, loc: str) -> bool:
        # No standard-library frame anywhere: nothing to tell, so all is the program's.
        return self.goroot is not None and loc.startswith(self.goroot)


_NO_HEADER = Header("unknown", None, None, False, False, None, False)  # dropped rows only


def parse_dump(data: bytes | str, *, stacks: bool = False) -> tuple[dict[str, Any], DumpParser]:
    """Parse a whole ``debug=2`` dump; returns (columns, the parser with its counters)."""
    p = DumpParser(stacks=stacks)
    p.feed(data.encode() if isinstance(data, str) else data)
    cols = p.finish()
    if p.count == 0:
        raise GoleakError(
            "that text holds no goroutine dump (no 'goroutine N [...]:' blocks); pass the "
            "output of /debug/pprof/goroutine?debug=2 or a panic's traceback."
        )
    return cols, p


def to_frame(
    cols: Mapping[str, Any],
    *,
    snapshot: int,
    time: pd.Timestamp,
    source: str,
) -> pd.DataFrame:
    """Columns from a parser (or the Delve source) as a ``goroutines`` DataFrame."""
    df = pd.DataFrame({k: v for k, v in cols.items() if k in tables.SCHEMAS["goroutines"]})
    df["snapshot"] = snapshot
    df["time"] = time
    df["source"] = source
    return tables.conform("goroutines", df)


# ---- Delve's goroutine list ---------------------------------------------------------------
# Delve's status numbers (runtime._G*, named in delve.rpc); the wait reason, when waiting,
# overrides the word. _Gdeadextra is as dead as _Gdead for a listing.
DELVE_STATUS = {**G_STATUS, 11: "dead"}
# Goroutines a dump leaves out (runtime.isSystemGoroutine): started at a runtime.* entry.
USER_RUNTIME_STARTS = frozenset(["runtime.main", "runtime.corostart"])


def is_system(start_func: str | None) -> bool:
    return (
        bool(start_func)
        and start_func.startswith("runtime.")
        and (  # type: ignore[union-attr]
            start_func not in USER_RUNTIME_STARTS
        )
    )


def _site_loc(loc: Any) -> str | None:
    return f"{loc.file}:{loc.line}" if loc.file else None


def _loc(loc: Any) -> str | None:
    return frame_text(loc.function or "?", f"{loc.file}:{loc.line}") if loc.file else None


def from_delve(
    gs: list[Any],
    wait_reasons: list[str],
    stacks: Mapping[int, tuple[Any, ...]] | None = None,
) -> dict[str, Any]:
    """Delve ``ListGoroutines`` results (``delve.rpc.Goroutine``) as parser columns.

    Like a dump, it leaves out the runtime's own goroutines and the agent's (by its
    label, which every goroutine it starts inherits), shows the main goroutine without a
    creator, and takes as ``top`` the innermost frame outside package runtime (a dump
    hides those). ``stacks`` (goroutine id -> Delve locations, innermost first) fills
    ``stack``. Delve does not say how long a goroutine has waited in minutes, nor its
    parent's id: those stay NA. ``start_func`` is what Delve reports: the compiler's
    ``gowrapN`` wrapper where a dump shows the wrapped function.
    """
    rows = [
        g
        for g in gs
        if not is_system(g.start_loc.function)
        and (g.labels or {}).get(agent.LABEL[0]) != agent.LABEL[1]
        and not _is_agent_file(g.go_statement_loc.file)
        and DELVE_STATUS.get(g.status & ~G_SCAN) != "dead"
    ]
    goroot = next(
        filter(None, (goroot_of(x.function, x.file) for g in gs
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
    tops, user_tops, frames = [], [], []
    for g in rows:
        locs = list(stacks.get(g.id, ())) if stacks is not None else []
        if not locs:
            locs = [g.current_loc, g.user_current_loc]
        shown = [x for x in locs if x.file and not (x.function or "").startswith("runtime.")]
        mine = [x for x in shown if goroot is None or not x.file.startswith(goroot)]
        tops.append(_loc(shown[0]) if shown else _loc(g.current_loc))
        user_tops.append(_loc(mine[0]) if mine else None)
        frames.append(tuple(_loc(x) for x in locs if x.file) if stacks is not None else None)
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
    }


# ---- the goroutineleak?debug=1 profile ---------------------------------------------------
@dataclass(frozen=True)
class LeakRecord:
    count: int
    frames: tuple[str, ...]  # "func file:line", innermost first
    labels: Mapping[str, str] = field(default_factory=dict)


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
