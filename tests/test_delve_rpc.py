"""The Delve JSON-RPC client against a real `dlv --headless` running the spawn example."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from goleak_magic import build
from goleak_magic.delve import api, rpc
from goleak_magic.delve import server as dlv
from goleak_magic.tools import find_go

from .conftest import pid_alive, wait_for

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def spawn_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build("example:spawn", tmp_path_factory.mktemp("bin"), go=find_go()).binary


@pytest.fixture
def halted(
    spawn_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dlv.DlvServer]:
    """dlv exec of spawn -n 30 (parks its goroutines forever), halted at entry. One P,
    so a stop holds one hit: with two, two goroutines can reach main.park together (a
    fresh-clone CI run saw it)."""
    monkeypatch.setenv("GOMAXPROCS", "1")  # dlv passes its environment to the program
    srv = dlv.exec_binary(spawn_bin, ["-n", "30"], workdir=tmp_path)
    yield srv
    srv.close()


def test_typed_results(halted: dlv.DlvServer) -> None:
    c = halted.client
    v = c.get_version()
    assert v.api_version == 2 and "1.27.2" in v.delve_version
    assert "go1." in v.target_go_version and v.min_go <= v.max_go
    st = c.state()
    assert not st.running and not st.exited and st.threads
    assert st.pid == c.process_pid() == halted.pid
    [loc] = c.find_location("main.park")
    assert loc.function == "main.park" and loc.file.endswith("spawn/main.go")
    assert c.disassemble(loc.pc)[0].loc.function == "main.park"
    bp = c.create_breakpoint(
        function_name="main.park", tracepoint=True, stacktrace=3, goroutine=True,
        load_args=api.LoadConfig(),
    )  # fmt: skip
    assert bp.tracepoint and bp.stacktrace == 3 and bp.addrs
    assert [b.id for b in c.list_breakpoints() if b.id > 0] == [bp.id]
    [hit] = c.continue_(timeout=30).hits
    assert hit.breakpoint is not None and hit.breakpoint.id == bp.id
    info = hit.breakpoint_info
    assert info is not None and info.goroutine is not None
    assert info.stacktrace[0].location.function == "main.park"
    assert info.goroutine.id == hit.goroutine_id
    assert info.goroutine.go_statement_loc.function == "main.main"
    [arg] = info.arguments
    assert arg.name == "ch" and str(arg) == "ch=chan struct {} 0/0"
    assert c.clear_breakpoint(bp.id).id == bp.id
    assert not [b for b in c.list_breakpoints() if b.id > 0]


def test_stop_view_reads_what_the_typed_state_holds(halted: dlv.DlvServer) -> None:
    """The hot path's lazy ``Stop``/``Hit`` view and ``DebuggerState`` read one reply alike."""
    c = halted.client
    bp = c.create_breakpoint(
        function_name="main.park", tracepoint=True, stacktrace=3, variables=["ch"],
        load_args=api.LoadConfig(),
    )  # fmt: skip
    running = c.continue_async()
    stop, st = running.stop(30), running.result(0)  # one reply, read both ways
    assert not stop.exited and not st.exited
    [hit], [th] = stop.hits, st.hits
    assert th.breakpoint is not None and th.breakpoint_info is not None
    assert hit.breakpoint_id == th.breakpoint.id == bp.id
    assert hit.goroutine_id == th.goroutine_id > 0
    assert hit.function == th.function
    assert hit.stack() == tuple(f.location for f in th.breakpoint_info.stacktrace)
    # the goroutine's whole stack (3 frames): park, the go statement's wrapper, goexit
    assert [loc.function for loc in hit.stack()] == [
        "main.park", "main.main.gowrap1", "runtime.goexit"
    ]  # fmt: skip
    assert hit.stack_key() == tuple((loc.pc, loc.line) for loc in hit.stack())
    assert hit.hit_goroutines == 1  # one goroutine has hit it so far
    assert hit.variables() == th.breakpoint_info.variables
    assert [str(v) for v in hit.arguments()] == ["ch=chan struct {} 0/0"]
    c.clear_breakpoint(bp.id)


