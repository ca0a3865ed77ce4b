"""Process hygiene for everything we start: own session, parent-death signal, ptrace
permission for our own debugger, and a stop that always reaps.

Children start in their own session so a notebook interrupt (SIGINT to the kernel's
process group) does not reach them, and with ``PR_SET_PDEATHSIG=SIGKILL`` so they die
with the kernel even when it is SIGKILLed. ``PR_SET_PTRACER`` names the kernel as an
allowed tracer, so a ``dlv attach`` started by the kernel works under Yama
``ptrace_scope=1`` (Ubuntu's default, e.g. on Binder) without root.

The parent-death signal fires when the *thread* that forked exits, so start children
from a long-lived thread (the kernel's main thread), never from a short-lived worker.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
from collections.abc import Callable, Sequence

PR_SET_PDEATHSIG = 1
PR_SET_PTRACER = 0x59616D61
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _child_setup(parent: int) -> Callable[[], None]:
    def setup() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _prctl(PR_SET_PTRACER, parent, 0, 0, 0)  # fails harmlessly without Yama
        if os.getppid() != parent:  # the parent died before the prctl took hold
            os._exit(1)

    return setup


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached from our terminal session, tied to our life."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_child_setup(os.getpid()),
    )
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            # A bigger pipe absorbs bursts (a scheddetail tick is MBs) so the child never
            # stalls on a write while our reader is busy.
            try:
                fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass
    return proc


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the child's whole process group (it leads its own session)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def terminate(proc: subprocess.Popen[bytes], timeout: float = 3.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; always reaps. Returns the status."""
    if proc.poll() is None:
        signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    return kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        signal_group(proc, signal.SIGKILL)
    return proc.wait()


def describe_status(status: int | None) -> str:
    """``exit 0``, ``exit 2``, ``killed by SIGKILL`` — as a Go engineer reads it."""
    if status is None:
        return "unknown"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit {status}"
