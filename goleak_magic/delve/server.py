"""The running Delve session of a target, and the registry of one session per target.

``launch`` starts dlv (or connects to one); a ``DlvServer`` runs the session from there.
While attached, a runner thread keeps the target running (``continue``) and hands every
breakpoint stop to the handlers registered for that breakpoint (the tracer);
``run_halted(fn)`` runs ``fn(client)`` with the target halted (set or clear breakpoints,
list goroutines) and resumes it. ``release()`` by the last user detaches: Delve takes its
breakpoints out, the target runs on, dlv exits.

The target stopping runs our closer first, so a debugger is always detached before its
target goes.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .. import process
from ..errors import GoleakError
from . import api, launch, rpc

DETACH_TIMEOUT = 10.0

T = TypeVar("T")


class HitHandler(Protocol):
    """What the runner calls: stops at the handler's breakpoints, and the end."""

    bp_ids: set[int]

    def wants(self, hits: list[api.Hit]) -> bool:
        """Cheap, before ``hits``: may the target run on right away? (False: ``hits``
        will ask for a halt)"""

    def hits(self, hits: list[api.Hit], now_ns: int) -> bool:
        """Record the threads stopped at the handler's breakpoints; False asks for
        ``halted``. Runs on the connection's reader thread, maybe while the target
        already runs on: it must not wait for a Delve reply."""

    def halted(self, client: rpc.Client) -> bool:
        """After ``hits`` returned False, on the runner thread with the target halted:
        True to stay registered (``bp_ids`` may have changed), False when done."""

    def ended(self, why: str) -> None:
        """The session ended under the handler (target exited, dlv lost, detached)."""


