"""The pprof agent that %golaunch compiles in: real builds, real programs."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from goleak_magic import agent
from goleak_magic.agent import AgentClient
from goleak_magic.session import Session
from goleak_magic.target import Target

from .conftest import PROGRAMS, wait_for


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root``: mode and content hash."""
    return {
        str(p.relative_to(root)): (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def pprof_url(t: Target) -> str:
    line = wait_for(
        lambda: next((ln for ln in t.log_lines(10, "stdout") if ln.startswith("pprof=")), None),
        what="the pprof address",
    )
    return str(line).removeprefix("pprof=")


def test_source_tree_unchanged_and_names_do_not_clash(
    sess: Session, tmp_path: Path, toolchain: str
) -> None:
    src = tmp_path / "clash"
    shutil.copytree(PROGRAMS / "clash", src)
    before = tree(src)
    t = sess.launch(str(src))
    assert t.built is not None and t.built.agent
    assert tree(src) == before  # byte for byte, no file added, none touched
    # The program's own identifiers, its init and its file named like the agent's all work.
    out = wait_for(lambda: t.log_lines(5, "stdout"), what="output")
    assert out == ["clash mine 1 [mine] 2 {3} map[a:1] 112 true 4 5 6 true user file kept"]
    info = AgentClient(t.agent_socket).info()
    assert info["pid"] == t.pid and info["goroutineleak"] is True  # 1.26 got the GOEXPERIMENT
    assert info["go"].startswith("go1.27" if toolchain != "go1.26" else "go1.26")


def test_agent_socket_is_private_and_the_program_unchanged(sess: Session) -> None:
    t = sess.launch(str(PROGRAMS / "pprofserver"), args=["-n", "5"])
    url = pprof_url(t)
    sock = Path(t.agent_socket)
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert sock.parent == sess.workdir and stat.S_IMODE(sess.workdir.stat().st_mode) == 0o700
    # The variable that named the socket is gone from the program's environment.
    assert 'agent_env=""' in t.log_lines(10, "stdout")
    # Nothing new on the program's own server (its DefaultServeMux): the agent's paths
    # are served on the private socket only.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("/debug/pprof/", "/goleak/dump"), timeout=10)
    assert e.value.code == 404
    resp = AgentClient(sock).open("/goleak/dump?leak=1", 10)
    assert resp.status == 200 and int(resp.getheader("X-Goleak-Pause-Ns")) > 0
    assert resp.read().startswith(b"goroutine ")
    # The agent prints nothing: the program's output is its own.
    assert all(ln.startswith(("agent_env=", "pprof=")) for ln in t.log_lines(50, "stdout"))
    assert not [ln for ln in t.log_lines(50, "stderr") if "goleak" in ln.lower()]


def test_no_agent_and_prebuilt_binaries_have_none(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "5"], agent=False)
    assert t.built is not None and not t.built.agent and t.agent_socket is None
    assert not list(sess.workdir.glob("*.sock"))
    again = sess.launch(str(t.binary), args=["-n", "5"])  # a built binary: no rebuild
    assert again.built is not None and not again.built.agent
    assert again.agent_socket is None


def test_go_file_and_test_binary_builds_get_the_agent(sess: Session, tmp_path: Path) -> None:
    src = tmp_path / "pkg"
    shutil.copytree(PROGRAMS / "pprofserver", src)
    t = sess.launch(str(src / "main.go"), args=["-n", "3"])  # a file-list build
    assert t.built is not None and t.built.kind == "file" and t.built.agent
    assert AgentClient(t.agent_socket).info()["pid"] == t.pid
    (src / "x_test.go").write_text(
        'package main\n\nimport "testing"\n\nfunc TestPark(t *testing.T) { select {} }\n'
    )
    before = tree(src)
    tt = sess.launch(str(src), test=True, args=["-test.run", "TestPark"])
    assert tt.built is not None and tt.built.kind == "test" and tt.built.agent
    assert AgentClient(tt.agent_socket).info()["pid"] == tt.pid
    assert tree(src) == before


def test_agent_keeps_no_goroutine_and_stays_out_of_the_rows(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "20"])
    out = wait_for(lambda: t.log_lines(5, "stdout"), what="spawn's report")
    # runtime.NumGoroutine, as the program sees it: its 20 and main, nothing of ours.
    assert str(out[0]).endswith(" goroutines=21")
    client = AgentClient(t.agent_socket)
    idle = http.client.HTTPConnection("localhost")  # an extra idle keep-alive connection
    idle.sock = socket.socket(socket.AF_UNIX)
    idle.sock.connect(t.agent_socket)
    idle.request("GET", "/")
    idle.getresponse().read()
    raw = client.open("/debug/pprof/goroutine?debug=2", 10).read().decode()
    assert "zz_goleak_magic_agent" in raw  # the agent is in the raw dump...
    snap = sess.snapshot(t.name, source="agent")
    g = snap.frame
    assert len(g) == 21 or len(g) == 22  # ...but not in the rows: 20 parked, main, signal
    assert (g["created_at"].str.endswith("spawn/main.go:38")).sum() == 20
    assert not g["top"].str.contains("net/http|zz_goleak", regex=True).any()
    idle.close()


def test_overlay_never_writes_into_the_package(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / f"{agent.FILE_STEM}.go").write_text("package main\n")
    spec, names = agent.overlay(pkg, tmp_path, "mypkg")
    assert f"{agent.FILE_STEM}2.go" in names and all(n.endswith("2.go") for n in names)
    assert sorted(os.listdir(pkg)) == [f"{agent.FILE_STEM}.go"]
    for name in names:
        backing = Path(json.loads(spec.read_text())["Replace"][str(pkg / name)])
        assert "\npackage mypkg\n" in backing.read_text()
