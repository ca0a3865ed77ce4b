"""dlv's lifecycle on real programs: attach, detach, connect, kernel death, bad input."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import goleak_magic
from goleak_magic import GoleakError, build
from goleak_magic.delve import rpc
from goleak_magic.delve import server as dlv
from goleak_magic.delve.tracer import Stacks, Trace
from goleak_magic.session import Session
from goleak_magic.tools import find_dlv, find_go

from .conftest import ARTIFACTS, HeadlessDlv, pid_alive, wait_for

pytestmark = pytest.mark.live

OLD_DELVE = "v1.24.2"  # knows Go up to 1.24
NONROOT = "goleak-nonroot"


def tracer_pid(pid: int) -> int:
    """The process (not the thread) tracing ``pid``; 0 when none."""
    status = Path(f"/proc/{pid}/status").read_text()
    tid = int(re.search(r"^TracerPid:\s*(\d+)", status, re.M).group(1))
    if tid == 0:
        return 0
    tracer = Path(f"/proc/{tid}/status").read_text()
    return int(re.search(r"^Tgid:\s*(\d+)", tracer, re.M).group(1))


def spawn_site_rows(rows: list[dict] | object) -> int:
    return sum(1 for r in rows if r["site_func"] == "main.main")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def old_dlv() -> str:
    """A real, older Delve, built once into test-artifacts/ (go install)."""
    gobin = ARTIFACTS / f"dlv-{OLD_DELVE}"
    exe = gobin / "dlv"
    if not exe.exists():
        env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-buildvcs=false"}
        subprocess.run(
            [find_go(), "install", f"github.com/go-delve/delve/cmd/dlv@{OLD_DELVE}"],
            env=env, check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    return str(exe)


def test_attach_detach_leaves_the_program_running(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "20"])
    with sess.delve(t.name) as d:
        assert d.proc is not None and tracer_pid(t.pid) == d.proc.pid
        gs = d.run_halted(lambda c: list(c.iter_goroutines(page_size=8)))
        assert sum(1 for g in gs if g.go_statement_loc.function == "main.main") == 20
        # attached and running: the program's schedtrace keeps streaming
        n = len(t.tables["sched"])
        wait_for(lambda: len(t.tables["sched"]) > n + 2, what="schedtrace while attached")
        assert d.version.api_version == 2 and d.warnings == []
    assert d.proc.poll() == 0  # Detach ended dlv
    assert tracer_pid(t.pid) == 0 and t.alive and t.state == "running"
    n = len(t.tables["sched"])
    wait_for(lambda: len(t.tables["sched"]) > n + 2, what="schedtrace after detach")


def test_kernel_death_leaves_no_dlv_and_no_program(tmp_path: Path) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, time
            from goleak_magic.session import Session
            s = Session()
            t = s.launch("example:spawn", args=["-n", "100000", "-every", "10ms"])
            h = s.trace(t.name)
            while len(t.tables["creations"]) < 3:
                time.sleep(0.05)
            print(json.dumps([t.pid, h.trace.server.proc.pid]), flush=True)
            time.sleep(600)
            """
        )
    )
    kernel = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert kernel.stdout is not None
        program, debugger = json.loads(kernel.stdout.readline())
        assert pid_alive(program) and pid_alive(debugger)
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait()
        wait_for(lambda: not pid_alive(debugger), what="dlv to die with the kernel")
        wait_for(lambda: not pid_alive(program), what="the program to die with the kernel")
    finally:
        kernel.kill()


def test_dlv_missing(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "1"])
    sess.settings.dlv = "/nonexistent/dlv"
    with pytest.raises(GoleakError, match="not an executable; fix the path"):
        sess.trace(t.name)
    assert tracer_pid(t.pid) == 0 and t.alive


def test_dlv_too_old_for_the_program(sess: Session, old_dlv: str) -> None:
    t = sess.launch("example:spawn", args=["-n", "1"])
    sess.settings.dlv = old_dlv
    with pytest.raises(GoleakError, match=r"dlv 1\.24\.2 is too old .* knows Go up to 1\.24"):
        sess.trace(t.name)
    # refused after the version check: detached again, the program runs on
    wait_for(lambda: tracer_pid(t.pid) == 0, what="the old dlv to detach")
    assert t.alive


