"""Catching the goroutine dump a dying program prints on stderr.

A launched program's stderr lines (schedtrace already taken out) go through
``DumpSpool.feed``. From the first line that can open a dump or its preamble
(``panic: ``, ``fatal error: ``, ``SIGQUIT: quit``, ``goroutine N [``) on, they are
written to a file: a million goroutines' dump is ~150 MB and is never held in memory.
``close()`` reads it at exit with ``dumpfile.read_dumps``. A program that prints such a
line and runs on spools the rest of its stderr too, up to ``MAX_BYTES``; past that the
spool starts over at the next such line, so a dump at the very end is always whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..errors import GoleakError
from .dumpfile import Dump, read_dumps

START = re.compile(r"(?:panic: |fatal error: |SIG[A-Z]+: |goroutine \d+ (?:gp=\S+ m=\S+ )?\[)")
MAX_BYTES = 1 << 30


class DumpSpool:
    """Stderr lines from the first possible dump on, in a file (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[bytes] | None = None
        self._size = 0

    def feed(self, lines: Sequence[str]) -> None:
        start = 0
        if self._f is None or self._size > MAX_BYTES:
            start = next((i for i, ln in enumerate(lines) if START.match(ln)), -1)
            if start < 0:
                return
            if self._f is not None:
                self._f.close()
            self._f = self.path.open("wb")
            self._size = 0
        data = ("\n".join(lines[start:]) + "\n").encode("utf-8", "replace")
        self._f.write(data)
        self._size += len(data)

    def close(self) -> list[Dump]:
        """The dumps spooled (none when the text after a ``panic:`` line held no dump, as
        when the program recovered); the file is removed."""
        if self._f is None:
            return []
        self._f.close()
        self._f = None
        try:
            return read_dumps(self.path)
        except GoleakError:
            return []
        finally:
            self.path.unlink(missing_ok=True)
