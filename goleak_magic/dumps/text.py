"""The ``goroutine?debug=2`` text (what a panic prints) into ``goroutines`` columns.

``DumpParser`` reads ``goroutine?debug=2`` text (what a panic prints; also what
``goroutineleak?debug=2`` returns, with ``(leaked)`` on the goroutines the GC proved can
never wake up). It is fed bytes as they arrive, so a dump of a million goroutines never
sits in memory whole. Forms handled: headers with state, ``(leaked)``, ``(scan)``,
``(durable)``, ``N minutes``, ``locked to thread``, ``synctest bubble N``, ``gp=... m=...``
(GOTRACEBACK=system, SIGQUIT), pprof labels (Go 1.26 ``labels:{"k": "v"}`` inside the
brackets, Go 1.27 ``{k: v}`` after them); frames ``func(args)`` + ``\\tfile:line +0xoff``
(``fp=.. sp=.. pc=..`` after it with GOTRACEBACK=system); ``...N frames elided...``;
``created by F in goroutine N`` (``in goroutine`` since Go 1.21); the
``[originating from goroutine N]:`` blocks of ``GODEBUG=tracebackancestors`` (kept in
``stack``; the ancestors' ids are dropped so that identical histories intern as one).
What GOTRACEBACK=system/crash print beyond a default dump (the runtime's goroutines, its
internal frames, ``runtime.goexit``, ``gowrap`` wrappers) is read away (``filters``), so
those dumps give the rows a default one gives.

Speed: one regex ``split`` with a literal prefix cuts the text at the headers (ids and
header texts come out of it), ``pandas.factorize`` interns the blocks as they are, and
only the distinct ones are normalised — call arguments, the creator's goroutine id and
ancestor ids taken out, in one regex pass over their joined text — and parsed. Per
goroutine that leaves a few integer codes and no Python-level work.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from .. import tables
from ..errors import GoleakError
from ..frames import frame_text
from . import filters
from .model import Header, Stack

# Status words the runtime prints when a goroutine is not waiting (gStatusStrings);
# any other text in the header is a wait reason, and the goroutine is waiting.
STATUS_WORDS = frozenset(
    ["idle", "runnable", "running", "syscall", "waiting", "dead", "copystack", "leaked",
     "preempted", "waiting for cgo callback"]
)  # fmt: skip

# Call arguments "(0xc000010000, ...)" at the end of a function line, the creator's id
# and the ids in ancestor headers: without them, goroutines with the same history have
# the same text.
_ARGS_RE = re.compile(r"\([^()\n\x00]*\)(?=\n\t)")  # never across SEP
# " in goroutine N" ends a goroutine's own "created by" line (not its ancestors').
IN_GOROUTINE = " in goroutine "
_PARENT_ID_RE = re.compile(r" in goroutine (\d+)$", re.M)
_ORIGIN_RE = re.compile(r"\[originating from goroutine \d+\]")
ORIGIN = "[originating from goroutine]"
# " +0x1d" after a location, and "fp=0x.. sp=0x.. pc=0x.." with GOTRACEBACK=system.
_OFFSET_RE = re.compile(r"(?: \+0x[0-9a-f]+)?(?: fp=\S+ sp=\S+ pc=\S+)?$")
# A goroutine's header: "\n\ngoroutine ID REST:\n" (the text gets a leading "\n\n").
_HEADER_SPLIT_RE = re.compile(r"\n\ngoroutine (\d+) (.*):\n")
SEP = "\x00"  # joins distinct blocks for one regex pass; never in a dump (taken out)
# The state part holds no "]" or "{" (wait reasons never do), so the labels can only
# start at the first " labels:{": no backtracking over a long garbled header.
_HEADER_RE = re.compile(
    r"^(?:gp=\S+ m=\S+(?: mp=\S+)? )?\[([^\]{]*?)(?: labels:\{(.*)\})?\](?: \{(.*)\})?$"
)
_LABEL_RE = re.compile(r'("(?:[^"\\]|\\.)*"|[^:,"\s]*): ("(?:[^"\\]|\\.)*"|[^,"]*)(?:, |$)')
_MINUTES_RE = re.compile(r", (\d+) minutes?")
_BUBBLE_RE = re.compile(r", synctest bubble (\d+)")
# Marks after the state, in the order the runtime prints them (goroutineheader); a
# synctest wait reason may carry "(durable)" in its own name.
_MARKS = (" (leaked)", " (scan)", " (durable)")
CREATED_BY = "created by "


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
    state, marks = parts[0], set()
    while mark := next((x for x in _MARKS if state.endswith(x)), None):
        marks.add(mark)
        state = state.removesuffix(mark)
    leaked = " (leaked)" in marks
    mm = _MINUTES_RE.search(inner)
    bubble = _BUBBLE_RE.search(inner)
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
        agent=filters.agent_label(labels),
        scan=" (scan)" in marks,
        durable=" (durable)" in marks,
        bubble=int(bubble.group(1)) if bubble else None,
    )


def _shown(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The frames a default traceback prints; markers (no location) stay."""
    first = next((i for i, (_, loc) in enumerate(pairs) if loc is not None), -1)
    return [
        (func, loc)
        for i, (func, loc) in enumerate(pairs)
        if loc is None or filters.shown(func, first=i == first)
    ]


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


