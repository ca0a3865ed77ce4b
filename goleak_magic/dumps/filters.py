"""Which goroutines are whose: one set of named predicates for every source.

The dump-text parser and the Delve adapter decide with these same functions which
goroutines are the goleak_magic agent's (left out of every table), which are the
runtime's own (a default dump hides them) and which frames belong to GOROOT, so a
goroutine is kept or dropped the same way whichever source saw it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .. import agent

# First path elements of standard-library packages: a frame of one of them, at
# ".../src/<its package>/file.go", tells where GOROOT is.
STD_ROOTS = frozenset(
    ["runtime", "internal", "sync", "time", "net", "os", "syscall", "io", "reflect", "fmt",
     "context", "bufio", "bytes", "strings", "strconv", "errors", "log", "crypto", "encoding",
     "math", "sort", "unicode", "vendor"]
)  # fmt: skip
# Runtime entry points that run user code (runtime.isSystemGoroutine keeps them; a C
# thread's call into Go starts at runtime.cgocallback).
USER_RUNTIME_STARTS = frozenset(["runtime.main", "runtime.corostart", "runtime.cgocallback"])
# Runtime frames a default traceback prints anyway: they tell that the goroutine runs
# finalizers or cleanups (runtime.showfuncinfo).
SHOWN_RUNTIME = frozenset(["runtime.runFinalizers", "runtime.runCleanups"])
# The compiler's wrapper for `go f(args)`: a default traceback elides it.
_GOWRAP_RE = re.compile(r"\.gowrap\d+$")
# The generated main of a test binary: its frames are the harness's, not the program's.
TESTMAIN = "_testmain.go"


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


def is_system(start_func: str | None, runs_user_code: bool = False) -> bool:
    """A runtime goroutine (GC workers, the finalizer goroutine...), which a default dump
    leaves out: started at a ``runtime.*`` entry other than the ones that run user code,
    and not running the program's code now (a finalizer or cleanup being run), as
    ``runtime.isSystemGoroutine`` decides."""
    return (
        bool(start_func)
        and start_func.startswith("runtime.")  # type: ignore[union-attr]
        and start_func not in USER_RUNTIME_STARTS
        and not runs_user_code
    )


def _exported_runtime(func: str) -> bool:
    """``runtime.Gosched``, ``runtime.(*Func).Name``: exported, on an exported type."""
    rcvr, _, name = func.removeprefix("runtime.").rpartition(".")
    rcvr = rcvr.removeprefix("(*").removesuffix(")")
    return name[:1].isupper() and (not rcvr or rcvr[:1].isupper())


def shown(func: str, first: bool) -> bool:
    """Whether a default traceback (``GOTRACEBACK=single/all``) prints this frame, as
    ``runtime.showfuncinfo`` decides; ``system``/``crash`` print every frame, and reading
    their dumps through this filter gives the rows a default dump gives."""
    if func == "panic":  # runtime.gopanic, printed so: shown below the top only
        return not first
    if func in SHOWN_RUNTIME:
        return True
    if "." not in func or _GOWRAP_RE.search(func):
        return False
    return not func.startswith("runtime.") or _exported_runtime(func)


def is_testing(
    frames: Sequence[tuple[str, str]],
    created_by: str | None,
    in_goroot: Callable[[str], bool],
) -> bool:
    """A goroutine of the testing harness (``testing.(*M).Run``/``runTests`` in main, the
    ``-test.timeout`` alarm, ``tRunner`` waiting on subtests...): the testing package is
    on its stack or started it, and none of its frames (``func``, ``file:line``) is the
    program's own code beyond the generated test main. A test's own goroutine runs the
    test function, so it is not one."""
    if not any(
        f.startswith(("testing.", "testing/")) for f in (*(f for f, _ in frames), created_by or "")
    ):
        return False
    return all(in_goroot(loc) or loc.rsplit(":", 1)[0].endswith(TESTMAIN) for _, loc in frames)


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
