"""Goroutine dumps found in any text: a CI log, a bug report, a crash file, test output.

``read_dumps`` streams a file (or a binary stream) once, in fixed-size chunks, and finds
every goroutine dump in it: a run of ``goroutine N [...]:`` blocks. Log lines before,
after and between dumps are skipped; several dumps give a series, one ``Dump`` each,
in file order. Each dump is parsed by ``text.DumpParser`` (so it yields exactly what
``parse_dump`` yields for the same blocks) and says how the program ended, from the
lines just above it: a test past ``-test.timeout`` (``panic: test timed out after``,
with its ``running tests:`` list), a deadlock (``fatal error: all goroutines are asleep
- deadlock!``, or a ``testing/synctest`` bubble's "blocked goroutines remain"), another
panic or fatal error, SIGQUIT, or nothing (a ``debug=2`` dump saved as it is).

A dump ends at the first line no dump holds (anything but a header, a frame, its
``\\tfile:line``, ``created by``, an elision or ancestor marker, or a blank line). If
the goroutine it ends inside is incomplete (the text was cut), that goroutine is
dropped and the dump says where it broke; every whole goroutine is kept.

Memory: one chunk, the parser's few integers per goroutine and a bounded window of the
text above the current position; a 1 GB log is never held whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import GoleakError
from .text import DumpParser

CHUNK = 1 << 23
# Above a dump, how much text is kept to read the panic message and test list from.
PREAMBLE_BYTES = 1 << 16
# The kinds of end (``Dump.end``).
TIMEOUT, DEADLOCK, PANIC, SIGQUIT, PLAIN = "timeout", "deadlock", "panic", "sigquit", "plain"

_HEADER = re.compile(rb"goroutine \d+ (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[.*:$", re.M)
# The first line, from a line start, that no dump holds. (A frame's function name runs
# to its first "(": no backtracking over a long line of parentheses.)
_FOREIGN = re.compile(
    rb"^(?!goroutine \d+ .*:$|\t|created by |\.\.\.|\[originating from goroutine |"
    rb"[^\s(][^\s(]*\(.*\)$|$)",
    re.M,
)
# A goroutine's block is whole when its last line is a location (or one of the lines
# the runtime ends a block with in place of frames).
_BLOCK_END = re.compile(
    rb"(?:\t.*:\d+(?: \+0x[0-9a-f]+)?(?: fp=\S+ sp=\S+ pc=\S+)?|"
    rb"\tgoroutine running on other thread; stack unavailable|"
    rb"\.\.\.additional frames elided\.\.\.)"
)
_MARKER = re.compile(r"(?:panic: (?P<panic>.*)|fatal error: (?P<fatal>.*)|(?P<sig>SIG[A-Z]+: .*))")
# Lines a dying program prints between its message and the first goroutine.
_PREAMBLE_LINE = re.compile(
    r"(?:|\t.*|runtime stack:|created by .*|PC=.*|\[signal .*|-----.*|[^\s(][^\s(]*\(.*\))"
)
_RUNNING_TEST = re.compile(r"\t\t(.+) \(([^()]*)\)")
_UNKNOWN_PREAMBLE_LINES = 5  # a multi-line panic value: how far up its first line may be


@dataclass
class Dump:
    """One goroutine dump found in the text."""

    cols: dict[str, Any]
    """The ``goroutines`` columns, as ``text.parse_dump`` gives them."""
    parser: DumpParser
    """Its parser: ``count`` (goroutines read), ``malformed``, ``goroot``."""
    end: str
    """How the program ended: ``timeout``, ``deadlock``, ``panic``, ``sigquit``, or
    ``plain`` (no message above the dump: a ``debug=2`` dump as saved)."""
    message: str | None
    """The message above the dump (``test timed out after 4s``, ``all goroutines are
    asleep - deadlock!``, the panic value, ``SIGQUIT: quit``); None for ``plain``."""
    first_line: int
    """1-based line of its first goroutine header in the text."""
    last_line: int
    """1-based line of its last line."""
    running_tests: list[tuple[str, str]] = field(default_factory=list)
    """A test timeout's ``running tests:`` list: (test name, how long it ran)."""
    cut_line: int | None = None
    """Where it broke: the line of the goroutine that was cut off (dropped); None when
    the dump is whole."""
    cut_goid: int | None = None
    """That goroutine's id."""

    @property
    def harness(self) -> np.ndarray:
        """Ids of the testing harness's goroutines (``filters.is_testing``)."""
        return np.asarray(self.cols["goid"])[self.cols["testing"]]

    @property
    def note(self) -> str | None:
        """One sentence on where a cut dump broke; None when it is whole."""
        if self.cut_line is None:
            return None
        return (
            f"the dump at line {self.first_line} is cut inside goroutine {self.cut_goid} "
            f"(line {self.cut_line}); its {len(self.cols['goid'])} whole goroutines are kept."
        )


