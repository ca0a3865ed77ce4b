"""%golaunch's Python API on real Go programs: build, run, record, stop, attach."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from goleak_magic import GoleakError
from goleak_magic.build import example_names
from goleak_magic.session import Session

from .conftest import PROGRAMS, pid_alive, wait_for

pytestmark = pytest.mark.live


@pytest.mark.parametrize("example", ["leakyservice", "forgottenticker", "healthy", "spawn"])
def test_every_example_records_rows(sess: Session, example: str) -> None:
    t = sess.launch(f"example:{example}")
    wait_for(lambda: len(t.tables["sched"]) >= 5, what="5 schedtrace rows")
    df = t.sched
    assert (df.gomaxprocs > 0).all()
    assert df.time.is_monotonic_increasing
    assert df.t_ms.is_monotonic_increasing
    assert t.state == "running"
    sess.stop(t.name)
    assert t.state == "stopped" and not pid_alive(t.pid)


def test_examples_are_all_shipped() -> None:
    assert {"leakyservice", "forgottenticker", "healthy", "spawn"} <= set(example_names())


def reported_goroutines(t) -> int:
    lines = [ln for ln in t.log_lines(100, stream="stdout") if "goroutines=" in ln]
    return int(re.search(r"goroutines=(\d+)", lines[-1]).group(1))


def test_detail_counts_match_the_programs_own_count(sess: Session, toolchain: str) -> None:
    n = 300
    # No agent: its serving goroutine would count in runtime.NumGoroutine too.
    t = sess.launch("example:spawn", detail=True, agent=False, args=["-n", str(n)])
    assert len(t.tables["sched"]) >= 1  # a detail row is complete a tick later: launch waits
    wait_for(lambda: any("created=" in ln for ln in t.log_lines(10)), what="spawn's report")
    reported = reported_goroutines(t)
    assert reported == n + 1  # the parked ones and main
    # The next tick after the report sees them all; runtime goroutines (GC workers,
    # finalizer, ...) are in the G lines but not in runtime.NumGoroutine.
    seen = len(t.tables["sched"])
    wait_for(lambda: len(t.tables["sched"]) > seen + 1, what="two more ticks")
    last = t.sched.iloc[-1]
    assert reported <= last.goroutines <= reported + 12
    assert last.g_waiting >= n
    waits = t.waits
    at_last = waits[waits.t_ms == last.t_ms].set_index("wait_reason")["count"]
    assert at_last["chan receive"] >= n
    assert (
        last.g_runnable
        + last.g_running
        + last.g_syscall
        + last.g_waiting
        + last.g_leaked
        + (last.g_other)
        == last.goroutines
    )
    assert t.go_version.startswith("go1.27" if toolchain != "go1.26" else "go1.26")


def test_a_program_halted_mid_line_keeps_every_tick_whole(sess: Session) -> None:
    # A debugger stops every thread, sysmon too, often in the middle of a schedtrace
    # line (the runtime writes one field at a time). SIGSTOP does the same. Each halt
    # here starts while the reader holds a partial runtime line and lasts a second (as
    # Delve's attach does); the rest of the line, and of its tick, comes after SIGCONT.
    t = sess.launch("example:spawn", detail=True, args=["-n", "3000"])
    wait_for(lambda: len(t.tables["sched"]) >= 2, what="two ticks")
    mid_line = 0
    for _ in range(40):
        wait_for(lambda: t.parser.holding, 10, "a partial runtime line")
        os.kill(t.pid, signal.SIGSTOP)
        try:
            time.sleep(1.0)  # the halt itself, not a wait for a result
            mid_line += t.parser.holding  # the reader is still waiting for that line
        finally:
            os.kill(t.pid, signal.SIGCONT)
        if mid_line == 4:
            break
    assert mid_line == 4, "fewer than 4 of 40 halts landed in the middle of a line"
    seen = len(t.tables["sched"])
    wait_for(lambda: len(t.tables["sched"]) > seen + 1, what="two more ticks")
    sess.stop(t.name)
    assert t.malformed_lines == 0
    assert t.sched["goroutines"].notna().all() and t.sched["goroutines"].iloc[-1] > 3000
    assert [ln for ln in t.log_lines(1000, stream="stderr") if ln.strip()] == []


def test_program_that_exits_keeps_rows_status_and_output(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "5", "-hold", "1s"])
    assert t.wait(20), "spawn -hold 1s should exit by itself"
    assert t.state == "exited" and t.exit_status == 0
    assert len(t.sched) >= 3  # 1 s at 100 ms; all rows stay after exit
    assert any("created=5" in ln for ln in t.log_lines(10, stream="stdout"))
    assert not pid_alive(t.pid)  # reaped, no zombie
    assert "exit 0" in sess.list().set_index("name").loc[t.name, "exit_status"]


def test_go_file_target_args_env_and_godebug(sess: Session) -> None:
    src = PROGRAMS / "envprint.go"
    t = sess.launch(
        str(src), args=["hello"], env={"FOO": "bar", "GODEBUG": "madvdontneed=1"}, ancestors=3
    )
    line = wait_for(lambda: t.log_lines(1, stream="stdout"), what="the program's line")[0]
    assert "arg=hello" in line and "FOO=bar" in line
    godebug = line.split("GODEBUG=")[1]
    assert set(godebug.split(",")) == {
        "madvdontneed=1",
        "schedtrace=100",
        "tracebackancestors=3",
    }


def test_test_binary_with_run_filter(sess: Session) -> None:
    t = sess.launch(str(PROGRAMS / "pt"), test=True, args=["-test.run", "TestSlow", "-test.v"])
    assert t.built.kind == "test"
    assert t.wait(30)
    assert t.exit_status == 0
    out = "\n".join(t.log_lines(50, stream="stdout"))
    assert "--- PASS: TestSlow" in out and "TestQuick" not in out
    assert len(t.sched) >= 5


def test_attach_to_a_running_go_process(sess: Session) -> None:
    helper = sess.launch("example:spawn", args=["-n", "3"])  # just to get a built binary
    proc = subprocess.Popen([str(helper.binary), "-n", "3"], stdout=subprocess.DEVNULL)
    try:
        t = sess.attach(proc.pid, name="ext")
        assert t.state == "attached" and t.go_version.startswith("go1.")
        assert "ext" in set(sess.list().name)
        proc.kill()
        proc.wait()
        wait_for(lambda: t.state == "gone", what="attached target marked gone")
    finally:
        proc.kill()
        proc.wait()


def test_stop_kill_and_stop_all(sess: Session) -> None:
    a = sess.launch("example:spawn", name="a", args=["-n", "3"])
    b = sess.launch("example:spawn", name="b", args=["-n", "3"])
    c = sess.launch("example:spawn", name="c", args=["-n", "3"])
    sess.kill("a")
    assert a.state == "killed" and a.exit_status == -9 and not pid_alive(a.pid)
    sess.stop_all()
    assert b.state == c.state == "stopped"
    assert not pid_alive(b.pid) and not pid_alive(c.pid)
    assert len(b.sched) >= 1  # rows survive the stop


def test_chatty_program_never_blocks_and_log_stays_bounded(sess: Session) -> None:
    src = PROGRAMS / "chatty.go"
    sess.settings.log_lines = 1000
    sess.settings.startup_grace = 0.0
    # 80 MB of output: the program only finishes if both pipes are drained continuously.
    t = sess.launch(str(src))
    assert t.wait(60), "a program writing 80 MB must not stall on a full pipe"
    assert t.exit_status == 0
    assert t.log_lines(1, stream="stdout") == ["done"]
    assert len(t.log_lines(10**6, stream="stdout")) == 1000
    assert len(t.log_lines(10**6, stream="stderr")) == 1000


# ---- bad input: one clear sentence, no traceback, nothing lost ------------------------


def one_sentence(err: GoleakError) -> str:
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_nonexistent_path(sess: Session) -> None:
    with pytest.raises(GoleakError) as e:
        sess.launch("/no/such/dir")
    assert "does not exist" in one_sentence(e.value)


def test_directory_without_go_files(sess: Session, tmp_path: Path) -> None:
    with pytest.raises(GoleakError) as e:
        sess.launch(str(tmp_path))
    assert "no .go files" in one_sentence(e.value)


def test_unknown_example(sess: Session) -> None:
    with pytest.raises(GoleakError) as e:
        sess.launch("example:nope")
    assert "leakyservice" in one_sentence(e.value)


def test_compile_error_shows_the_compilers_first_errors(sess: Session) -> None:
    with pytest.raises(GoleakError) as e:
        sess.launch(str(PROGRAMS / "broken" / "main.go"))
    msg = one_sentence(e.value)
    assert "go build" in msg and "undefined: undefinedThing" in msg and "main.go:4" in msg


def test_program_that_exits_at_once(sess: Session) -> None:
    with pytest.raises(GoleakError) as e:
        sess.launch("example:spawn", name="bad", args=["-no-such-flag"])
    msg = one_sentence(e.value)
    assert "exited at once with exit 2" in msg and "no-such-flag" in msg
    t = sess.targets["bad"]  # kept, with what it printed
    assert t.state == "exited" and t.exit_status == 2


def test_not_an_executable(sess: Session, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(GoleakError) as e:
        sess.launch(str(f))
    assert "neither a Go source nor an executable" in one_sentence(e.value)


def test_binary_that_is_not_go(sess: Session) -> None:
    with pytest.raises(GoleakError) as e:
        sess.launch("/bin/true")
    assert "not a Go binary" in one_sentence(e.value)


def test_go_not_found(sess: Session) -> None:
    sess.settings.go = "/nonexistent/bin/go"
    with pytest.raises(GoleakError) as e:
        sess.launch("example:spawn")
    assert "was not found" in one_sentence(e.value)


def test_go_too_old(sess: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOTOOLCHAIN", "go1.21.13")  # a real old toolchain, fetched by setup
    with pytest.raises(GoleakError) as e:
        sess.launch("example:spawn")
    assert "needs Go 1.22 or newer" in one_sentence(e.value)
    monkeypatch.delenv("GOTOOLCHAIN")
    with pytest.raises(GoleakError) as e:  # the toolchain the build would use is the one checked
        sess.launch("example:spawn", env={"GOTOOLCHAIN": "go1.21.13"})
    assert "go1.21.13" in one_sentence(e.value) and "needs Go 1.22" in one_sentence(e.value)


def test_duplicate_name_and_unknown_stop(sess: Session) -> None:
    sess.launch("example:spawn", name="dup", args=["-n", "1"])
    with pytest.raises(GoleakError) as e:
        sess.launch("example:spawn", name="dup")
    assert "already exists" in one_sentence(e.value)
    with pytest.raises(GoleakError) as e:
        sess.stop("ghost")
    assert "no target named 'ghost'" in one_sentence(e.value)
    assert sess.targets["dup"].state == "running"


def test_attach_to_missing_or_non_go_process(sess: Session) -> None:
    with pytest.raises(GoleakError):
        sess.attach(2**22 + 7)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(GoleakError) as e:
            sess.attach(sleeper.pid)
        assert "not a Go program" in one_sentence(e.value)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_garbage_on_stderr_passes_through(sess: Session) -> None:
    src = PROGRAMS / "garbage.go"
    t = sess.launch(str(src))
    wait_for(lambda: len(t.tables["sched"]) >= 3, what="rows after the garbage")
    err = t.log_lines(20, stream="stderr")
    assert "SCHED garbage: not=a line" in err
    assert "SCHED 12ms: gomaxp" in err
    assert any("binary junk" in ln for ln in err)
    assert t.malformed_lines >= 2


# ---- process hygiene across processes -------------------------------------------------

DRIVER = """
import sys, time
from goleak_magic.session import Session
s = Session()
t = s.launch("example:spawn", args=["-n", "3"])
try:
    print(t.pid, flush=True)
    sys.stdin.readline()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.stdin.readline()
"""


def start_driver() -> tuple[subprocess.Popen[str], int]:
    drv = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,  # like a terminal's foreground job: Ctrl-C hits the whole group
    )
    assert drv.stdout is not None
    return drv, int(drv.stdout.readline())


def test_sigkill_of_python_takes_the_target_down() -> None:
    drv, pid = start_driver()
    assert pid_alive(pid)
    drv.kill()
    drv.wait()
    wait_for(lambda: not pid_alive(pid), timeout=2.0, what="target to die with its parent")


def test_interrupt_leaves_the_target_running() -> None:
    import os
    import signal

    drv, pid = start_driver()
    try:
        os.killpg(drv.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert drv.stdout is not None
        assert drv.stdout.readline().strip() == "interrupted"
        assert pid_alive(pid)
    finally:
        drv.communicate("\n", timeout=20)  # normal exit: atexit stops the target
    wait_for(lambda: not pid_alive(pid), timeout=5.0, what="target stopped at exit")