class DlvServer:
    """A connected Delve that keeps its target running between ``run_halted`` calls."""

    def __init__(self, dlv: launch.Dlv) -> None:
        self.client = dlv.client
        self.label = dlv.label
        self.proc = dlv.proc
        self.output = dlv.output
        self.kill_on_close = dlv.kill_on_close
        self.version = dlv.version
        self.pid = dlv.pid
        self.warnings: list[str] = []
        self.exit_status: int | None = None  # the target's, when Delve saw it exit
        self.ended: str | None = None  # why the session is over
        self._handlers: dict[int, HitHandler] = {}
        self._requests: deque[tuple[Callable[[rpc.Client], Any], _Reply]] = deque()
        self._lock = threading.Lock()
        self._users = 0
        self._runner: threading.Thread | None = None
        self._running: rpc.StateCall | None = None  # the outstanding continue
        self._stopped = threading.Event()  # the chain of continues has ended
        self._stop: api.Stop | None = None
        self._stop_error: Exception | None = None
        self._halt_for: list[HitHandler] = []  # handlers whose hits() asked for a halt
        self._closing = False
        self._done = threading.Event()

    # ---- users ------------------------------------------------------------------------
    def acquire(self) -> DlvServer:
        with self._lock:
            self._users += 1
        return self

    def release(self) -> None:
        """The last user out detaches (the target keeps running)."""
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.close()

    # ---- running ----------------------------------------------------------------------
    def start(self) -> None:
        """Resume the target and keep it running; stops go to the registered handlers."""
        if self._runner is None:
            self._runner = threading.Thread(
                target=self._run, name=f"goleak-dlv-{self.label}", daemon=True
            )
            self._runner.start()

    def add_handler(self, handler: HitHandler) -> None:
        with self._lock:
            for bp in handler.bp_ids:
                self._handlers[bp] = handler

    def remove_handler(self, handler: HitHandler) -> None:
        with self._lock:
            for bp in handler.bp_ids:
                self._handlers.pop(bp, None)

    @property
    def alive(self) -> bool:
        return self.ended is None

    def run_halted(self, fn: Callable[[rpc.Client], T], timeout: float = 120.0) -> T:
        """``fn(client)`` with the target halted; the target runs on afterwards."""
        if self.ended is not None:
            raise GoleakError(f"Delve is no longer attached to {self.label} ({self.ended}).")
        if self._runner is None or threading.current_thread() is self._runner:
            return fn(self.client)
        reply = _Reply()
        with self._lock:
            self._requests.append((fn, reply))
        self._interrupt()
        deadline = time.monotonic() + timeout
        while not reply.done.wait(rpc.HALT_RETRY_S):
            if self.ended is not None and not reply.done.is_set():
                raise GoleakError(f"Delve is no longer attached to {self.label} ({self.ended}).")
            if time.monotonic() > deadline:
                raise GoleakError(
                    f"Delve did not halt {self.label} within {timeout:.0f}s; "
                    "stop the trace and try again."
                )
            self._interrupt()
        if reply.error is not None:
            raise reply.error
        return reply.value  # type: ignore[return-value]

    def _interrupt(self) -> None:
        running = self._running
        if running is not None and not running.done():
            with contextlib.suppress(rpc.DelveError):
                self.client.halt_async()

    def _run(self) -> None:
        why = "detached"
        try:
            while True:
                self._serve_requests()
                if self._closing:
                    break
                self._stopped.clear()
                self._stop = self._stop_error = None
                self._resume()
                if self._requests or self._closing:
                    self._interrupt()
                self._stopped.wait()
                if self._stop_error is not None:
                    raise self._stop_error
                if self._stop is not None and self._stop.exited:
                    self.exit_status = self._stop.exit_status
                    why = f"the target exited ({process.describe_status(self.exit_status)})"
                    break
        except rpc.ConnectionClosed:
            why = self._lost()
        except rpc.DelveError as e:
            why = f"Delve failed: {e}"
        except Exception as e:  # a bug: say so rather than hang the trace
            why = f"internal error: {e!r}"
        finally:
            self._running = None
            self._finish(why)

    def _resume(self) -> None:
        self._running = self.client.continue_async(self._on_stop)

    def _on_stop(self, call: rpc.StateCall) -> None:
        """A continue returned (reader thread). When nothing needs the target halted, it
        continues at once, before the rows are built: no thread switch, and the Python
        work overlaps the target's run to its next stop."""
        stop = True
        try:
            if self._stop_error is not None:
                return
            self._stop = state = call.stop(0)
            groups = self._group(state)
            if not (state.exited or self._requests or self._closing) and all(
                h.wants(hits) for h, hits in groups
            ):
                self._resume()
                stop = False
            now = time.time_ns()
            for handler, hits in groups:
                if not handler.hits(hits, now):
                    self.remove_handler(handler)
                    self._halt_for.append(handler)
                    if not stop:  # wants() did not see it coming: halt now
                        self._interrupt()
        except Exception as e:  # Delve's error, or a handler's bug: end the session, loudly
            self._stop_error = e
            if not stop:
                self._interrupt()  # the stop this halt causes ends the chain
        finally:
            if stop:
                self._running = None
                self._stopped.set()

    def _group(self, stop: api.Stop) -> list[tuple[HitHandler, list[api.Hit]]]:
        """The threads stopped at a breakpoint, by the handler of their breakpoint."""
        by_handler: dict[int, tuple[HitHandler, list[api.Hit]]] = {}
        with self._lock:
            for hit in stop.hits:
                handler = self._handlers.get(hit.breakpoint_id)
                if handler is not None:
                    by_handler.setdefault(id(handler), (handler, []))[1].append(hit)
        return list(by_handler.values())

    def _serve_requests(self) -> None:
        while self._halt_for:
            handler = self._halt_for.pop()
            try:
                keep = handler.halted(self.client)
            except (rpc.DelveError, GoleakError) as e:
                if isinstance(e, rpc.ConnectionClosed):
                    raise
                handler.ended(f"Delve refused: {e}")
                keep = False
            if keep:
                self.add_handler(handler)
        while self._requests:
            with self._lock:
                fn, reply = self._requests.popleft()
            try:
                reply.value = fn(self.client)
            except rpc.ConnectionClosed:
                reply.error = GoleakError(f"Delve went away from {self.label} ({self._lost()}).")
                reply.done.set()
                raise
            except (rpc.DelveError, GoleakError) as e:
                reply.error = e if isinstance(e, GoleakError) else GoleakError(f"Delve: {e}.")
            reply.done.set()

    def _lost(self) -> str:
        if self.proc is None:
            return f"the connection to {self.client.address} dropped"
        try:
            status = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            return "the connection to dlv dropped"
        said = launch.dlv_said(self.output)[-3:]
        tail = f": {' | '.join(said)}" if said else ""
        return (
            f"dlv died ({process.describe_status(status)}{tail}); the program still holds "
            "Delve's breakpoint and may die of SIGTRAP at its next one"
        )

    def _finish(self, why: str) -> None:
        self.ended = why
        with self._lock:
            handlers = {id(h): h for h in self._handlers.values()}.values()
            self._handlers.clear()
            requests = list(self._requests)
            self._requests.clear()
        for _, reply in requests:
            reply.error = GoleakError(f"Delve is no longer attached to {self.label} ({why}).")
            reply.done.set()
        for h in handlers:
            h.ended(why)
        self._done.set()
        if self._claim_shutdown():  # the target exited or dlv went away
            self._shutdown()

    # ---- the end ----------------------------------------------------------------------
    def close(self) -> None:
        """Detach (Delve takes its breakpoints out; the target runs on) and end dlv."""
        if not self._claim_shutdown():
            return
        if self._runner is not None and self._runner is not threading.current_thread():
            deadline = time.monotonic() + DETACH_TIMEOUT
            while not self._done.wait(rpc.HALT_RETRY_S) and time.monotonic() < deadline:
                self._interrupt()
        elif self._runner is None:
            self._finish("detached")
        self._shutdown()

    def _claim_shutdown(self) -> bool:
        """True for the one caller that gets to shut the session down."""
        with self._lock:
            if self._closing:
                return False
            self._closing = True
            return True

    def _shutdown(self) -> None:
        if not self.client.closed:
            if self.proc is not None:
                self._detach()
            else:
                self._let_go()
        self.client.close()
        if self.proc is not None:
            try:
                self.proc.wait(DETACH_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill(self.proc)

    def _detach(self) -> None:
        """Our dlv: breakpoints out, Detach (dlv exits; an attached program runs on)."""
        with contextlib.suppress(rpc.DelveError):
            if self.exit_status is None:
                for bp in self.client.list_breakpoints():
                    if bp.id > 0:  # Delve's own (negative ids) are not ours to clear
                        self.client.clear_breakpoint(bp.id)
        with contextlib.suppress(rpc.DelveError):
            self.client.detach(kill=self.kill_on_close)

    def _let_go(self) -> None:
        """Someone else's dlv (--connect): leave it as we found it, its program running.

        Our tracepoints went out with their trace; Detach would end that dlv and, for a
        program it launched, kill the program too. A server without --accept-multiclient
        ends when we disconnect anyway (Delve's rule, not ours)."""
        if self.exit_status is None:
            with contextlib.suppress(rpc.DelveError):
                self.client.continue_async()  # no reply: it runs on


class _Reply:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: Exception | None = None


# ---- starting ---------------------------------------------------------------------------
def attach(pid: int, *, workdir: Path, dlv: str = "") -> DlvServer:
    """``launch.attach``'s session; the target is halted until ``start()``."""
    return _checked(DlvServer(launch.attach(pid, workdir=workdir, dlv=dlv)))


def exec_binary(
    binary: str | Path, args: list[str] | tuple[str, ...] = (), *, workdir: Path, dlv: str = ""
) -> DlvServer:
    """``launch.exec_binary``'s session: the program is killed when it closes."""
    return _checked(DlvServer(launch.exec_binary(binary, args, workdir=workdir, dlv=dlv)))


def connect(address: str) -> DlvServer:
    """``launch.connect``'s session; the program is halted until ``start()``."""
    return _checked(DlvServer(launch.connect(address)))


def _checked(server: DlvServer) -> DlvServer:
    """Refuse a Delve that is too old for the target's Go; warn on an older Go."""
    problem, warning = launch.check_versions(server.version)
    if problem:
        server.close()  # ours detaches; someone else's is left running, as it was
        raise GoleakError(problem)
    if warning:
        server.warnings.append(warning)
    return server


# ---- one server per target ---------------------------------------------------------------
_servers_lock = threading.Lock()


def for_target(target: Any, *, workdir: Path, dlv: str = "", resume: bool = True) -> DlvServer:
    """The target's Delve (attaching now if needed), acquired: ``release()`` when done.

    ``target`` is a ``goleak_magic.target.Target``; its closers detach Delve before it
    stops. A fresh attach leaves the target halted until ``start()``; ``resume`` starts
    it now (a tracer sets its tracepoints first, so it misses nothing in between). Start
    every new server from the kernel's main thread (process.spawn's rule).
    """
    with _servers_lock:
        server = current(target)
        if server is not None:
            return server.acquire()
        if not target.alive or target.pid is None:
            raise GoleakError(
                f"{target.name} is not running ({target.state}); launch it again with %golaunch."
            )
        server = target.dlv = attach(target.pid, workdir=workdir, dlv=dlv)
    return _hold(target, server, resume)


def register(target: Any, server: DlvServer, *, resume: bool = True) -> DlvServer:
    """Make ``server`` (e.g. from ``connect``) the target's Delve, acquired; ``resume``
    as in ``for_target``."""
    with _servers_lock:
        if current(target) is not None:
            server.close()
            raise GoleakError(f"{target.name} already has a Delve attached.")
        target.dlv = server
    return _hold(target, server, resume)


def _hold(target: Any, server: DlvServer, resume: bool) -> DlvServer:
    """The target's new Delve: detached before the target stops, acquired, maybe resumed."""
    target.add_closer(server.close)
    server.acquire()
    if resume:
        server.start()
    return server


def current(target: Any) -> DlvServer | None:
    """The target's live Delve, if one is attached (callers that then replace it hold
    ``_servers_lock``)."""
    server = target.dlv
    return server if server is not None and server.alive and not server._closing else None


@contextlib.contextmanager
def attached(target: Any, *, workdir: Path, dlv: str = "") -> Iterator[DlvServer]:
    """``with attached(t, workdir=...) as dbg: dbg.run_halted(...)``; detaches after,
    unless a trace still uses it."""
    server = for_target(target, workdir=workdir, dlv=dlv)
    try:
        yield server
    finally:
        server.release()