def _classify(preamble: str) -> tuple[str, str | None, list[tuple[str, str]]]:
    """(end, message, running tests) from the text just above a dump."""
    lines = preamble.split("\n")
    unknown = 0
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        m = _MARKER.fullmatch(line)
        if m is not None:
            tests = [
                (t.group(1), t.group(2))
                for t in map(_RUNNING_TEST.fullmatch, lines[i + 1 :])
                if t is not None
            ]
            if m["sig"] is not None:
                return (SIGQUIT if m["sig"] == "SIGQUIT: quit" else PANIC), m["sig"], []
            if m["fatal"] is not None:
                msg = m["fatal"]
                return (DEADLOCK if msg.endswith("deadlock!") else PANIC), msg, []
            msg = m["panic"]
            if msg.startswith("test timed out after "):
                return TIMEOUT, msg, tests
            if msg.startswith("deadlock: "):  # testing/synctest: a bubble that cannot go on
                return DEADLOCK, msg, []
            return PANIC, msg, []
        if not _PREAMBLE_LINE.fullmatch(line):
            unknown += 1
            if unknown > _UNKNOWN_PREAMBLE_LINES:
                break
    return PLAIN, None, []


class _Reader:
    """The state of one pass over the text (see ``read_dumps``)."""

    def __init__(self, stacks: bool) -> None:
        self.stacks = stacks
        self.dumps: list[Dump] = []
        self.line = 1  # line number at the current position
        self.above = b""  # the text above the current position (bounded)
        self.parser: DumpParser | None = None
        self.opened: tuple[str, str | None, list[tuple[str, str]], int] | None = None
        self.tail = b""  # the last bytes given to the open dump's parser

    def skip(self, buf: bytes, start: int, end: int) -> None:
        """``buf[start:end]`` is not in a dump: remember the end of it, count its lines."""
        self.above = (self.above + buf[max(start, end - PREAMBLE_BYTES) : end])[-PREAMBLE_BYTES:]
        self.line += buf.count(b"\n", start, end)

    def open(self) -> None:
        above = self.above.decode("utf-8", "replace").rstrip("\n")
        end, message, tests = _classify(above)
        self.opened = (end, message, tests, self.line)
        self.parser = DumpParser(stacks=self.stacks)
        self.tail = self.above = b""

    def feed(self, buf: bytes, start: int, end: int) -> None:
        assert self.parser is not None
        self.parser.feed(buf[start:end])
        self.tail = (self.tail + buf[max(start, end - PREAMBLE_BYTES) : end])[-PREAMBLE_BYTES:]
        self.line += buf.count(b"\n", start, end)

    def close(self) -> None:
        """The open dump ended (at a foreign line or the end of the text)."""
        assert self.parser is not None and self.opened is not None
        end_line = self.line - 1
        body = self.tail.rstrip(b"\n")
        end_line -= len(self.tail) - len(body) - 1  # trailing blank lines are not its own
        cut = not _BLOCK_END.fullmatch(body.rsplit(b"\n", 1)[-1])
        cut_line = cut_goid = None
        if cut:
            head = body.rfind(b"\ngoroutine ") + 1  # 0: the cut one is the first kept
            m = _GOID.match(body, head)
            cut_goid = int(m[1]) if m else None
            cut_line = end_line - body.count(b"\n", head)
        cols = self.parser.finish(cut=cut)
        end, message, tests, first = self.opened
        self.dumps.append(
            Dump(cols, self.parser, end, message, first, end_line, tests, cut_line, cut_goid)
        )
        self.parser = self.opened = None

    def scan(self, buf: bytes, whole: int, line_start: bool) -> None:
        """Read ``buf[:whole]``, whole lines (``line_start``: ``buf[0]`` begins one)."""
        pos = 0
        while pos < whole:
            if self.parser is None:
                at = _find_header(buf, pos, whole, line_start or pos > 0)
                self.skip(buf, pos, whole if at is None else at)
                if at is None:
                    return
                self.open()
                pos = at
            m = _FOREIGN.search(buf, pos, whole)
            stop = m.start() if m is not None else whole
            self.feed(buf, pos, stop)
            if m is None:
                return
            self.close()
            pos = stop


