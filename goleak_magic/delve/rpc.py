"""A client for Delve's headless JSON-RPC API (``dlv --headless --api-version=2``).

Standalone: the standard library (and ``orjson`` when installed). The wire is Go's
``net/rpc/jsonrpc`` over a raw stream (unix socket or TCP): one JSON request per call,
``{"method": "RPCServer.State", "params": [{...}], "id": 7}``, and one JSON reply per line,
``{"id": 7, "result": {...}, "error": null}``. Replies to asynchronous methods
(``Command``, ``State``) can arrive out of order, so a reader thread matches them to
their request by ``id``::

    with Client("unix:/tmp/dlv.sock") as c:
        print(c.get_version())
        c.create_breakpoint(function_name="main.main", tracepoint=True, stacktrace=8)
        state = c.continue_()          # returns at the next stop
        c.halt()                       # from another thread, while continue_ waits

Field names follow Delve's ``service/api/types.go``; results are frozen dataclasses.
Delve serves synchronous methods one at a time on a connection and most of them need the
target stopped: while a ``continue`` runs, ``halt`` first (or the call times out).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

try:  # a stop's state is ~10 KB of JSON: orjson parses it 4-5x faster than json
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # the client also works on a bare Python

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()

    _loads = json.loads

HALT_RETRY_S = 0.5  # a halt that lands as a run begins is lost: resend after this long

DEFAULT_TIMEOUT = 60.0

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


# ---- errors ---------------------------------------------------------------------------
class DelveError(Exception):
    """Base class of everything this client raises."""


class RPCError(DelveError):
    """Delve answered a request with an error."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


class ProcessExitedError(RPCError):
    """The request needs a live target but the process has exited."""

    def __init__(self, method: str, message: str, status: int | None) -> None:
        super().__init__(method, message)
        self.status = status


class RPCTimeout(DelveError, TimeoutError):
    """No reply within the timeout (the connection stays usable; a late reply is dropped)."""


class ConnectionClosed(DelveError, ConnectionError):
    """The connection to Delve is gone (dlv exited, crashed or closed it)."""


_EXITED_RE = re.compile(r"has exited with status (-?\d+)")


def _error_for(method: str, message: str) -> RPCError:
    message = message.strip()
    m = _EXITED_RE.search(message)
    if m:
        return ProcessExitedError(method, message, int(m.group(1)))
    return RPCError(method, message)


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

    def __str__(self) -> str:
        """``func file:line`` — how a Go engineer reads a frame."""
        return f"{self.function or '?'} {self.file}:{self.line}"


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


# ---- the connection -------------------------------------------------------------------
@dataclass(eq=False)
class Call:
    """One request in flight; ``result()`` waits for its reply."""

    method: str
    id: int
    callback: Callable[[Call], None] | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _result: Any = None
    _error: DelveError | None = None
    callback_error: Exception | None = None  # what the callback raised (the reader lives on)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        if not self._done.wait(timeout):
            raise RPCTimeout(
                f"Delve did not answer {self.method} within {timeout:g}s (a running target "
                "must be halted first for most requests)"
            )
        if self._error is not None:
            raise self._error
        return self._result

    def _set(self, result: Any, error: DelveError | None) -> None:
        self._result, self._error = result, error
        self._done.set()
        if self.callback is not None:
            try:
                self.callback(self)
            except Exception as e:  # a callback's bug must not take the reader down
                self.callback_error = e


def parse_address(address: str) -> tuple[int, Any]:
    """``unix:/path``, ``/path``, ``host:port`` or ``[v6]:port`` → (family, sockaddr)."""
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[5:]
    if address.startswith("/"):
        return socket.AF_UNIX, address
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not a Delve address: {address!r} (want HOST:PORT or unix:/path)")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


