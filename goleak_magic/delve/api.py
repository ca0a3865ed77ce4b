"""Delve's wire types (``service/api/types.go``) as frozen dataclasses, and the light views
the hot path reads a stop through.

Field names follow Delve's JSON; ``from_json`` takes one decoded object. A stop's
``DebuggerState`` holds every stopped thread's stack and variables (~10 KB): ``Stop`` and
``Hit`` read only the fields asked for, where ``DebuggerState.from_json`` builds them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Goroutine status values (runtime._G*); the 0x1000 bit means "being scanned by the GC".
G_STATUS = {
    0: "idle",
    1: "runnable",
    2: "running",
    3: "syscall",
    4: "waiting",
    6: "dead",
    8: "copystack",
    9: "preempted",
    10: "leaked",
    11: "dead-extra",
}
G_SCAN = 0x1000


# ---- typed results --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Version:
    delve_version: str
    api_version: int
    backend: str
    target_go_version: str  # the DWARF producer, e.g. "Go cmd/compile go1.26.8; regabi"
    min_go: str  # the oldest Go this Delve supports, e.g. "1.25.0"
    max_go: str  # the newest

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Version:
        return cls(
            delve_version=d.get("DelveVersion", ""),
            api_version=d.get("APIVersion", 0),
            backend=d.get("Backend", ""),
            target_go_version=d.get("TargetGoVersion", ""),
            min_go=d.get("MinSupportedVersionOfGo", ""),
            max_go=d.get("MaxSupportedVersionOfGo", ""),
        )


@dataclass(frozen=True, slots=True)
class Location:
    pc: int
    file: str
    line: int
    function: str | None  # fully qualified name, e.g. "main.handler.func1"

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Location:
        if not d:
            return NO_LOCATION
        fn = d.get("function")
        return cls(
            pc=d.get("pc", 0), file=d.get("file", ""), line=d.get("line", 0),
            function=fn.get("name") if fn else None,
        )  # fmt: skip


NO_LOCATION = Location(0, "", 0, None)


# reflect.Kind values Delve reports in Variable.kind
K_ARRAY, K_CHAN, K_FUNC, K_INTERFACE, K_MAP, K_PTR, K_SLICE, K_STRING, K_STRUCT = (
    17, 18, 19, 20, 21, 22, 23, 24, 25
)  # fmt: skip
MAX_SHOWN = 8  # elements / fields shown per level in text()


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    type: str
    value: str
    kind: int  # Go reflect.Kind
    children: tuple[Variable, ...] = ()
    len: int = 0
    cap: int = 0
    addr: int = 0
    unreadable: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Variable:
        return cls(
            name=d.get("name", ""),
            type=d.get("type", ""),
            value=d.get("value", ""),
            kind=d.get("kind", 0),
            children=tuple(cls.from_json(c) for c in d.get("children") or ()),
            len=d.get("len", 0),
            cap=d.get("cap", 0),
            addr=d.get("addr", 0),
            unreadable=d.get("unreadable", ""),
        )

    def text(self, depth: int = 2) -> str:
        """The value on one line, roughly as Delve prints it (``chan int 0/10``,
        ``(*T)(0xc000010000)``, ``"abc"``, ``T {A: 1, B: "x"}``)."""
        if self.unreadable:
            return f"(unreadable {self.unreadable})"
        k = self.kind
        if k == K_STRING:
            more = "..." if self.len > len(self.value) else ""
            return '"' + self.value.replace('"', '\\"') + more + '"'
        if k == K_CHAN:  # children are the hchan fields: qcount, dataqsiz, ...
            if len(self.children) < 2:
                return f"{self.type} nil"
            return f"{self.type} {self.children[0].value}/{self.children[1].value}"
        if k == K_PTR:
            if not self.children or self.children[0].addr == 0:
                return f"({self.type}) nil"
            return f"({self.type})(0x{self.children[0].addr:x})"
        if k == K_FUNC:
            return self.value or "nil"
        if k == K_INTERFACE:
            if not self.children:
                return "nil"
            return self.children[0].text(depth)
        if k in (K_SLICE, K_ARRAY, K_MAP, K_STRUCT):
            return self._composite(depth)
        return self.value

    def _composite(self, depth: int) -> str:
        if depth <= 0:
            return f"{self.type} {{...}}"
        k = self.kind
        if k == K_MAP:
            pairs = zip(self.children[0::2], self.children[1::2], strict=False)
            items = [f"{a.text(depth - 1)}: {b.text(depth - 1)}" for a, b in pairs]
        elif k == K_STRUCT:
            items = [f"{c.name}: {c.text(depth - 1)}" for c in self.children]
        else:
            items = [c.text(depth - 1) for c in self.children]
        total = len(items) if k == K_STRUCT else max(self.len, len(items))
        body = ", ".join(items[:MAX_SHOWN])
        if total > MAX_SHOWN or total > len(items):
            body += f", ...+{total - min(len(items), MAX_SHOWN)} more"
        if k == K_STRUCT:
            return f"{self.type} {{{body}}}"
        if k == K_SLICE:
            return f"{self.type} len: {self.len}, cap: {self.cap}, [{body}]"
        return f"{self.type} [{body}]"

    def __str__(self) -> str:
        """``name=value``, as ``dlv trace`` shows an argument."""
        return f"{self.name}={self.text()}" if self.name else self.text()


@dataclass(frozen=True, slots=True)
class Stackframe:
    location: Location
    arguments: tuple[Variable, ...] = ()
    locals: tuple[Variable, ...] = ()
    err: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Stackframe:
        return cls(
            location=Location.from_json(d),
            arguments=tuple(Variable.from_json(v) for v in d.get("Arguments") or ()),
            locals=tuple(Variable.from_json(v) for v in d.get("Locals") or ()),
            err=d.get("Err", ""),
        )


@dataclass(frozen=True, slots=True)
class Goroutine:
    id: int
    status: int
    wait_reason: int  # index into the target runtime's waitReasonStrings
    wait_since: int  # runtime nanotime when it started waiting (0 if unknown)
    current_loc: Location
    user_current_loc: Location
    go_statement_loc: Location  # where it was created (the go statement)
    start_loc: Location  # its start function
    thread_id: int
    labels: Mapping[str, str]
    unreadable: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Goroutine:
        return cls(
            id=d.get("id", 0),
            status=d.get("status", 0),
            wait_reason=d.get("waitReason", 0),
            wait_since=d.get("waitSince", 0),
            current_loc=Location.from_json(d.get("currentLoc")),
            user_current_loc=Location.from_json(d.get("userCurrentLoc")),
            go_statement_loc=Location.from_json(d.get("goStatementLoc")),
            start_loc=Location.from_json(d.get("startLoc")),
            thread_id=d.get("threadID", 0),
            labels=d.get("labels") or {},
            unreadable=d.get("unreadable", ""),
        )

    @property
    def status_name(self) -> str:
        name = G_STATUS.get(self.status & ~G_SCAN, f"status {self.status}")
        return name + "+scan" if self.status & G_SCAN else name


@dataclass(frozen=True, slots=True)
class GoroutinePage:
    goroutines: tuple[Goroutine, ...]
    nextg: int  # pass as ``start`` for the next page; -1 at the end


@dataclass(frozen=True, slots=True)
class Breakpoint:
    id: int
    name: str
    addrs: tuple[int, ...]
    file: str
    line: int
    function_name: str
    tracepoint: bool
    stacktrace: int
    variables: tuple[str, ...]
    total_hit_count: int
    cond: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Breakpoint:
        return cls(
            id=d.get("id", 0),
            name=d.get("name", ""),
            addrs=tuple(d.get("addrs") or ()),
            file=d.get("file", ""),
            line=d.get("line", 0),
            function_name=d.get("functionName", ""),
            tracepoint=bool(d.get("continue")),
            stacktrace=d.get("stacktrace", 0),
            variables=tuple(d.get("variables") or ()),
            total_hit_count=d.get("totalHitCount", 0),
            cond=d.get("Cond", ""),
        )


@dataclass(frozen=True, slots=True)
class BreakpointInfo:
    stacktrace: tuple[Stackframe, ...] = ()
    goroutine: Goroutine | None = None
    variables: tuple[Variable, ...] = ()
    arguments: tuple[Variable, ...] = ()
    locals: tuple[Variable, ...] = ()

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> BreakpointInfo | None:
        if d is None:
            return None
        g = d.get("goroutine")
        return cls(
            stacktrace=tuple(Stackframe.from_json(f) for f in d.get("stacktrace") or ()),
            goroutine=Goroutine.from_json(g) if g else None,
            variables=tuple(Variable.from_json(v) for v in d.get("variables") or ()),
            arguments=tuple(Variable.from_json(v) for v in d.get("arguments") or ()),
            locals=tuple(Variable.from_json(v) for v in d.get("locals") or ()),
        )


@dataclass(frozen=True, slots=True)
class Thread:
    id: int
    pc: int
    file: str
    line: int
    function: str | None
    goroutine_id: int
    breakpoint: Breakpoint | None
    breakpoint_info: BreakpointInfo | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Thread:
        bp = d.get("breakPoint")
        fn = d.get("function")
        return cls(
            id=d.get("id", 0),
            pc=d.get("pc", 0),
            file=d.get("file", ""),
            line=d.get("line", 0),
            function=fn.get("name") if fn else None,
            goroutine_id=d.get("goroutineID", 0),
            breakpoint=Breakpoint.from_json(bp) if bp else None,
            breakpoint_info=BreakpointInfo.from_json(d.get("breakPointInfo")),
        )


@dataclass(frozen=True, slots=True)
class DebuggerState:
    pid: int
    running: bool
    exited: bool
    exit_status: int
    threads: tuple[Thread, ...]
    current_thread: Thread | None
    stop_reason: str = ""
    next_in_progress: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DebuggerState:
        cur = d.get("currentThread")
        return cls(
            pid=d.get("Pid", 0),
            running=bool(d.get("Running")),
            exited=bool(d.get("exited")),
            exit_status=d.get("exitStatus", 0),
            threads=tuple(Thread.from_json(t) for t in d.get("Threads") or ()),
            current_thread=Thread.from_json(cur) if cur else None,
            stop_reason=d.get("stopReason", ""),
            next_in_progress=bool(d.get("NextInProgress")),
        )

    @property
    def hits(self) -> tuple[Thread, ...]:
        """The threads stopped at a breakpoint."""
        return tuple(t for t in self.threads if t.breakpoint is not None)


@dataclass(frozen=True, slots=True)
class AsmInstruction:
    loc: Location
    dest: Location | None  # destination of a CALL/JMP, when Delve could resolve it
    text: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AsmInstruction:
        dest = d.get("DestLoc")
        return cls(
            loc=Location.from_json(d.get("Loc")),
            dest=Location.from_json(dest) if dest else None,
            text=d.get("Text", ""),
        )


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How much of a variable Delve reads (``api.LoadConfig``)."""

    follow_pointers: bool = False
    max_variable_recurse: int = 1
    max_string_len: int = 64
    max_array_values: int = 16
    max_struct_fields: int = -1

    def to_json(self) -> dict[str, Any]:
        return {
            "FollowPointers": self.follow_pointers,
            "MaxVariableRecurse": self.max_variable_recurse,
            "MaxStringLen": self.max_string_len,
            "MaxArrayValues": self.max_array_values,
            "MaxStructFields": self.max_struct_fields,
        }