_GOID = re.compile(rb"goroutine (\d+) ")


def _find_header(buf: bytes, start: int, end: int, line_start: bool) -> int | None:
    """Where the first goroutine header in ``buf[start:end]`` begins, or None."""
    pos = start
    while (i := buf.find(b"goroutine ", pos, end)) >= 0:
        if (buf[i - 1] == 10 if i > start else line_start) and _HEADER.match(buf, i, end):
            return i
        pos = i + 1
    return None


def _chunks(f: IO[bytes], size: int) -> Iterator[bytes]:
    held = b""
    while data := f.read(size):
        data = held + data
        # CRLF logs (a Windows runner): the dump parser splits on "\n". A "\r" at the
        # end may be half of a CRLF: it waits for the next chunk.
        held = b"\r" if data.endswith(b"\r") else b""
        data = data[: len(data) - len(held)]
        yield data.replace(b"\r\n", b"\n") if b"\r" in data else data
    if held:
        yield held


def read_dumps(
    source: str | os.PathLike[str] | IO[bytes], *, stacks: bool = False, chunk: int = CHUNK
) -> list[Dump]:
    """Every goroutine dump in a file or binary stream, in order; raises ``GoleakError``
    when there is none."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            with path.open("rb") as f:
                return _read(f, stacks, chunk, str(path))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise GoleakError(f"cannot read {path}: {e.strerror}; pass a text file.") from None
    return _read(source, stacks, chunk, "that text")


def _read(f: IO[bytes], stacks: bool, chunk: int, name: str) -> list[Dump]:
    r = _Reader(stacks)
    rest = b""
    line_start = True  # rest[0] begins a line
    for data in _chunks(f, chunk):
        buf = rest + data
        whole = buf.rfind(b"\n") + 1  # a header or a foreign line is judged whole
        r.scan(buf, whole, line_start)
        line_start = line_start or whole > 0
        rest = buf[whole:]
        if len(rest) > PREAMBLE_BYTES:
            # A huge line with no end yet (binary junk, a minified blob): no dump holds
            # it and no header can start inside it, so keep only a window of it.
            if r.parser is not None:
                r.close()
            r.skip(rest, 0, len(rest))
            rest, line_start = b"", False
    if rest:  # the last line has no newline
        r.scan(rest + b"\n", len(rest) + 1, line_start)
    if r.parser is not None:
        r.close()
    if not r.dumps:
        raise GoleakError(
            f"{name} holds no goroutine dump (no line starts with 'goroutine N [...]:'); "
            "pass the output of a crash, a test timeout, SIGQUIT or "
            "/debug/pprof/goroutine?debug=2."
        )
    return r.dumps
