"""%goleak tests' runner on real `go test -c` binaries, Go 1.26 and Go 1.27.

Every bug-shaped test (the shipped examples and tests/programs/realbugs) must leave
goroutines blocked at a line its source marks `// BUG:`; the control test leaves none.
The BUG lines are read from the sources, never written down here.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from goleak_magic import build, tables, testrun
from goleak_magic.agent import testmain
from goleak_magic.errors import GoleakError

from .conftest import GO127

PROGRAMS = Path(__file__).parent / "programs"
REALBUGS = PROGRAMS / "realbugs"
RUNNER = PROGRAMS / "testrun"
LEAKTESTS = build.examples_dir() / "leaktests"
CONTROL = "TestCleanShutdown"
TOOLCHAINS = ["local", GO127]


def bug_lines(pkg: Path) -> set[str]:
    """``file:line`` of every line of code marked ``// BUG:`` in ``pkg``."""
    return {
        f"{src}:{n}"
        for src in pkg.glob("*.go")
        for n, line in enumerate(src.read_text().splitlines(), 1)
        if "// BUG:" in line and not line.lstrip().startswith("//")
    }


def location(frame: object) -> str:
    """``/path/file.go:12`` of "reason at func /path/file.go:12" or "func /path/file.go:12"."""
    return str(frame).rpartition(" ")[2]


def run(pkg: str, toolchain: str, tmp: Path, **kw: object) -> testrun.TestRun:
    env = {"GOTOOLCHAIN": toolchain}
    return testrun.run_tests(pkg, workdir=tmp, env=env, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=TOOLCHAINS)