class Client:
    """A connection to one headless Delve server; safe to use from several threads."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        family, sockaddr = parse_address(address)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(min(timeout, 10.0))
        try:
            sock.connect(sockaddr)
        except OSError as e:
            sock.close()
            raise ConnectionClosed(f"cannot connect to Delve at {address}: {e}") from e
        sock.settimeout(None)
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._rfile = sock.makefile("rb")
        self._send_lock = threading.Lock()
        self._pending: dict[int, Call] = {}
        self._pending_lock = threading.Lock()
        self._next_id = 0
        self._closed: str | None = None  # why, once closed
        self._reader = threading.Thread(target=self._read, name="delve-rpc-reader", daemon=True)
        self._reader.start()
        self.call("SetApiVersion", {"APIVersion": 2})

    # ---- plumbing ---------------------------------------------------------------------
    def send(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        callback: Callable[[Call], None] | None = None,
    ) -> Call:
        """Send a request without waiting; ``.result()`` on the returned call waits.

        ``callback(call)`` runs on the reader thread as soon as the reply is in (it may
        ``send`` again, e.g. the next ``continue``, but must not wait for a reply).
        """
        full = method if "." in method else f"RPCServer.{method}"
        with self._pending_lock:
            if self._closed is not None:
                raise ConnectionClosed(f"connection to Delve at {self.address} is closed: "
                                       f"{self._closed}")  # fmt: skip
            self._next_id += 1
            call = Call(full, self._next_id, callback)
            self._pending[call.id] = call
        data = _dumps({"method": full, "params": [dict(params or {})], "id": call.id})
        try:
            with self._send_lock:
                self._sock.sendall(data + b"\n")
        except OSError as e:
            self._fail_all(f"send failed: {e}")
        return call

    def call(
        self, method: str, params: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Send a request and wait for its result (the decoded ``result`` object)."""
        return self.send(method, params).result(self.timeout if timeout is None else timeout)

    def _read(self) -> None:
        why = "Delve closed the connection"
        try:
            for line in self._rfile:
                if not line.strip():
                    continue
                reply = _loads(line)
                with self._pending_lock:
                    call = self._pending.pop(reply.get("id"), None)
                if call is None:
                    continue  # the caller timed out and moved on
                err = reply.get("error")
                if err:
                    call._set(None, _error_for(call.method, str(err)))
                else:
                    call._set(reply.get("result"), None)
        except (OSError, ValueError) as e:  # both JSONDecodeErrors are ValueErrors
            why = f"connection to Delve failed: {e}"
        self._fail_all(why)

    def _fail_all(self, why: str) -> None:
        with self._pending_lock:
            if self._closed is None:
                self._closed = why
            pending, self._pending = self._pending, {}
        for call in pending.values():
            call._set(None, ConnectionClosed(f"{call.method}: {self._closed}"))

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def close(self) -> None:
        """Close the connection (Delve keeps running; see ``detach`` to end it)."""
        self._fail_all("closed by the client")
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._reader is not threading.current_thread():
            self._reader.join(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- typed calls ------------------------------------------------------------------
    def get_version(self) -> Version:
        return Version.from_json(self.call("GetVersion"))

    def process_pid(self) -> int:
        return int(self.call("ProcessPid")["Pid"])

    def state(self, non_blocking: bool = False, timeout: float | None = None) -> DebuggerState:
        """The debugger state; with ``non_blocking`` it answers even while the target runs."""
        out = self.call("State", {"NonBlocking": non_blocking}, timeout)
        return DebuggerState.from_json(out["State"] or {})

    def command_async(self, name: str, **extra: Any) -> StateCall:
        return StateCall(self.send("Command", {"name": name, **extra}))

    def continue_(self, timeout: float | None = None) -> DebuggerState:
        """Resume the target and wait (by default without limit) until it stops."""
        return self.command_async("continue").result(timeout)

    def halt(self, timeout: float | None = None) -> DebuggerState:
        """Stop a running target; a pending ``continue`` returns with the stop too.

        A halt that lands as a run begins is lost (Delve clears the request when the run
        starts), so it is resent every ``HALT_RETRY_S`` until one is answered. Resending
        in a tight loop instead piles up halts that each take Delve's target lock."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            pending = self.command_async("halt")
            try:
                return pending.result(min(HALT_RETRY_S, max(deadline - time.monotonic(), 0.0)))
            except RPCTimeout:
                if time.monotonic() >= deadline:
                    raise RPCTimeout(f"Delve did not halt the target within {limit:g}s") from None

    def create_breakpoint(
        self,
        *,
        function_name: str = "",
        file: str = "",
        line: int | None = None,
        addr: int = 0,
        loc_expr: str = "",
        name: str = "",
        tracepoint: bool = False,
        stacktrace: int = 0,
        goroutine: bool = False,
        variables: Sequence[str] = (),
        load_args: LoadConfig | None = None,
        load_locals: LoadConfig | None = None,
        cond: str = "",
    ) -> Breakpoint:
        """Set a breakpoint (``tracepoint=True``: report and go on, as ``dlv trace`` does).

        Give one of ``function_name`` (its entry), ``file`` + ``line``, ``addr`` or a
        location expression ``loc_expr`` (e.g. ``"main.go:12"``, ``"*0x4a2b10"``).
        """
        bp: dict[str, Any] = {
            "name": name,
            "functionName": function_name,
            "file": file,
            # A function's line -1 means its entry, after the prologue (as dlv trace does).
            "line": line if line is not None else -1 if function_name else 0,
            "addr": addr,
            "continue": tracepoint,
            "stacktrace": stacktrace,
            "goroutine": goroutine,
            "Cond": cond,
        }
        if variables:
            bp["variables"] = list(variables)
        if load_args is not None:
            bp["LoadArgs"] = load_args.to_json()
        if load_locals is not None:
            bp["LoadLocals"] = load_locals.to_json()
        out = self.call("CreateBreakpoint", {"Breakpoint": bp, "LocExpr": loc_expr})
        return Breakpoint.from_json(out["Breakpoint"])

    def clear_breakpoint(self, bp_id: int) -> Breakpoint:
        return Breakpoint.from_json(self.call("ClearBreakpoint", {"Id": bp_id})["Breakpoint"])

    def list_breakpoints(self) -> list[Breakpoint]:
        out = self.call("ListBreakpoints", {"All": False})
        return [Breakpoint.from_json(b) for b in out["Breakpoints"] or ()]

    def list_functions(self, regex: str) -> list[str]:
        """Functions whose name matches ``regex`` (Go regexp syntax)."""
        return list(self.call("ListFunctions", {"Filter": regex})["Funcs"] or ())

    def find_location(self, loc: str, goroutine_id: int = -1) -> list[Location]:
        out = self.call("FindLocation", {"Scope": {"GoroutineID": goroutine_id}, "Loc": loc})
        return [Location.from_json(x) for x in out["Locations"] or ()]

    def disassemble(self, start_pc: int, end_pc: int = 0) -> list[AsmInstruction]:
        """Instructions in [start_pc, end_pc), or the whole function around start_pc."""
        out = self.call(
            "Disassemble",
            {"Scope": {"GoroutineID": -1}, "StartPC": start_pc, "EndPC": end_pc, "Flavour": 2},
        )
        return [AsmInstruction.from_json(i) for i in out["Disassemble"] or ()]

    def list_goroutines(
        self,
        start: int = 0,
        count: int = 1000,
        filters: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> GoroutinePage:
        """One page of goroutines (target must be stopped); ``nextg`` is -1 at the end.

        ``filters`` are ``api.ListGoroutinesFilter`` dicts (``Kind``, ``Negated``, ``Arg``).
        """
        params = {"Start": start, "Count": count, "Filters": list(filters)}
        out = self.call("ListGoroutines", params, timeout)
        gs = tuple(Goroutine.from_json(g) for g in out["Goroutines"] or ())
        return GoroutinePage(gs, out.get("Nextg", -1))

    def iter_goroutines(self, page_size: int = 1000) -> Iterator[Goroutine]:
        """Every goroutine, page by page (target must be stopped)."""
        start = 0
        while start >= 0:
            page = self.list_goroutines(start, page_size)
            yield from page.goroutines
            if page.nextg == start:
                break
            start = page.nextg

    def stacktrace(self, goroutine_id: int, depth: int = 50) -> list[Stackframe]:
        out = self.call("Stacktrace", {"Id": goroutine_id, "Depth": depth})
        return [Stackframe.from_json(f) for f in out["Locations"] or ()]

    def eval(self, expr: str, goroutine_id: int = -1, frame: int = 0) -> Variable:
        scope = {"GoroutineID": goroutine_id, "Frame": frame}
        out = self.call("Eval", {"Scope": scope, "Expr": expr})
        return Variable.from_json(out["Variable"])

    def detach(self, kill: bool = False) -> None:
        """End the debug session: dlv lets the target go (or kills it) and exits."""
        try:
            self.call("Detach", {"Kill": kill})
        finally:
            self.close()


class StateCall:
    """A pending ``Command``: ``result()`` waits for the stop and returns the state."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def done(self) -> bool:
        return self.call.done()

    def result(self, timeout: float | None = None) -> DebuggerState:
        return DebuggerState.from_json(self.call.result(timeout)["State"])
