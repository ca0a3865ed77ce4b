"""%dlvtrace on real programs: every creation with its stack, the per-site summary, and
every way a trace can end — through a real IPython shell where a user would type it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import goleak_magic
from goleak_magic import build, creations, process
from goleak_magic.build import examples_dir
from goleak_magic.delve import server as dlv
from goleak_magic.delve import tracer
from goleak_magic.delve.tracer import Stacks, Trace
from goleak_magic.tools import find_go

from .conftest import HeadlessDlv, pid_alive, wait_for
from .test_delve_server import tracer_pid
from .trace_support import go_line

SPAWN_LINE = go_line(examples_dir() / "spawn" / "main.go", r"^\s*go park\(ch\)$")
# the handler's, one tab in
LEAK_LINE = go_line(examples_dir() / "leakyservice" / "main.go", r"^\tgo func\(\) \{$")


def spawn_site() -> str:
    return f"main.main {examples_dir() / 'spawn' / 'main.go'}:{SPAWN_LINE}"


def at_spawn_site(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["site"] == spawn_site()]


# ---- the tracer from the program's first instruction (dlv exec) -------------------------
def test_exactly_n_creations_and_new_ids_map_back(toolchain: str, tmp_path: Path) -> None:
    n = 60
    binary = build.build("example:spawn", tmp_path, go=find_go()).binary
    server = dlv.exec_binary(binary, ["-n", str(n)], workdir=tmp_path).acquire()
    rows: list[dict] = []
    trace = Trace(server, rows.extend, stacks=Stacks(), depth=8).start()
    try:
        wait_for(lambda: sum(r["site"] == spawn_site() for r in rows) >= n, what="n creations")
        listing = server.run_halted(lambda c: list(c.iter_goroutines()))
        recorded = len(rows)
    finally:
        trace.stop()
    assert trace.state == "stopped" and server.proc is not None and server.proc.poll() is not None
    df = pd.DataFrame(rows[:recorded])
    mine = at_spawn_site(df)
    assert len(mine) == n
    assert (mine["goid"] == 1).all() and (~mine["runtime"]).all()
    assert df["new_goid"].notna().all() and df["new_goid"].is_unique
    # The rest are the runtime's own (flagged) and signal.Notify's watcher (stdlib).
    rest = df[df["site"] != spawn_site()]
    assert rest["runtime"].sum() >= 3
    assert (rest["runtime"] == rest["site_func"].str.startswith("runtime.")).all()
    assert not rest["site_func"].str.startswith("main.").any()
    # Stacks: the go statement first, then its callers; at most --stack frames.
    for stack in mine["stack"]:
        assert stack[0] == spawn_site() and stack[1].startswith("runtime.main ")
    assert df["stack"].map(len).max() <= 8
    assert df.groupby("stack_id")["stack"].nunique().max() == 1
    # Traced from the first instruction: every goroutine alive now has its creation event,
    # at the go statement Delve's goroutine list names for it.
    by_new = df.set_index("new_goid")
    for g in listing:
        event = by_new.loc[g.id]
        if g.go_statement_loc.pc:
            loc = g.go_statement_loc
            assert (event.site_func, event.site_file, event.site_line) == (
                loc.function, loc.file, loc.line,
            )  # fmt: skip
    assert sum(g.go_statement_loc.function == "main.main" for g in listing) == n


# ---- the done-when: a leaky service's top site -------------------------------------------
def test_leakyservice_top_site_is_the_leaking_go_statement(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new creator goroutine per request grows Delve's per-goroutine hit counts: make the
    # tracepoint be set again often, to show that loses nothing.
    monkeypatch.setattr(tracer, "HITCOUNT_REFRESH", 4)
    # Every handler goroutine leaks: the query (2 x 1 s) always loses to the timeout, even
    # when a loaded machine and the trace's stops delay the handler by most of a second.
    ip.run_line_magic(
        "golaunch", "example:leakyservice --name leaky -- -rate 10 -slow 1 -timeout 1s"
    )
    s = goleak_magic.session()
    leak_site = f"main.handler {examples_dir() / 'leakyservice' / 'main.go'}:{LEAK_LINE}"
    rows = ip.run_line_magic("dlvtrace", "leaky --duration 3 --wait")
    trace = creations.latest(s.targets["leaky"]).trace
    assert trace.state == "stopped" and trace.reason == "--duration 3s is over"
    sites = ip.run_line_magic("dlvtrace", "--sites leaky")
    top = sites.iloc[0]
    assert top["site"] == leak_site and top["site_line"] == LEAK_LINE
    assert top["site_file"].endswith("examples/leakyservice/main.go")
    # Ground truth from Delve's goroutine lists taken as the tracepoint went in and came
    # out (not from the tracepoint): that go statement's goroutines, new since the start.
    assert trace.live_before is not None and trace.live is not None
    created = {g for g, site in trace.live.items() if site == leak_site} - set(trace.live_before)
    assert len(created) >= 10
    assert top["count"] == len(created) and top["alive"] == len(created)
    assert trace.refreshed >= 3
    assert set(rows.loc[rows["site"] == leak_site, "new_goid"]) == created
    assert (sites["count"] >= 1).all() and sites["rate_per_s"].iloc[0] > 0
    assert top["stacks"] >= 1 and top["example_stack"][0] == leak_site


# ---- the %golaunch flow: attach to a running program --------------------------------------
def test_background_trace_of_a_launched_program(ip: InteractiveShell) -> None:
    n = 40
    t = ip.run_line_magic("golaunch", f"example:spawn --name sp -- -n {n} -delay 5s")
    handle = ip.run_line_magic("dlvtrace", "sp -o traced")
    assert handle.running and "traced" not in ip.user_ns
    # Each creation is recorded while the program is stopped at it: once it reports, all are in.
    wait_for(lambda: any("created=" in ln for ln in t.log_lines(5)), what="spawn's report")
    assert len(at_spawn_site(t.creations)) == n, "the program began before dlv was attached"
    rows = ip.run_line_magic("dlvtrace", "--stop sp")
    assert not handle.running and handle.trace.state == "stopped"
    wait_for(lambda: "traced" in ip.user_ns, what="-o to store the rows")
    assert len(ip.user_ns["traced"]) == len(rows) >= n
    assert tracer_pid(t.pid) == 0 and t.alive
    sites = ip.run_line_magic("dlvtrace", "--sites sp")
    assert sites.iloc[0]["site"] == spawn_site()
    assert sites.iloc[0]["count"] == n and sites.iloc[0]["alive"] == n
    # the schedtrace still streams after the trace
    seen = len(t.tables["sched"])
    wait_for(lambda: len(t.tables["sched"]) > seen + 2, what="schedtrace after the trace")


def test_max_events_and_interrupting_wait(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 100000 -every 20ms")
    rows = ip.run_line_magic("dlvtrace", "sp --max-events 5 --wait")
    assert len(rows) == 5 and list(rows["seq"]) == list(range(5))
    assert creations.latest(t).trace.state == "done"
    assert tracer_pid(t.pid) == 0

    def interrupt() -> None:
        wait_for(lambda: len(t.tables["creations"]) >= 8, what="3 more creations")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    rows = ip.run_line_magic("dlvtrace", "sp --wait")
    trace = creations.latest(t).trace
    assert trace.state == "stopped" and trace.reason == "interrupted"
    assert len(rows) >= 3 and rows["seq"].min() == 5  # seq goes on across traces
    assert t.alive and tracer_pid(t.pid) == 0


def test_func_traces_calls_with_arguments(ip: InteractiveShell) -> None:
    ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 100000 -every 20ms")
    rows = ip.run_line_magic("dlvtrace", r"sp --func 'main\.park$' --max-events 3 --wait")
    assert list(rows.columns) == list(goleak_magic.tables.SCHEMAS["calls"])
    assert len(rows) == 3 and (rows["func"] == "main.park").all()
    assert all(args == ("ch=chan struct {} 0/0",) for args in rows["args"])
    assert rows["caller"].str.endswith(f"spawn/main.go:{SPAWN_LINE}").all()
    assert rows["stack"].map(lambda st: st[0].startswith("main.park ")).all()


# ---- bad input ----------------------------------------------------------------------------
def test_bad_func_regexps(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 3")
    with pytest.raises(UsageError, match=r"--func 'main\\\.nothere\$' matches no function"):
        ip.run_line_magic("dlvtrace", r"sp --func 'main\.nothere$'")
    with pytest.raises(UsageError, match=r"not a valid Go regexp \(invalid filter argument"):
        ip.run_line_magic("dlvtrace", "sp --func '('")
    with pytest.raises(UsageError, match=r"matches \d+ functions .* narrow it to at most 200"):
        ip.run_line_magic("dlvtrace", "sp --func '.'")
    with pytest.raises(UsageError, match="--stack takes a number of frames"):
        ip.run_line_magic("dlvtrace", "sp --stack -1")
    with pytest.raises(UsageError, match="say which target to trace"):
        ip.run_line_magic("dlvtrace", "")
    wait_for(lambda: tracer_pid(t.pid) == 0, what="every refused trace to detach")
    assert t.alive


def test_two_traces_on_one_program(ip: InteractiveShell) -> None:
    ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 100000 -every 50ms")
    first = ip.run_line_magic("dlvtrace", "sp")
    with pytest.raises(UsageError, match=r"sp is already being traced .* --stop sp first"):
        ip.run_line_magic("dlvtrace", r"sp --func 'main\.park$'")
    assert first.running
    ip.run_line_magic("dlvtrace", "--stop sp")
    with pytest.raises(UsageError, match="there is no target named 'nope'"):
        ip.run_line_magic("dlvtrace", "nope")


def test_program_exits_mid_trace(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 40 -every 25ms -hold 1ms")
    rows = ip.run_line_magic("dlvtrace", "sp --wait")
    trace = creations.latest(t).trace
    assert trace.state == "exited" and trace.reason == "the target exited (exit 0)"
    assert len(at_spawn_site(rows)) >= 1 and len(rows) == len(t.creations)
    assert t.wait(10) and t.exit_status == 0


def test_dlv_dies_mid_trace(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 100000 -every 20ms")
    handle = ip.run_line_magic("dlvtrace", "sp")
    wait_for(lambda: len(t.tables["creations"]) >= 3, what="a few creations")
    os.kill(handle.trace.server.proc.pid, signal.SIGKILL)
    assert handle.wait(20)
    assert handle.trace.state == "lost"
    assert handle.trace.reason.startswith("dlv died (killed by SIGKILL)")
    kept = handle.frame()
    assert len(kept) >= 3 and len(kept) == handle.trace.events


def test_unload_detaches_before_stopping(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 100000 -every 20ms")
    handle = ip.run_line_magic("dlvtrace", "sp")
    wait_for(lambda: len(t.tables["creations"]) >= 3, what="a few creations")
    debugger = handle.trace.server.proc
    ip.run_line_magic("unload_ext", "goleak_magic")
    try:
        assert handle.trace.state == "stopped" and debugger.poll() == 0
        assert t.state == "stopped" and t.exit_status != -signal.SIGTRAP
        assert not pid_alive(t.pid)
    finally:
        ip.run_line_magic("load_ext", "goleak_magic")


def test_connect_magic_traces_a_remote_program_to_its_exit(
    ip: InteractiveShell, headless_dlv: Callable[..., HeadlessDlv]
) -> None:
    addr, _ = headless_dlv("-n", "30", "-hold", "1ms")
    rows = ip.run_line_magic("dlvtrace", f"--connect {addr} rem --wait")
    t = goleak_magic.session().targets["rem"]
    # halted at its first instruction until we connected: every creation is in
    assert len(at_spawn_site(rows)) == 30
    assert t.state == "exited" and t.exit_status == 0


def test_remote_socket_drop_keeps_the_events(
    ip: InteractiveShell, headless_dlv: Callable[..., HeadlessDlv]
) -> None:
    addr, remote = headless_dlv("-n", "100000", "-every", "20ms")
    handle = ip.run_line_magic("dlvtrace", f"--connect {addr} rem")
    wait_for(lambda: handle.trace.events >= 3, what="a few creations")
    process.kill(remote)  # the remote dlv goes away mid-trace
    assert handle.wait(20)
    assert handle.trace.state == "lost"
    assert handle.trace.reason == f"the connection to {addr} dropped"
    assert len(handle.frame()) == handle.trace.events >= 3