def toolchain(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def leaktests(toolchain: str, tmp_path_factory: pytest.TempPathFactory) -> testrun.TestRun:
    seen: list[tuple[int, int, str]] = []
    r = run(
        "example:leaktests", toolchain, tmp_path_factory.mktemp("leak"), count=3, cpu="1,4",
        progress=lambda done, total, res: seen.append((done, total, res.test)),
    )  # fmt: skip
    assert [d for d, _, _ in seen] == list(range(1, len(r.results) + 1))
    assert {t for _, _, t in seen} == {x.test for x in r.results}
    return r


@pytest.fixture(scope="session")
def realbugs(toolchain: str, tmp_path_factory: pytest.TempPathFactory) -> testrun.TestRun:
    return run(str(REALBUGS), toolchain, tmp_path_factory.mktemp("real"), count=2)


def check_bugs(r: testrun.TestRun, pkg: Path, toolchain: str) -> None:
    bugs = bug_lines(pkg)
    table = r.table()
    assert list(table.columns) == list(tables.SCHEMAS["tests"])
    assert (r.go_version or "").startswith("go1.27" if toolchain == GO127 else "go1.26")
    for res in r.results:
        row = res.row
        if res.test == CONTROL:
            assert row["leaked"] == 0 and row["top_site"] is None, row
            continue
        assert row["outcome"] == "pass", row
        assert row["leaked"] > 0 and row["runs"] > 0, row
        assert location(row["blocked_at"]) in bugs, (row, sorted(bugs))
        assert location(row["top_site"]).startswith(str(pkg) + "/"), row
        assert res.settle["settled"] is True and res.settle["profile"] == "goroutineleak"
        assert set(res.goroutines["source"]) == {"final"}
        assert str(row["test"]) in str(res.stdout)


def test_shipped_examples_leak_at_their_bug_lines(
    leaktests: testrun.TestRun, toolchain: str
) -> None:
    names = {x.test for x in leaktests.results}
    assert CONTROL in names and len(names) >= 7
    check_bugs(leaktests, LEAKTESTS, toolchain)
    by = {x.test: x.row for x in leaktests.results}
    assert by["TestLeakAfterReturn"]["runs"] == 6  # -test.count 3 x -test.cpu 1,4
    assert by["TestLeakAfterReturn"]["leaked"] == 6  # one per run
    assert by["TestLockOrderDeadlock"]["leaked"] == 12  # two per run
    assert by["TestLeakUnderCPU4"]["leaked"] == 3  # one per run under -cpu 4 only
    # the GC proves these (nothing reachable can wake them)
    assert by["TestLeakAfterReturn"]["leaked_proven"] == 6


def test_realbugs_leak_at_their_bug_lines(realbugs: testrun.TestRun, toolchain: str) -> None:
    assert len(realbugs.results) >= 10
    check_bugs(realbugs, REALBUGS, toolchain)


def test_cpu_leak_only_under_4(tmp_path: Path) -> None:
    r = run("example:leaktests", "local", tmp_path, run="CPU4", cpu="1,2", count=2)
    (row,) = [x.row for x in r.results]
    assert row["test"] == "TestLeakUnderCPU4" and row["runs"] == 4
    assert row["outcome"] == "pass" and row["leaked"] == 0


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("chain", TOOLCHAINS)
@pytest.mark.parametrize("pkg", ["ownmain", "ownmainx", "ownmainret"])
def test_package_with_its_own_testmain(pkg: str, chain: str, tmp_path: Path) -> None:
    before = tree(RUNNER)
    r = run(str(RUNNER / pkg), chain, tmp_path)
    assert tree(RUNNER) == before  # wrapped through the overlay, nothing written there
    leaky = next(x for x in r.results if x.row["leaked"])
    assert leaky.outcome == "pass" and leaky.row["leaked"] == 1
    assert location(leaky.row["blocked_at"]) in bug_lines(RUNNER / pkg)
    # its TestMain ran, and its teardown ran before the snapshot (through our exit)
    assert leaky.stdout.rstrip().endswith("teardown")
    assert all(x.settle for x in r.results)  # every run wrote its final snapshot
    assert [x.row["leaked"] for x in r.results if x is not leaky] == [0] * (len(r.results) - 1)


def test_testmain_that_cannot_be_wrapped(tmp_path: Path) -> None:
    (res,) = run(str(RUNNER / "logfatal"), "local", tmp_path).results
    assert res.outcome == "fail" and res.exit_status == 1  # log.Fatal's status
    assert pd.isna(res.row["leaked"]) and "no final snapshot" in str(res.row["evidence"])
    assert "teardown failed" in res.stderr


def test_hung_and_crashed_tests_keep_their_exit_dump(tmp_path: Path) -> None:
    r = run(str(RUNNER / "dying"), "local", tmp_path, timeout=1)
    by = {x.test: x for x in r.results}
    bugs = bug_lines(RUNNER / "dying")
    hung, crashed = by["TestHang"], by["TestCrash"]
    assert hung.outcome == "hung" and "panic: test timed out after 1s" in hung.stderr
    assert crashed.outcome == "crashed" and "nil map" in crashed.stderr
    for res in (hung, crashed):
        assert res.row["leaked"] == 1 and location(res.row["blocked_at"]) in bugs, res.row
        assert set(res.goroutines["source"]) == {"exit"} and not res.settle
    # the dump's rows come from the one function that turns stderr into a snapshot
    snap, _ = testrun.exit_dump_snapshot(hung.stderr)
    assert snap["goid"].tolist() == hung.goroutines["goid"].tolist()


def test_bad_input_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(GoleakError, match="has no tests"):
        run(str(RUNNER / "notests"), "local", tmp_path / "a")
    with pytest.raises(GoleakError, match=re.escape("-run 'NoSuchTest' matches none")):
        run(str(RUNNER / "dying"), "local", tmp_path / "b", run="NoSuchTest")
    with pytest.raises(GoleakError, match="--cpu"):
        run(str(RUNNER / "dying"), "local", tmp_path / "c", cpu="four")
    with pytest.raises(GoleakError, match="no shipped test example"):
        run("example:nosuch", "local", tmp_path / "d")


def test_wrap_rules_keep_every_line_in_place() -> None:
    src = (
        'package p\n\nimport (\n\tx "os"\n\t"testing"\n)\n\n'
        "func TestMain(m *testing.M) {\n\tx.Exit(m.Run())\n}\n"
    )
    out = testmain.wrap(src)
    assert out is not None
    lines, orig = out.splitlines(), src.splitlines()
    assert lines[7] == "func goleakMagicUserTestMain(m *testing.M) {"
    assert lines[8] == "\tgoleakMagicTestExit(m.Run())"  # through the file's name for "os"
    assert lines[: len(orig)][9:] == orig[9:] and len(lines) > len(orig)
    assert "var _ = x.Exit" in out  # the import stays used
    # A dot-imported os cannot be told apart from the package's own Exit: left alone.
    dot = src.replace('x "os"', '. "os"').replace("x.Exit", "Exit")
    assert "\tExit(m.Run())" in str(testmain.wrap(dot))
    assert testmain.wrap("package p\n\nfunc TestX(t *testing.T) {}\n") is None