def test_replies_matched_by_id_and_timeouts(halted: dlv.DlvServer) -> None:
    c = halted.client
    running = c.command_async("continue")  # spawn parks its goroutines and waits forever
    # Answered while the continue is still out: replies come back by id, not in order.
    assert c.get_version().api_version == 2
    assert not running.done()
    with pytest.raises(rpc.RPCTimeout, match="State"):
        c.state(timeout=0.5)  # a blocking State waits for the target to stop
    assert c.state(non_blocking=True).running
    halted_state = c.halt()
    st = running.result(10)
    assert not st.running and not st.exited and not halted_state.running
    assert c.get_version().api_version == 2  # the connection survived the timeout


def test_delve_errors_are_exceptions(halted: dlv.DlvServer) -> None:
    c = halted.client
    with pytest.raises(rpc.RPCError, match="unknown method") as e:
        c.call("NoSuchMethod")
    assert e.value.method == "RPCServer.NoSuchMethod"
    with pytest.raises(rpc.RPCError, match=r"could not find function main\.noSuchFunction$"):
        c.create_breakpoint(function_name="main.noSuchFunction")
    with pytest.raises(rpc.RPCError, match="expected operand"):
        c.eval("1 +")
    with pytest.raises(rpc.RPCError, match="missing closing"):
        c.list_functions("(")


def test_goroutines_paged(halted: dlv.DlvServer) -> None:
    c = halted.client
    c.create_breakpoint(function_name="fmt.Printf")  # spawn prints once all 30 exist
    c.continue_(timeout=30)
    whole = c.list_goroutines(0, 0)
    assert whole.nextg == -1
    paged = list(c.iter_goroutines(page_size=7))
    assert [g.id for g in paged] == [g.id for g in whole.goroutines]
    made = [g for g in paged if g.go_statement_loc.function == "main.main"]
    assert len(made) == 30 and len({g.id for g in made}) == 30
    for g in made:
        assert g.go_statement_loc.file.endswith("spawn/main.go")
        assert g.start_loc.function.startswith("main.")
        assert g.status_name in ("runnable", "running", "waiting")
        assert g.labels == {} and not g.unreadable


def test_exit_and_process_exited_error(spawn_bin: Path, tmp_path: Path) -> None:
    srv = dlv.exec_binary(spawn_bin, ["-n", "2", "-hold", "1ms"], workdir=tmp_path)
    try:
        st = srv.client.continue_(timeout=30)
        assert st.exited and st.exit_status == 0
        with pytest.raises(rpc.ProcessExitedError) as e:
            srv.client.list_goroutines()
        assert e.value.status == 0
    finally:
        srv.close()


def test_connection_closed_when_dlv_dies(halted: dlv.DlvServer) -> None:
    c = halted.client
    program = c.process_pid()
    running = c.command_async("continue")
    assert halted.proc is not None
    os.kill(halted.proc.pid, signal.SIGKILL)
    try:
        with pytest.raises(rpc.ConnectionClosed):
            running.result(10)
        with pytest.raises(rpc.ConnectionClosed):
            c.get_version()
    finally:
        # dlv exec's program is dlv's child, not ours: nothing else would end it.
        if pid_alive(program):
            os.kill(program, signal.SIGKILL)
        wait_for(lambda: not pid_alive(program), what="the orphaned program to go")


def test_addresses() -> None:
    import socket

    assert rpc.parse_address("unix:/tmp/x.sock") == (socket.AF_UNIX, "/tmp/x.sock")
    assert rpc.parse_address("/tmp/x.sock") == (socket.AF_UNIX, "/tmp/x.sock")
    assert rpc.parse_address("127.0.0.1:4040") == (socket.AF_INET, ("127.0.0.1", 4040))
    assert rpc.parse_address("[::1]:4040") == (socket.AF_INET6, ("::1", 4040))
    with pytest.raises(ValueError, match="HOST:PORT"):
        rpc.parse_address("localhost")
