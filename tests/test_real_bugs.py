"""Issue 10's "Done when", end to end through Session and the magics: leaks in tests,
deadlocks, and the dumps dying programs print.

Every bug-shaped test (the shipped examples/leaktests and tests/programs/realbugs, written
from published descriptions of real bugs) must leave its top suspect flagged and blocked
at a line its source marks ``// BUG:``; the control test leaves none. The BUG lines are
read from the sources, never written down here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import goleak_magic
from goleak_magic.agent import AgentClient
from goleak_magic.build import examples_dir
from goleak_magic.session import Session

from .conftest import GO127, PROGRAMS, wait_for

pytestmark = pytest.mark.live

REALBUGS = PROGRAMS / "realbugs"
LEAKTESTS = examples_dir() / "leaktests"
CONTROL = "TestCleanShutdown"
DEADLOCK = Path(__file__).parent / "fixtures" / "exitdumps" / "deadlock"


def bug_lines(pkg: Path) -> set[str]:
    """Every "file:line" of ``pkg`` marked ``// BUG:``."""
    return {
        f"{f}:{i}"
        for f in pkg.glob("*.go")
        for i, ln in enumerate(f.read_text().splitlines(), 1)
        if "// BUG:" in ln
    }


def at_line(blocked_at: str) -> str:
    """The "file:line" of a ``blocked_at`` ("reason at func file:line")."""
    return str(blocked_at).rsplit(" ", 1)[1]


@pytest.mark.parametrize("go", ["go1.26", GO127])
@pytest.mark.parametrize("pkg", [LEAKTESTS, REALBUGS], ids=["leaktests", "realbugs"])
def test_every_bug_is_the_top_suspect_and_the_control_is_clean(
    sess: Session, pkg: Path, go: str
) -> None:
    env = {"GOTOOLCHAIN": go} if go == GO127 else None
    # -cpu 1,4: one of the shipped bugs leaks only with GOMAXPROCS > 1.
    df = sess.test_leaks(str(pkg), cpu="1,4", env=env)
    assert len(df) >= (7 if pkg == LEAKTESTS else 10)
    bugs = bug_lines(pkg)
    for row in df.itertuples():
        sus = sess.get(row.target).suspects
        if row.test == CONTROL:
            assert row.leaked == 0 and not sus["suspect"].any(), sus.head().to_string()
            continue
        assert row.outcome == "pass" and row.leaked > 0, row
        top = sus.iloc[0]
        assert top["suspect"], (row.test, sus.head().to_string())
        assert at_line(top["blocked_at"]) in bugs, (row.test, top["blocked_at"])
        # the report says it in words, on the test's own target
        assert sess.report(row.target).text().startswith(f"Leak suspect in {row.target}")


def test_golaunch_test_then_suspects(ip: InteractiveShell) -> None:
    """The way the issue tried it: %golaunch --test, a snapshot while it runs, then
    %goleak suspects. The binary ending is an outcome, and its final snapshot is kept."""
    ip.run_line_magic(
        "golaunch",
        f"{REALBUGS} --test --name kb -- -test.run ^TestKubernetes5316$ -test.count 50",
    )
    t = goleak_magic.session().targets["kb"]
    assert t.wait(60) and t.exit_status == 0
    assert t.snapshots[-1]["source"] == "final" and t.snapshots[-1]["end"] == "test-end"
    sus = ip.run_line_magic("goleak", "suspects kb")
    top = sus.iloc[0]
    assert top["suspect"] and top["alive"] == 50
    assert at_line(top["blocked_at"]) in bug_lines(REALBUGS)


def test_goleak_tests_help_and_bad_input(ip: InteractiveShell, capsys) -> None:
    ip.run_cell("%goleak tests?")
    out = capsys.readouterr().out
    assert "%goleak tests DIR" in out and "--timeout S" in out and "leaked_proven" in out
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="matches none of the"):
        ip.run_line_magic("goleak", f"tests {LEAKTESTS} -run ^TestNoSuch$")
    with pytest.raises(UsageError, match="no tests"):
        ip.run_line_magic("goleak", f"tests {examples_dir() / 'leakyservice'}")


