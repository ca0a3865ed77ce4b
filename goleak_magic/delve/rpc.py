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

One method per RPC, in the shape of Delve's ``service/rpc2/client.go``; the results are
the types of ``api``. Only this module names Delve's methods and reads its raw replies.
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

from . import api

try:  # a stop's state is ~10 KB of JSON: orjson parses it 4-5x faster than json
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # the client also works on a bare Python

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()

    _loads = json.loads

HALT_RETRY_S = 0.5  # a halt that lands as a run begins is lost: resend after this long

DEFAULT_TIMEOUT = 60.0


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
    def get_version(self) -> api.Version:
        return api.Version.from_json(self.call("GetVersion"))

    def process_pid(self) -> int:
        return int(self.call("ProcessPid")["Pid"])

    def state(self, non_blocking: bool = False, timeout: float | None = None) -> api.DebuggerState:
        """The debugger state; with ``non_blocking`` it answers even while the target runs."""
        out = self.call("State", {"NonBlocking": non_blocking}, timeout)
        return api.DebuggerState.from_json(out["State"] or {})

    def command_async(
        self, name: str, on_stop: Callable[[StateCall], None] | None = None
    ) -> StateCall:
        """Send ``Command`` ``name`` without waiting; ``on_stop`` runs on the reader
        thread when the reply (the next stop) is in, as ``Client.send``'s callback does."""
        callback = None if on_stop is None else lambda call: on_stop(StateCall(call))
        return StateCall(self.send("Command", {"name": name}, callback))

    def continue_async(self, on_stop: Callable[[StateCall], None] | None = None) -> StateCall:
        """Resume the target; the reply comes at its next stop."""
        return self.command_async("continue", on_stop)

    def halt_async(self) -> StateCall:
        """Ask a running target to stop (a pending ``continue`` returns with the stop)."""
        return self.command_async("halt")

    def continue_(self, timeout: float | None = None) -> api.DebuggerState:
        """Resume the target and wait (by default without limit) until it stops."""
        return self.continue_async().result(timeout)

    def halt(self, timeout: float | None = None) -> api.DebuggerState:
        """Stop a running target; a pending ``continue`` returns with the stop too.

        A halt that lands as a run begins is lost (Delve clears the request when the run
        starts), so it is resent every ``HALT_RETRY_S`` until one is answered. Resending
        in a tight loop instead piles up halts that each take Delve's target lock."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            pending = self.halt_async()
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
        load_args: api.LoadConfig | None = None,
        load_locals: api.LoadConfig | None = None,
        cond: str = "",
    ) -> api.Breakpoint:
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
        return api.Breakpoint.from_json(out["Breakpoint"])

    def clear_breakpoint(self, bp_id: int) -> api.Breakpoint:
        return api.Breakpoint.from_json(self.call("ClearBreakpoint", {"Id": bp_id})["Breakpoint"])

    def list_breakpoints(self) -> list[api.Breakpoint]:
        out = self.call("ListBreakpoints", {"All": False})
        return [api.Breakpoint.from_json(b) for b in out["Breakpoints"] or ()]

    def list_functions(self, regex: str) -> list[str]:
        """Functions whose name matches ``regex`` (Go regexp syntax)."""
        return list(self.call("ListFunctions", {"Filter": regex})["Funcs"] or ())

    def find_location(self, loc: str, goroutine_id: int = -1) -> list[api.Location]:
        out = self.call("FindLocation", {"Scope": {"GoroutineID": goroutine_id}, "Loc": loc})
        return [api.Location.from_json(x) for x in out["Locations"] or ()]

    def disassemble(self, start_pc: int, end_pc: int = 0) -> list[api.AsmInstruction]:
        """Instructions in [start_pc, end_pc), or the whole function around start_pc."""
        out = self.call(
            "Disassemble",
            {"Scope": {"GoroutineID": -1}, "StartPC": start_pc, "EndPC": end_pc, "Flavour": 2},
        )
        return [api.AsmInstruction.from_json(i) for i in out["Disassemble"] or ()]

    def list_goroutines(
        self,
        start: int = 0,
        count: int = 1000,
        filters: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> api.GoroutinePage:
        """One page of goroutines (target must be stopped); ``nextg`` is -1 at the end.

        ``filters`` are ``api.ListGoroutinesFilter`` dicts (``Kind``, ``Negated``, ``Arg``).
        """
        params = {"Start": start, "Count": count, "Filters": list(filters)}
        out = self.call("ListGoroutines", params, timeout)
        gs = tuple(api.Goroutine.from_json(g) for g in out["Goroutines"] or ())
        return api.GoroutinePage(gs, out.get("Nextg", -1))

    def iter_goroutines(self, page_size: int = 1000) -> Iterator[api.Goroutine]:
        """Every goroutine, page by page (target must be stopped)."""
        start = 0
        while start >= 0:
            page = self.list_goroutines(start, page_size)
            yield from page.goroutines
            if page.nextg == start:
                break
            start = page.nextg

    def stacktrace(self, goroutine_id: int, depth: int = 50) -> list[api.Stackframe]:
        out = self.call("Stacktrace", {"Id": goroutine_id, "Depth": depth})
        return [api.Stackframe.from_json(f) for f in out["Locations"] or ()]

    def eval(self, expr: str, goroutine_id: int = -1, frame: int = 0) -> api.Variable:
        scope = {"GoroutineID": goroutine_id, "Frame": frame}
        out = self.call("Eval", {"Scope": scope, "Expr": expr})
        return api.Variable.from_json(out["Variable"])

    def detach(self, kill: bool = False) -> None:
        """End the debug session: dlv lets the target go (or kills it) and exits."""
        try:
            self.call("Detach", {"Kill": kill})
        finally:
            self.close()


class StateCall:
    """A pending ``Command``: ``result()`` waits for the stop and returns the state;
    ``stop()`` reads only what the hot path needs of it."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def done(self) -> bool:
        return self.call.done()

    def result(self, timeout: float | None = None) -> api.DebuggerState:
        return api.DebuggerState.from_json(self.call.result(timeout)["State"])

    def stop(self, timeout: float | None = None) -> api.Stop:
        return api.Stop(self.call.result(timeout)["State"])
