"""Which goroutines are whose: one set of named predicates for every source.

The dump-text parser and the Delve adapter decide with these same functions which
goroutines are the goleak_magic agent's (left out of every table), which are the
runtime's own (a default dump hides them) and which frames belong to GOROOT, so a
goroutine is kept or dropped the same way whichever source saw it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import agent

# First path elements of standard-library packages: a frame of one of them, at
# ".../src/<its package>/file.go", tells where GOROOT is.
STD_ROOTS = frozenset(
    ["runtime", "internal", "sync", "time", "net", "os", "syscall", "io", "reflect", "fmt",
     "context", "bufio", "bytes", "strings", "strconv", "errors", "log", "crypto", "encoding",
     "math", "sort", "unicode", "vendor"]
)  # fmt: skip
# Runtime entry points that run user code (runtime.isSystemGoroutine keeps them).
USER_RUNTIME_STARTS = frozenset(["runtime.main", "runtime.corostart"])


def agent_label(labels: Mapping[str, str] | None) -> bool:
    """It carries the agent's pprof label (every goroutine the agent starts inherits it)."""
    return labels is not None and labels.get(agent.LABEL[0]) == agent.LABEL[1]


def agent_code(loc: str | None) -> bool:
    """``loc`` (a ``file:line`` or a file) is in the agent's injected source file."""
    return loc is not None and f"/{agent.FILE_STEM}" in loc


def with_descendants(goid: np.ndarray, parent: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Rows of ``own`` and of every goroutine they started, transitively (a dump knows
    each goroutine's creator id; Delve does not, and relies on the inherited label)."""
    ids = goid[own]
    mask = own.copy()
    while len(ids):
        started = np.isin(parent, ids) & ~mask
        ids = goid[started]
        mask |= started
    return mask


def is_system(start_func: str | None) -> bool:
    """A runtime goroutine (GC workers, finalizers...): started at a ``runtime.*`` entry
    other than the ones that run user code, as ``runtime.isSystemGoroutine`` decides."""
    return (
        bool(start_func)
        and start_func.startswith("runtime.")  # type: ignore[union-attr]
        and start_func not in USER_RUNTIME_STARTS
    )


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