def test_go_127_program(sess: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOTOOLCHAIN", "go1.27.3")
    t = sess.launch("example:spawn", args=["-n", "3"])
    assert t.go_version.startswith("go1.27")
    with sess.delve(t.name) as d:
        assert "go1.27" in d.version.target_go_version and d.warnings == []
        gs = d.run_halted(lambda c: list(c.iter_goroutines()))
    assert sum(1 for g in gs if g.go_statement_loc.function == "main.main") == 3


def test_program_not_running(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "1", "-hold", "400ms"])
    assert t.wait(20)
    with pytest.raises(GoleakError, match=r"is not running \(exited\); launch it again"):
        sess.trace(t.name)


def test_attach_refused_when_already_debugged(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "1"])
    other = Session()  # e.g. a second notebook on the same machine
    try:
        outsider = other.attach(t.pid)
        with sess.delve(t.name) as d:
            assert d.proc is not None
            with pytest.raises(
                GoleakError,
                match=rf"ptrace is not permitted: process {t.pid} is already being debugged "
                rf"by pid {d.proc.pid} \(dlv\); stop that debugger",
            ):
                other.trace(outsider.name)
    finally:
        other.close()


def test_stopping_the_program_detaches_first(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "100000", "-every", "20ms"])
    h = sess.trace(t.name)
    wait_for(lambda: len(t.tables["creations"]) >= 3, what="a few creations")
    debugger = h.trace.server.proc
    sess.stop(t.name)
    assert h.wait(10)
    assert h.trace.state == "stopped" and h.trace.reason == "the target was stopped"
    assert debugger.poll() == 0 and t.state == "stopped"
    assert t.exit_status is not None and t.exit_status != -signal.SIGTRAP


def test_connect_to_a_headless_dlv(sess: Session, headless_dlv: Callable[..., HeadlessDlv]) -> None:
    addr, remote = headless_dlv("-n", "100000", "-every", "20ms")
    t = sess.connect_delve(addr, name="remote")
    program = t.remote_pid
    assert t.state == "remote" and t.pid is None
    h = sess.trace("remote", stack=4)
    wait_for(lambda: spawn_site_rows(t.creations.to_dict("records")) >= 3, what="creations")
    h.stop()
    assert h.trace.state == "stopped"
    assert all(len(s) <= 4 for s in t.creations["stack"])
    sess.stop("remote")  # lets go of someone else's dlv: it keeps serving, the program runs
    assert remote.poll() is None and pid_alive(program)
    with rpc.Client(addr) as c:
        assert c.state(non_blocking=True).running
        assert not c.halt(timeout=20).running
        assert not [b for b in c.list_breakpoints() if b.id > 0]


def test_connect_to_nothing(sess: Session, tmp_path: Path) -> None:
    with pytest.raises(GoleakError, match="cannot reach a headless dlv at unix:"):
        sess.connect_delve(f"unix:{tmp_path}/none.sock")
    with pytest.raises(GoleakError, match="HOST:PORT or unix:/path"):
        sess.connect_delve("nohost")


NONROOT_SCRIPT = """
import json, os, sys, tempfile, time, types
from pathlib import Path

pkg_dir, binary, foreign_pid, dlv_path = sys.argv[1:5]
# This python may lack pandas (and orjson: the client falls back to json); load the
# pandas-free modules without the package __init__.
pkg = types.ModuleType("goleak_magic")
pkg.__path__ = [pkg_dir]
sys.modules["goleak_magic"] = pkg
from goleak_magic import process
from goleak_magic.delve import server
from goleak_magic.delve.tracer import Stacks, Trace
from goleak_magic.errors import GoleakError

out = {"uid": os.getuid()}
workdir = Path(tempfile.mkdtemp())
program = process.spawn([binary, "-n", "100000", "-every", "20ms"])  # as %golaunch does
rows = []
srv = server.attach(program.pid, workdir=workdir, dlv=dlv_path).acquire()
trace = Trace(srv, rows.extend, stacks=Stacks()).start()
deadline = time.monotonic() + 30
while sum(r["site_func"] == "main.main" for r in rows) < 5 and time.monotonic() < deadline:
    time.sleep(0.05)
trace.stop()
out["events"] = sum(r["site_func"] == "main.main" for r in rows)
out["new_goids"] = sum(r["new_goid"] is not None for r in rows)
out["state"] = trace.state
out["dlv_exit"] = srv.proc.poll()
status = Path(f"/proc/{program.pid}/status").read_text()
out["tracer_after"] = int(status.split("TracerPid:")[1].split()[0])
out["program_alive"] = program.poll() is None
try:
    server.attach(int(foreign_pid), workdir=workdir, dlv=dlv_path)
except GoleakError as e:
    out["refused"] = str(e)
process.kill(program)
print(json.dumps(out))
"""