class Stop:
    """A ``continue``'s reply read lazily: whether the target exited, and its threads
    stopped at a breakpoint."""

    __slots__ = ("_d",)

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._d = state

    @property
    def exited(self) -> bool:
        return bool(self._d.get("exited"))

    @property
    def exit_status(self) -> int:
        return self._d.get("exitStatus", 0)

    @property
    def hits(self) -> list[Hit]:
        return [Hit(t, bp) for t in self._d.get("Threads") or () if (bp := t.get("breakPoint"))]


class Hit:
    """One thread stopped at a breakpoint (``api.Thread``), read lazily."""

    __slots__ = ("_bp", "_d", "_info")

    def __init__(self, thread: Mapping[str, Any], breakpoint: Mapping[str, Any]) -> None:
        self._d = thread
        self._bp = breakpoint
        self._info: Mapping[str, Any] = thread.get("breakPointInfo") or {}

    @property
    def breakpoint_id(self) -> int:
        return self._bp.get("id", 0)

    @property
    def hit_goroutines(self) -> int:
        """Entries in the breakpoint's per-goroutine hit counts (Delve sends all of them)."""
        return len(self._bp.get("hitCount") or ())

    @property
    def goroutine_id(self) -> int:
        return self._d.get("goroutineID", 0)

    @property
    def function(self) -> str | None:
        fn = self._d.get("function")
        return fn.get("name") if fn else None

    def stack_key(self) -> tuple[tuple[int, int], ...]:
        """(pc, line) per frame of the breakpoint's stacktrace: cheap, for a cache key."""
        return tuple((f.get("pc", 0), f.get("line", 0)) for f in self._frames())

    def stack(self) -> tuple[Location, ...]:
        """The stacktrace the breakpoint asked for, innermost first."""
        return tuple(Location.from_json(f) for f in self._frames())

    def variables(self) -> tuple[Variable, ...]:
        """The breakpoint's ``variables`` expressions, evaluated."""
        return tuple(Variable.from_json(v) for v in self._info.get("variables") or ())

    def arguments(self) -> tuple[Variable, ...]:
        return tuple(Variable.from_json(v) for v in self._info.get("arguments") or ())

    def _frames(self) -> list[Mapping[str, Any]]:
        return self._info.get("stacktrace") or []
