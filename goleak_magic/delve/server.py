"""dlv's lifecycle: a headless Delve attached to a target (or running a binary) on a
private unix socket, or a connection to one that already runs elsewhere.

One ``DlvServer`` per target. While attached, a runner thread keeps the target running
(``continue``) and hands every breakpoint stop to the handlers registered for that
breakpoint (the tracer); ``run_halted(fn)`` runs ``fn(client)`` with the target halted
(set or clear breakpoints, list goroutines) and resumes it. ``release()`` by the last
user detaches: Delve takes its breakpoints out, the target runs on, dlv exits.

dlv starts through ``process.spawn`` (own session, dies with the kernel); the target
stopping runs our closer first, so a debugger is always detached before its target goes.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .. import process
from ..errors import GoleakError
from ..tools import DELVE_VERSION, find_dlv, parse_go_version
from . import rpc

START_TIMEOUT = 30.0  # dlv reads the binary's DWARF before it answers
DETACH_TIMEOUT = 10.0
OUTPUT_LINES = 200
LISTEN_RE = re.compile(r"API server listening at: (\S+)")
# One P for an attaching dlv: every ptrace call is handed to one locked OS thread, and
# with more Ps each handoff also wakes another P's thread (see bench/RESULTS.md). Not for
# dlv exec, whose program would inherit it.
DLV_ENV = {"GOMAXPROCS": "1"}

T = TypeVar("T")


class HitHandler(Protocol):
    """What the runner calls: stops at the handler's breakpoints, and the end."""

    bp_ids: set[int]

    def wants(self, threads: list[dict[str, Any]]) -> bool:
        """Cheap, before ``hits``: may the target run on right away? (False: ``hits``
        will ask for a halt)"""

    def hits(self, threads: list[dict[str, Any]], now_ns: int) -> bool:
        """Record the stopped threads (raw ``api.Thread`` dicts); False asks for
        ``halted``. Runs on the connection's reader thread, maybe while the target
        already runs on: it must not wait for a Delve reply."""

    def halted(self, client: rpc.Client) -> bool:
        """After ``hits`` returned False, on the runner thread with the target halted:
        True to stay registered (``bp_ids`` may have changed), False when done."""

    def ended(self, why: str) -> None:
        """The session ended under the handler (target exited, dlv lost, detached)."""


class DlvServer:
    """A connected Delve that keeps its target running between ``run_halted`` calls."""

    def __init__(
        self,
        client: rpc.Client,
        *,
        label: str,
        proc: subprocess.Popen[bytes] | None = None,
        output: deque[str] | None = None,
        kill_on_close: bool = False,
    ) -> None:
        self.client = client
        self.label = label  # "pid 1234" / the remote address, for messages
        self.proc = proc
        self.output = output if output is not None else deque(maxlen=OUTPUT_LINES)
        self.kill_on_close = kill_on_close  # dlv exec: the target is dlv's, it goes too
        self.version = client.get_version()
        self.pid = client.process_pid()
        self.warnings: list[str] = []
        self.exit_status: int | None = None  # the target's, when Delve saw it exit
        self.ended: str | None = None  # why the session is over
        self._handlers: dict[int, HitHandler] = {}
        self._requests: deque[tuple[Callable[[rpc.Client], Any], _Reply]] = deque()
        self._lock = threading.Lock()
        self._users = 0
        self._runner: threading.Thread | None = None
        self._running: rpc.Call | None = None  # the outstanding continue
        self._stopped = threading.Event()  # the chain of continues has ended
        self._stop_state: dict[str, Any] | None = None
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
                self.client.send("Command", {"name": "halt"})

    def _run(self) -> None:
        why = "detached"
        try:
            while True:
                self._serve_requests()
                if self._closing:
                    break
                self._stopped.clear()
                self._stop_state = self._stop_error = None
                self._resume()
                if self._requests or self._closing:
                    self._interrupt()
                self._stopped.wait()
                if self._stop_error is not None:
                    raise self._stop_error
                state = self._stop_state or {}
                if state.get("exited"):
                    self.exit_status = state.get("exitStatus", 0)
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
        self._running = self.client.send("Command", {"name": "continue"}, callback=self._on_stop)

    def _on_stop(self, call: rpc.Call) -> None:
        """A continue returned (reader thread). When nothing needs the target halted, it
        continues at once, before the rows are built: no thread switch, and the Python
        work overlaps the target's run to its next stop."""
        stop = True
        try:
            if self._stop_error is not None:
                return
            state = call.result(0)["State"]
            self._stop_state = state
            groups = self._group(state)
            if not (state.get("exited") or self._requests or self._closing) and all(
                h.wants(threads) for h, threads in groups
            ):
                self._resume()
                stop = False
            now = time.time_ns()
            for handler, threads in groups:
                if not handler.hits(threads, now):
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

    def _group(self, state: dict[str, Any]) -> list[tuple[HitHandler, list[dict[str, Any]]]]:
        """The stopped threads, by the handler of their breakpoint."""
        by_handler: dict[int, tuple[HitHandler, list[dict[str, Any]]]] = {}
        with self._lock:
            for th in state.get("Threads") or ():
                bp = th.get("breakPoint")
                handler = self._handlers.get(bp["id"]) if bp else None
                if handler is not None:
                    by_handler.setdefault(id(handler), (handler, []))[1].append(th)
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
        said = _dlv_said(self.output)[-3:]
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
                self.client.send("Command", {"name": "continue"})  # no reply: it runs on