@pytest.fixture
def nonroot_user() -> Iterator[pwd.struct_passwd | None]:
    """A non-root account to run as (None when the tests already run as non-root)."""
    if os.getuid() != 0:
        yield None
        return
    try:
        pwd.getpwnam(NONROOT)
    except KeyError:
        subprocess.run(["useradd", "--create-home", NONROOT], check=True)
    yield pwd.getpwnam(NONROOT)


def test_attach_as_a_non_root_user(sess: Session, nonroot_user: pwd.struct_passwd | None) -> None:
    # Everything the user runs must be readable by it: copy the package and dlv out.
    share = Path(tempfile.mkdtemp(prefix="goleak-nonroot-"))
    try:
        share.chmod(0o755)
        pkg = share / "goleak_magic"
        shutil.copytree(Path(goleak_magic.__file__).parent, pkg,
                        ignore=shutil.ignore_patterns("__pycache__", "examples"))  # fmt: skip
        dlv_copy = share / "dlv"
        shutil.copy(find_dlv(), dlv_copy)
        binary = build.build("example:spawn", share, go=find_go()).binary
        (share / "run.py").write_text(NONROOT_SCRIPT)
        for p in [share, *share.rglob("*")]:
            p.chmod(0o755 if p.is_dir() or os.access(p, os.X_OK) else 0o644)
        if nonroot_user is None:
            foreign = 1  # init: another user's process
            argv = [sys.executable]
        else:
            foreign = sess.launch("example:spawn", args=["-n", "1"]).pid  # root's program
            env = ["env", "-i", f"HOME={nonroot_user.pw_dir}", "PATH=/usr/bin:/bin"]
            argv = ["runuser", "-u", NONROOT, "--", *env, "/usr/bin/python3"]
        run = subprocess.run(
            [*argv, str(share / "run.py"), str(pkg), str(binary), str(foreign), str(dlv_copy)],
            capture_output=True, text=True, timeout=120, cwd=share,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout.strip().splitlines()[-1])
        assert out["uid"] != 0
        assert out["events"] >= 5 and out["new_goids"] >= out["events"]
        assert out["state"] == "stopped" and out["dlv_exit"] == 0
        assert out["tracer_after"] == 0 and out["program_alive"]
        owner = pwd.getpwuid(os.stat(f"/proc/{foreign}").st_uid).pw_name
        assert out["refused"].startswith(
            f"ptrace is not permitted: process {foreign} runs as user {owner} and this kernel "
            f"as user {pwd.getpwuid(out['uid']).pw_name}; run the notebook as user {owner}"
        )
    finally:
        shutil.rmtree(share, ignore_errors=True)


def test_oldest_supported_go_is_traced_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOTOOLCHAIN", "go1.22.12")  # older than this Delve supports
    binary = build.build("example:spawn", tmp_path, go=find_go()).binary
    server = dlv.exec_binary(binary, ["-n", "10"], workdir=tmp_path).acquire()
    assert server.warnings == [
        "dlv 1.27.2 supports Go 1.25 to 1.27 and this program was built with go1.22.12; "
        "tracing goes on, but rebuild with a newer Go if stacks look wrong."
    ]
    rows: list[dict] = []
    trace = Trace(server, rows.extend, stacks=Stacks()).start()
    try:
        wait_for(lambda: spawn_site_rows(rows) >= 10, what="10 creations")
    finally:
        trace.stop()
    assert trace.warnings == server.warnings
    made = [r for r in rows if r["site_func"] == "main.main"]
    assert len(made) == 10 and all(r["new_goid"] is not None for r in made)
