"""Starting dlv: ``dlv attach`` or ``dlv exec`` headless on a private unix socket, or a
connection to one already running; Delve's version checked against the target's Go; and,
when it fails, one sentence on why (from dlv's words and ``/proc``) and what to do.

dlv starts through ``process.spawn`` (own session, dies with the kernel). What comes back
is a ``Dlv``, its target halted: ``server.DlvServer`` runs the session from there.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import process
from ..errors import GoleakError
from ..tools import DELVE_VERSION, find_dlv, parse_go_version
from . import api, rpc

START_TIMEOUT = 30.0  # dlv reads the binary's DWARF before it answers
OUTPUT_LINES = 200
LISTEN_RE = re.compile(r"API server listening at: (\S+)")
# One P for an attaching dlv: every ptrace call is handed to one locked OS thread, and
# with more Ps each handoff also wakes another P's thread (see bench/RESULTS.md). Not for
# dlv exec, whose program would inherit it.
DLV_ENV = {"GOMAXPROCS": "1"}


@dataclass(eq=False)
class Dlv:
    """A connected Delve, its target halted."""

    client: rpc.Client
    label: str  # "pid 1234" / the remote address, for messages
    version: api.Version
    pid: int  # the target's
    proc: subprocess.Popen[bytes] | None = None  # our dlv; None for someone else's
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    kill_on_close: bool = False  # dlv exec: the target is dlv's, it goes too


def attach(pid: int, *, workdir: Path, dlv: str = "") -> Dlv:
    """``dlv attach PID`` on a unix socket in ``workdir``; the target stays halted."""
    exe = find_dlv(dlv)
    sock = workdir / f"dlv-{pid}-{time.monotonic_ns() % 1_000_000}.sock"
    argv = [exe, "attach", str(pid), *_headless(sock)]
    env = {**os.environ, **DLV_ENV}
    return _launch(argv, label=f"pid {pid}", pid=pid, kill_on_close=False, env=env)


def exec_binary(
    binary: str | Path, args: list[str] | tuple[str, ...] = (), *, workdir: Path, dlv: str = ""
) -> Dlv:
    """``dlv exec BINARY -- ARGS``: the program starts halted, before its first
    instruction, and is killed when the session closes."""
    exe = find_dlv(dlv)
    sock = workdir / f"dlv-exec-{time.monotonic_ns() % 1_000_000}.sock"
    argv = [exe, "exec", str(binary), *_headless(sock), "--", *args]
    return _launch(argv, label=Path(binary).name, pid=None, kill_on_close=True)


def connect(address: str) -> Dlv:
    """An already running ``dlv --headless --api-version=2`` (e.g. on a remote host),
    its program halted (as after an attach)."""
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
        return Dlv(client, address, client.get_version(), client.process_pid())
    except rpc.DelveError as e:
        client.close()
        raise GoleakError(unreachable.format(e)) from e
    except GoleakError:
        client.close()
        raise


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
) -> Dlv:
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
            version, target_pid = client.get_version(), client.process_pid()
        except rpc.DelveError:
            # dlv prints the address before it attaches; a failed attach closes the socket.
            raise _start_error(proc, output, pid, drainer) from None
    except BaseException:  # an interrupt too: no dlv may stay behind holding the program
        process.kill(proc)
        raise
    return Dlv(client, label, version, target_pid, proc, output, kill_on_close)


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
    text = " | ".join(dlv_said(output)) or "no output"
    return GoleakError(attach_advice(pid, text) if pid is not None else _exec_advice(text))


def dlv_said(output: Iterable[str]) -> list[str]:
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


def check_versions(v: api.Version) -> tuple[str | None, str | None]:
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