class _Reply:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: Exception | None = None


# ---- starting ---------------------------------------------------------------------------
def attach(pid: int, *, workdir: Path, dlv: str = "") -> DlvServer:
    """``dlv attach PID`` on a unix socket in ``workdir``; the target is halted until
    ``start()``."""
    exe = find_dlv(dlv)
    sock = workdir / f"dlv-{pid}-{time.monotonic_ns() % 1_000_000}.sock"
    argv = [exe, "attach", str(pid), *_headless(sock)]
    env = {**os.environ, **DLV_ENV}
    return _launch(argv, label=f"pid {pid}", pid=pid, kill_on_close=False, env=env)


def exec_binary(
    binary: str | Path, args: list[str] | tuple[str, ...] = (), *, workdir: Path, dlv: str = ""
) -> DlvServer:
    """``dlv exec BINARY -- ARGS``: the program starts halted, before its first
    instruction, and is killed when the server closes."""
    exe = find_dlv(dlv)
    sock = workdir / f"dlv-exec-{time.monotonic_ns() % 1_000_000}.sock"
    argv = [exe, "exec", str(binary), *_headless(sock), "--", *args]
    return _launch(argv, label=Path(binary).name, pid=None, kill_on_close=True)


def connect(address: str) -> DlvServer:
    """An already running ``dlv --headless --api-version=2`` (e.g. on a remote host),
    its program halted (as after an attach) until ``start()``."""
    unreachable = (
        f"cannot reach a headless dlv at {address} ({{}}); start it with `dlv attach PID "
        "--headless --api-version=2 --accept-multiclient --listen=HOST:PORT` and check the "
        "address."
    )
    try:
        client = rpc.Client(address)
    except ValueError as e:
        raise GoleakError(
            f"--connect takes HOST:PORT or unix:/path of a headless dlv, not '{address}'."
        ) from e
    except rpc.DelveError as e:
        raise GoleakError(unreachable.format(e)) from e
    try:
        st = client.state(non_blocking=True)
        if st.exited:
            raise GoleakError(f"the program behind {address} has already exited; nothing to trace.")
        if st.running:  # another client let it run: most requests need it halted
            client.halt()
        server = DlvServer(client, label=address)
    except rpc.DelveError as e:
        client.close()
        raise GoleakError(unreachable.format(e)) from e
    except GoleakError:
        client.close()
        raise
    return _checked(server)


def _headless(sock: Path) -> list[str]:
    # --check-go-version=false: our own check (check_versions) says what to do instead.
    return ["--headless", "--api-version=2", f"--listen=unix:{sock}", "--check-go-version=false"]