def test_hung_test_leaves_its_timeout_dump(sess: Session) -> None:
    t = sess.launch(
        str(PROGRAMS / "testrun" / "dying"),
        test=True,
        args=["-test.run", "^TestHang$", "-test.timeout", "2s"],
    )
    assert t.wait(60)
    last = t.snapshots[-1]
    assert (last["source"], last["end"]) == ("exit", "timeout")
    assert any("TestHang" in n for n in last["notes"])  # the running tests: list
    text = sess.report(t.name).text()
    assert "blocked when the test timed out" in text and "TestHang" in text
    assert "dying_test.go:13" in text  # wg.Wait in the test, marked BUG


def test_deadlock_fatal_error_leaves_a_snapshot(sess: Session) -> None:
    # Without the agent: its listener waits on the network, and the runtime never calls a
    # deadlock while a goroutine does (with it, the program hangs; a snapshot proves it).
    with pytest.raises(goleak_magic.GoleakError, match=r"goroutine dump is kept"):
        sess.launch(str(DEADLOCK), name="dl", agent=False)
    t = sess.get("dl")
    assert t.wait(10) and t.snapshots[-1]["end"] == "deadlock"
    text = sess.report("dl").text()
    src = (DEADLOCK / "main.go").read_text().splitlines()
    lock = next(i for i, ln in enumerate(src, 1) if "second.Lock()" in ln)
    wait = next(i for i, ln in enumerate(src, 1) if "wg.Wait()" in ln)
    assert text.startswith("Deadlock in dl")
    # every goroutine of the cycle, each with where it blocks
    cycle = re.findall(r"^goroutine \d+: (.*) at (\S+ \S+), started", text, re.M)
    assert cycle.count(("sync.Mutex.Lock", f"main.transfer main.go:{lock}")) == 2
    assert ("sync.WaitGroup.Wait", f"main.main main.go:{wait}") in cycle


def test_stop_with_dump_after_a_series(sess: Session) -> None:
    t = sess.launch("example:leakyservice")
    wait_for(lambda: any("goroutines=" in ln for ln in t.log_lines(20, "stdout")),
             what="leakyservice's first report")  # fmt: skip
    sess.snapshot(t.name)
    sess.stop(t.name, dump=True)
    assert t.state == "stopped" and t.snapshots[-1]["end"] == "sigquit"
    assert t.snapshots[-1]["source"] == "exit"
    src = (examples_dir() / "leakyservice" / "main.go").read_text().splitlines()
    send = next(i for i, ln in enumerate(src, 1) if "result <- query" in ln)
    text = sess.report(t.name).text()
    assert "as it ended: SIGQUIT: quit" in text
    assert f"in chan send at main.handler.func1 main.go:{send}" in text


COMPARED = ["goid", "status", "wait_reason", "top", "user_top", "created_by", "created_at",
            "parent_goid", "start_func", "leaked"]  # fmt: skip


def test_file_gives_the_agents_rows(sess: Session, tmp_path: Path) -> None:
    """A dump pasted into a CI log, with log lines around it, reads as the agent's
    snapshot of the same moment (spawn's goroutines are all parked: nothing moves)."""
    t = sess.launch("example:spawn", args=["-n", "300", "-drop-half"])
    wait_for(lambda: t.log_lines(5, "stdout"), what="spawn's report")
    agent = sess.snapshot(t.name).frame
    with AgentClient(t.agent_socket).open("/goleak/dump?leak=1", 30) as resp:
        dump = resp.read().decode()
    log = tmp_path / "ci.log"
    log.write_text(
        "2026-12-07T10:00:00Z ##[group]Run go test ./...\n=== RUN   TestSpawn\n"
        + dump
        + "\nFAIL\tgoleak_magic/examples/spawn\t3.1s\n"
        + "##[error]Process completed with exit code 1.\n"
    )
    snaps = sess.load_dump(log, name="ci")
    assert len(snaps) == 1 and snaps[0].source == "file"
    got = sess.get("ci").goroutines
    key = ["goid"]
    a = agent[COMPARED].sort_values(key, ignore_index=True)
    b = got[COMPARED].sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    assert a["leaked"].sum() == 150


def test_file_with_two_dumps_is_a_series(ip: InteractiveShell, capsys) -> None:
    ci = Path(__file__).parent / "fixtures" / "exit_gotest_go1.26.8.txt"
    ip.run_line_magic("schedsnap", f"--file {ci} --name gotest -o g")
    out = capsys.readouterr().out
    assert out.count("snapshot ") == 2 and "via file" in out
    g = ip.user_ns["g"]
    assert sorted(g["snapshot"].unique()) == [1, 2]
    rep = ip.run_line_magic("goleak", "report gotest")
    assert re.search(r"2 snapshot\(s\)", rep.text())
