"""Settings that are not per call; ``%config GoleakMagics.<name>`` sets the same fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    go: str = ""  # path to go; "" means `go` on PATH
    dlv: str = ""  # path to dlv; "" means $GOLEAK_DLV, PATH, .tools/bin, GOPATH/bin
    schedtrace_ms: int = 500  # default --schedtrace interval
    log_lines: int = 10_000  # stdout/stderr lines kept per target
    max_rows: int = 1_000_000  # rows kept per live table (oldest dropped first)
    startup_timeout: float = 15.0  # seconds to wait for a launched program's first SCHED line
    startup_grace: float = 0.3  # after it, an exit this soon still counts as a failed launch
    stop_timeout: float = 3.0  # SIGTERM, then SIGKILL after this many seconds