def _launch(
    argv: list[str],
    *,
    label: str,
    pid: int | None,
    kill_on_close: bool,
    env: dict[str, str] | None = None,
) -> DlvServer:
    try:
        proc = process.spawn(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise GoleakError(f"could not start {argv[0]}: {e.strerror}; check the dlv path.") from e
    output: deque[str] = deque(maxlen=OUTPUT_LINES)
    try:
        address = _await_listen(proc, output)
        if address is None:
            raise _start_error(proc, output, pid, None)
        drainer = threading.Thread(
            target=_drain, args=(proc, output), name=f"goleak-dlv-out-{label}", daemon=True
        )
        drainer.start()
        try:
            client = rpc.Client(address, timeout=START_TIMEOUT)
            server = DlvServer(
                client, label=label, proc=proc, output=output, kill_on_close=kill_on_close
            )
        except rpc.DelveError:
            # dlv prints the address before it attaches; a failed attach closes the socket.
            raise _start_error(proc, output, pid, drainer) from None
    except BaseException:  # an interrupt too: no dlv may stay behind holding the program
        process.kill(proc)
        raise
    return _checked(server)


def _await_listen(proc: subprocess.Popen[bytes], output: deque[str]) -> str | None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + START_TIMEOUT
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buf += chunk
        *lines, buf = buf.split(b"\n")
        address = None
        for raw in lines:  # keep every line: a failed attach follows right after
            line = raw.decode("utf-8", "replace").rstrip()
            output.append(line)
            m = LISTEN_RE.search(line)
            address = address or (m.group(1) if m else None)
        if address is not None:
            if buf:
                output.append(buf.decode("utf-8", "replace"))
            return address
    process.kill(proc)
    output.append(f"(no 'API server listening' line within {START_TIMEOUT:.0f}s)")
    return None


def _drain(proc: subprocess.Popen[bytes], output: deque[str]) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        output.append(raw.decode("utf-8", "replace").rstrip())


def _start_error(
    proc: subprocess.Popen[bytes],
    output: deque[str],
    pid: int | None,
    drainer: threading.Thread | None,
) -> GoleakError:
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        process.kill(proc)
    if drainer is None:
        _drain(proc, output)
    else:
        drainer.join(5)  # it reads dlv's last words: let it finish
    text = " | ".join(_dlv_said(output)) or "no output"
    return GoleakError(attach_advice(pid, text) if pid is not None else _exec_advice(text))


def _dlv_said(output: Iterable[str]) -> list[str]:
    """What dlv printed, less its 'API server listening' line."""
    return [ln for ln in output if ln and not LISTEN_RE.search(ln)]


def attach_advice(pid: int, dlv_says: str) -> str:
    """One sentence on why ``dlv attach PID`` failed and what to do."""
    low = dlv_says.lower()
    if "no such process" in low:
        return f"process {pid} is gone (dlv: {dlv_says}); launch it again."
    if "already being debugged" in low:
        m = re.search(r"by pid (\d+)", dlv_says)
        who = _describe_pid(int(m.group(1))) if m else "another debugger"
        return (
            f"ptrace is not permitted: process {pid} is already being debugged by {who}; "
            "stop that debugger (or its %dlvtrace) and try again."
        )
    if "does not own" in low:
        owner = _owner(pid)
        return (
            f"ptrace is not permitted: process {pid} runs as {owner} and this kernel as "
            f"{_user(os.getuid())}; run the notebook as {owner}, or launch the program from "
            "the notebook with %golaunch."
        )
    if "ptrace_scope" in low or "operation not permitted" in low:
        scope = _ptrace_scope()
        if scope is not None and scope >= 3:
            return (
                f"ptrace is not permitted: kernel.yama.ptrace_scope={scope} forbids every attach "
                "until reboot; trace a program that dlv starts itself instead."
            )
        if scope:
            return (
                f"ptrace is not permitted: kernel.yama.ptrace_scope={scope} only lets a process "
                f"trace its own children and {pid} was not started by this notebook; launch it "
                "with %golaunch (it allows the notebook's debugger) or, as root, run "
                "`sysctl kernel.yama.ptrace_scope=0`."
            )
        return (
            f"ptrace is not permitted for process {pid} ({dlv_says}); in a container add "
            "--cap-add=SYS_PTRACE (and a seccomp profile that allows ptrace)."
        )
    return f"dlv could not attach to process {pid}: {dlv_says} — check that it is a Go program."


def _exec_advice(dlv_says: str) -> str:
    return f"dlv could not start the program: {dlv_says} — check the binary and its arguments."


def _checked(server: DlvServer) -> DlvServer:
    """Refuse a Delve that is too old for the target's Go; warn on an older Go."""
    problem, warning = check_versions(server.version)
    if problem:
        server.close()  # ours detaches; someone else's is left running, as it was
        raise GoleakError(problem)
    if warning:
        server.warnings.append(warning)
    return server


def check_versions(v: rpc.Version) -> tuple[str | None, str | None]:
    """(why this Delve cannot debug this target, a warning): from ``GetVersion``."""
    delve = _delve_version(v.delve_version)
    go = parse_go_version(v.target_go_version)
    lo, hi = parse_go_version("go" + v.min_go), parse_go_version("go" + v.max_go)
    if go is None or lo is None or hi is None:
        return None, None
    shown = f"go1.{go[0]}.{go[1]}"
    if go[0] > hi[0]:
        return (
            f"dlv {delve} is too old for this program: it knows Go up to 1.{hi[0]} and the "
            f"program was built with {shown}; install Delve v{DELVE_VERSION} or newer "
            "(scripts/setup.sh does) or point %config GoleakMagics.dlv at a newer dlv.",
            None,
        )
    if go[0] < lo[0]:
        return None, (
            f"dlv {delve} supports Go 1.{lo[0]} to 1.{hi[0]} and this program was built with "
            f"{shown}; tracing goes on, but rebuild with a newer Go if stacks look wrong."
        )
    return None, None


def _delve_version(text: str) -> str:
    m = re.search(r"(\d+\.\d+\.\d+)", text)
    return m.group(1) if m else text.strip() or "?"


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def _owner(pid: int) -> str:
    try:
        return _user(os.stat(f"/proc/{pid}").st_uid)
    except OSError:
        return "another user"


def _user(uid: int) -> str:
    import pwd

    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"


def _describe_pid(tid: int) -> str:
    """``pid 123 (dlv)`` for a task id (TracerPid names the tracing thread)."""
    try:
        status = Path(f"/proc/{tid}/status").read_text()
    except OSError:
        return f"pid {tid}"
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    pid = fields.get("Tgid", str(tid)).strip()
    return f"pid {pid} ({fields.get('Name', '?').strip()})"


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