def _goroot_in_block(block: str) -> str | None:
    lines = block.split("\n")
    for func, loc in itertools.pairwise(lines):
        if loc.startswith("\t"):
            func = func.removeprefix(CREATED_BY).split(" in goroutine ")[0]
            found = filters.goroot_of(func, loc[1:])
            if found:
                return found
    return None


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
    goroutines) are left out, and so are the runtime's own, which ``GOTRACEBACK=system``
    or ``crash`` dumps print; the frames those print and a default dump hides are left
    out too, so such a dump gives the rows a default one would. ``stacks`` keeps each
    goroutine's frames, interned: identical stacks share one tuple. ``malformed`` counts
    blocks that could not be read (a truncated or garbled dump); the rest are kept.
    Memory per goroutine is a few integers, whatever the size of the dump.
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

    def finish(self, *, cut: bool | None = None) -> dict[str, Any]:
        """Parse what is left; the columns (pandas arrays of the schema's dtypes).

        ``cut``: the last goroutine was cut off (drop it, counted in ``malformed``); by
        default, when the text does not end with a newline.
        """
        with _no_gc():
            if self._tail:
                text = self._tail.decode("utf-8", "replace")
                self._tail = b""
                self._parse(text, whole=not cut if cut is not None else text.endswith("\n"))
            if self.progress is not None:
                self.progress(self.count, self.bytes_read)
            return self._columns()

    def _parse(self, text: str, whole: bool = True) -> None:
        """Blocks of ``text``; ``whole=False``: the last one was cut off, drop it."""
        if SEP in text:  # garbage: it would split a block in two
            text = text.replace(SEP, "\ufffd")
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
        system = np.array([x.system for x in stacks], bool)[codes]
        keep = ok & ~filters.with_descendants(goid, parent, agent_rows) & ~system
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
            "testing": np.array([x.testing for x in stacks], bool)[codes],
        }

    def _stack(self, block: str) -> Stack:
        """A normalised block: frames, "created by F", its location, ancestor blocks."""
        lines = block.split("\n")
        at = next((i for i, ln in enumerate(lines) if ln.startswith(CREATED_BY)), len(lines))
        creator = lines[at][len(CREATED_BY) :] if at < len(lines) else None
        loc_line = lines[at + 1] if at + 1 < len(lines) else ""
        created_at = _OFFSET_RE.sub("", loc_line[1:]) if loc_line.startswith("\t") else None
        printed = [(f, loc) for f, loc in _frame_pairs(lines[:at]) if loc is not None]
        # The runtime's entry (system/crash dumps print it, and runtime.goexit below it)
        # tells a system goroutine; its shown frames are what a default dump prints.
        entry = next((f for f, _ in reversed(printed) if f != "runtime.goexit"), None)
        pairs = _shown(_frame_pairs(lines[:at]))
        ancestors = _shown(_frame_pairs(lines[at + 2 :]))
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
            agent=filters.agent_code(created_at) or any(filters.agent_code(loc) for _, loc in real),
            system=filters.is_system(entry, runs_user_code=user is not None),
            testing=filters.is_testing(real, creator, self._in_goroot),  # type: ignore[arg-type]
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
