"""%gotrace's layers: the agent's trace endpoints, the tracecv converter and the loader,
on real Go programs (Go 1.26 and 1.27)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from goleak_magic import build, exectrace, process
from goleak_magic.errors import GoleakError
from goleak_magic.exectrace import FlightUnsupported
from goleak_magic.tools import find_go

from .conftest import PROGRAMS, wait_for
from .trace_support import go_line, workers_test_trace

EXAMPLES = build.examples_dir()


class Running(NamedTuple):
    proc: subprocess.Popen[bytes]
    sock: Path
    lines: Callable[[], list[str]]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Build ``spec`` with the agent and run it with ``args``; every program is killed after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(spec: str, *args: str, agent: bool = True) -> Running:
        out = tmp_path / f"build-{len(started)}"
        out.mkdir()
        binary = build.build(spec, out, go=find_go(), agent=agent).binary
        sock = Path(tempfile.mkdtemp(prefix="gotrace-")) / "agent.sock"
        log = out / "stdout"
        with open(log, "wb") as f:
            proc = process.spawn(
                [str(binary), *args], env={**os.environ, "GOLEAK_MAGIC_AGENT": str(sock)},
                stdout=f, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        started.append(proc)
        if agent:
            wait_for(sock.exists, what="the agent's socket")
        return Running(proc, sock, lambda: log.read_text().splitlines())

    yield start
    for p in started:
        p.kill()
        p.wait()


def test_spawn_trace_has_exactly_n_creations_at_the_go_statement(
    run: Callable[..., Running], toolchain: str, tmp_path: Path
) -> None:
    n, delay = 3000, 4.0
    t = run("example:spawn", "-n", str(n), "-delay", f"{delay}s")
    cap = exectrace.stream(t.sock, save=tmp_path / "spawn.trace")
    # The trace must be on before the program's delay ends, else creations are missed.
    assert (cap.started_ns / 1e9) - os.stat(f"/proc/{t.proc.pid}").st_mtime < delay
    wait_for(lambda: any(ln.startswith("created=") for ln in t.lines()), what="spawn's report")
    m = exectrace.metrics(t.sock)
    assert m["goroutines"] >= n and m["waiting"] >= n and m["created"] >= n
    tr = cap.stop().result(timeout=60)
    line = go_line(EXAMPLES / "spawn" / "main.go", r"go park\(ch\)")
    c = tr.creations
    at = c[c["site"].str.endswith(f"spawn/main.go:{line}")]
    assert len(at) == n and at["new_goid"].nunique() == n
    assert (at["site_func"] == "main.main").all() and (at["source"] == "trace").all()
    assert not c["site_file"].str.contains("zz_goleak_magic_agent").any()  # its own left out
    assert c["time"].is_monotonic_increasing and c["seq"].tolist() == list(range(len(c)))
    # every one of them blocked on its channel, and the stack says where
    tr_ = tr.transitions
    blocks = tr_[(tr_["to_state"] == "waiting") & (tr_["site"] == at["site"].iloc[0])]
    assert set(blocks["goid"]) == set(at["new_goid"])
    assert set(blocks["reason"]) == {"chan receive"}
    assert any("main.park" in fr for fr in tr.stack(int(blocks["stack_id"].iloc[0])))
    assert tr.broken is None and tr.summary["clock"] == "snapshot"
    # the saved raw trace converts to the same table
    again = exectrace.from_file(tmp_path / "spawn.trace")
    assert again.creations.drop(columns="stack").equals(c.drop(columns="stack"))


def test_truncated_trace_keeps_the_whole_generations(
    run: Callable[..., Running], tmp_path: Path
) -> None:
    t = run("example:spawn", "-n", "200", "-every", "10ms")
    raw = tmp_path / "whole.trace"
    cap = exectrace.stream(t.sock, seconds=2.5, save=raw)
    whole = cap.result(timeout=60)
    assert whole.broken is None and whole.summary["generations"] >= 3
    data = raw.read_bytes()
    cut = tmp_path / "cut.trace"
    cut.write_bytes(data[: len(data) * 2 // 3])
    progress: list[dict[str, int]] = []
    part = exectrace.from_file(cut, progress=progress.append)
    assert part.broken is not None and "everything before the break is kept" in part.broken
    assert 0 < part.summary["generations"] < whole.summary["generations"]
    k = len(part.creations)
    assert 0 < k < len(whole.creations)
    cols = ["time", "goid", "new_goid", "site"]
    assert part.creations[cols].equals(whole.creations[cols].head(k))


def test_go_test_trace_file(tmp_path: Path, toolchain: str) -> None:
    pkg, out = workers_test_trace(tmp_path)
    tr = exectrace.from_file(out)
    line = go_line(pkg / "w_test.go", "// the workers")
    at = tr.creations[tr.creations["site"] == f"tracedtest.TestWorkers {pkg}/w_test.go:{line}"]
    assert len(at) == 7 and tr.broken is None
    ends = tr.transitions[tr.transitions["to_state"] == "dead"]
    assert set(at["new_goid"]) <= set(ends["goid"])  # all seven ended
    assert (ends[ends["goid"].isin(at["new_goid"])]["site"] == at["site"].iloc[0]).all()


def test_pprof_trace_of_a_live_service(run: Callable[..., Running], toolchain: str) -> None:
    t = run(str(PROGRAMS / "pprofserver"), "-n", "5", agent=False)
    line = str(
        wait_for(
            lambda: next((ln for ln in t.lines() if ln.startswith("pprof=")), None),
            what="the pprof address",
        )
    )
    base = line.removeprefix("pprof=")
    stop = threading.Event()

    def requests() -> None:  # each connection is a goroutine the trace sees created
        while not stop.is_set():
            urllib.request.urlopen(base.replace("/debug/pprof/", "/hello"), timeout=10).read()

    load = threading.Thread(target=requests)
    load.start()
    cap = exectrace.from_url(base, seconds=1)
    try:
        cap.wait(timeout=60)
    finally:
        stop.set()
        load.join()
    tr = cap.result()
    serve = tr.creations[tr.creations["site_func"] == "net/http.(*Server).Serve"]
    assert len(serve) >= 1 and tr.broken is None


def test_flight_recorder_frozen_on_a_burst_holds_the_burst_site_first(
    run: Callable[..., Running], toolchain: str
) -> None:
    t = run("example:burstyservice", "-rate", "2", "-burst", "300", "-work", "100ms")
    exectrace.flight_start(t.sock, min_age=2.0)
    with pytest.raises(GoleakError, match="already running"):
        exectrace.flight_start(t.sock)
    # a burst is on: hundreds of request goroutines alive at once
    wait_for(lambda: exectrace.metrics(t.sock)["goroutines"] > 250, what="a burst")
    tr = exectrace.flight_freeze(t.sock)
    exectrace.flight_stop(t.sock)
    line = go_line(EXAMPLES / "burstyservice" / "main.go", r"go func\(id int64\) \{")
    top = tr.creations["site"].value_counts().index[0]
    assert top.endswith(f"burstyservice/main.go:{line}") and top.startswith("main.serveBurst")
    assert tr.creations["site"].value_counts().iloc[0] >= 300


def test_bad_files_get_one_sentence(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.trace"
    garbage.write_bytes(b"this is a goroutine dump, not a trace\n" * 10)
    with pytest.raises(GoleakError, match="is not a Go execution trace") as e:
        exectrace.from_file(garbage)
    assert "\n" not in str(e.value)
    newer = tmp_path / "newer.trace"
    newer.write_bytes(b"go 1.99 trace\x00\x00\x00" + bytes(64))
    with pytest.raises(GoleakError, match="does not read") as e:
        exectrace.from_file(newer)
    assert "\n" not in str(e.value)
    with pytest.raises(GoleakError, match="is not a file"):
        exectrace.from_file(tmp_path / "missing.trace")


def test_no_agent_and_old_go(run: Callable[..., Running], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GoleakError, match="--url, --file or %dlvtrace"):
        exectrace.stream(Path(tempfile.mkdtemp()) / "none.sock")
    monkeypatch.setenv("GOTOOLCHAIN", "go1.22.12")  # before the flight recorder
    t = run("example:spawn", "-n", "10", "-every", "100ms")
    with pytest.raises(FlightUnsupported, match=r"needs Go 1\.25 or newer.*stream the trace in"):
        exectrace.flight_start(t.sock)
    tr = exectrace.stream(t.sock, seconds=1.5).result(timeout=60)
    assert tr.summary["clock"] == "anchor" and len(tr.creations) >= 1
    assert set(exectrace.metrics(t.sock)) >= {"time", "goroutines"}


def test_tables_stay_bounded_and_count_what_they_let_go(
    run: Callable[..., Running], tmp_path: Path
) -> None:
    n = 140_000  # three of the converter's 65536-row chunks
    t = run("example:spawn", "-n", str(n), "-delay", "3s")
    raw = tmp_path / "big.trace"
    cap = exectrace.stream(t.sock, save=raw)
    wait_for(lambda: any(ln.startswith("created=") for ln in t.lines()), what="spawn's report")
    whole = cap.stop().result(timeout=120)
    seen: list[dict[str, int]] = []
    part = exectrace.from_file(raw, max_rows=n // 2, progress=seen.append)
    kept, dropped = len(part.creations), part.summary["dropped_creations"]
    agents = whole.summary["creations"] - len(whole.creations)  # the agent's, left out
    assert len(whole.creations) >= n
    assert kept + dropped <= whole.summary["creations"] <= kept + dropped + agents
    assert 0 < kept <= n // 2 and dropped > 0
    # the newest rows are the ones kept, numbered as they came
    assert part.creations["new_goid"].tolist() == whole.creations["new_goid"].tail(kept).tolist()
    assert part.creations["seq"].iloc[0] == dropped
    assert seen and seen[-1]["events"] <= part.summary["events"]  # progress was reported
