"""``read_dumps`` on what real dying programs printed (tests/fixtures/exit_*, README).

Expected values come from what each captured program did (a 2 s test timeout, a
deadlock, a panic, SIGQUIT...) and from a plain reading of the same text (string
splitting), not from the reader's own regexes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from goleak_magic import GoleakError
from goleak_magic.dumps.dumpfile import Dump, read_dumps
from goleak_magic.dumps.model import to_frame
from goleak_magic.dumps.text import parse_dump

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = ["1.26.8", "1.27.3"]
BUBBLE = "deadlock: main bubble goroutine has exited but blocked goroutines remain"
PANIC = "boom: every goroutine is started"
# fixture -> (end, message) of each dump in it, as the captured program ended
ENDS = {
    "exit_timeout": [("timeout", "test timed out after 2s")],
    "exit_deadlock": [("deadlock", "all goroutines are asleep - deadlock!")],
    "exit_synctest": [("deadlock", BUBBLE)],
    "exit_sigquit": [("sigquit", "SIGQUIT: quit")],
    "exit_scan": [("sigquit", "SIGQUIT: quit")],
    "exit_cgo": [("sigquit", "SIGQUIT: quit")],
    "exit_panic_all": [("panic", PANIC)],
    "exit_panic_system": [("panic", PANIC)],
    "exit_gotest": [("timeout", "test timed out after 2s"), ("deadlock", BUBBLE)],
    "goroutineleak_debug2": [("plain", None)],
}
CASES = [f"{name}_go{v}.txt" for name in ENDS for v in VERSIONS] + ["exit_labels_go1.27.3.txt"]


def frame(cols: dict) -> pd.DataFrame:
    return to_frame(cols, snapshot=1, time=pd.Timestamp(0, tz="UTC"), source="file")


def frames_equal(a: Dump, b: Dump) -> None:
    pd.testing.assert_frame_equal(frame(a.cols), frame(b.cols))


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().split("\n")


def is_system(block: list[str]) -> bool:
    """Plainly: the outermost frame (above runtime.goexit) is a runtime.* function, and
    no frame is in the captured programs' sources (a C thread's call into Go is user
    code though it starts in runtime.cgocallback)."""
    funcs = [ln.split("(")[0] for ln in block[1:] if ln and not ln.startswith(("\t", "created"))]
    funcs = [f for f in funcs if f != "runtime.goexit"]
    programs = any("/fixtures/" in ln for ln in block[1:] if ln.startswith("\t"))
    return bool(funcs) and funcs[-1].startswith("runtime.") and not programs


def plain_goids(block_lines: list[str]) -> list[int]:
    """Ids of the goroutines in a dump's lines, by splitting on blank lines, but the
    runtime's and the goleak_magic agent's (whose dump the agent fixture is)."""
    blocks = [b.split("\n") for b in "\n".join(block_lines).strip("\n").split("\n\n")]
    return [
        int(b[0].split(" ")[1])
        for b in blocks
        if not is_system(b) and "zz_goleak_magic_agent" not in "\n".join(b)
    ]


@pytest.mark.parametrize("name", CASES)
def test_each_dump_its_end_and_its_rows(name: str) -> None:
    got = read_dumps(FIXTURES / name)
    key = name.rsplit("_go", 1)[0]
    assert [(d.end, d.message and d.message.split(" [")[0]) for d in got] == ENDS.get(
        key, [("sigquit", "SIGQUIT: quit")]
    )
    text = lines(name)
    for d in got:
        assert text[d.first_line - 1].startswith("goroutine ")
        assert text[d.last_line - 1].startswith("\t")  # a whole goroutine's last line
        after = text[d.last_line :]
        # what follows is not a goroutine of this dump: the end, a blank line, a log line
        assert not after or not after[0].startswith(("goroutine ", "\t"))
        body = text[d.first_line - 1 : d.last_line]
        assert sorted(d.cols["goid"]) == sorted(plain_goids(body)) != []
        assert d.cut_line is None and d.note is None and d.parser.malformed == 0
        if d.end != "timeout":  # only a timeout's dump shows testing's own goroutines
            assert len(d.harness) == 0
        # the same rows as the debug=2 parser gives for the dump's own lines
        whole, _ = parse_dump("\n".join(body) + "\n")
        pd.testing.assert_frame_equal(frame(d.cols), frame(whole))


@pytest.mark.parametrize("version", VERSIONS)
def test_timeout_names_the_tests_that_hung(version: str) -> None:
    (d,) = read_dumps(FIXTURES / f"exit_timeout_go{version}.txt")
    text = lines(f"exit_timeout_go{version}.txt")
    listed = [ln.strip() for ln in text if ln.startswith("\t\t")]
    assert [f"{t} ({took})" for t, took in d.running_tests] == listed
    assert [t for t, _ in d.running_tests] == ["TestHang", "TestHang/worker"]
    # the hung test's goroutines are there, blocked where the test blocks
    df = frame(d.cols)
    hung = df[df["user_top"].fillna("").str.contains("timeout_test.go")]
    assert set(hung["wait_reason"]) == {"chan receive", "sync.WaitGroup.Wait", "chan send",
                                        "sync.Mutex.Lock"}  # fmt: skip
    # testing's own: main in testing.(*M).Run, and the alarm that fired
    harness = set(d.harness)
    by_goid = df.set_index("goid")
    assert by_goid.loc[1, "start_func"] == "main.main" and 1 in harness
    alarm = df.loc[df["top"].str.startswith("testing.(*M).startAlarm"), "goid"].tolist()
    assert len(alarm) == 1 and alarm[0] in harness
    assert harness == {1, alarm[0]}  # every other goroutine runs the test's code


@pytest.mark.parametrize("version", VERSIONS)
def test_system_dump_reads_as_the_default_one(version: str) -> None:
    """The same program's panic with GOTRACEBACK=all and =system: gp= m= headers, runtime
    frames and the runtime's goroutines read away, the rows are the same."""
    (a,) = read_dumps(FIXTURES / f"exit_panic_all_go{version}.txt", stacks=True)
    (s,) = read_dumps(FIXTURES / f"exit_panic_system_go{version}.txt", stacks=True)
    text = "\n".join(lines(f"exit_panic_system_go{version}.txt"))
    assert " gp=" in text and "runtime.goexit(" in text and "[GC sweep wait]" in text
    fa, fs = (frame(x.cols).drop(columns="goid") for x in (a, s))
    # main.spin runs: where the signal found it is not the same in two runs
    fa, fs = (f[f["start_func"] != "main.spin"].reset_index(drop=True) for f in (fa, fs))
    assert len(fa) == 10
    pd.testing.assert_frame_equal(fa, fs)
    assert not frame(s.cols)["start_func"].str.startswith("runtime.").any()


@pytest.mark.parametrize("version", VERSIONS)
def test_scan_cgo_synctest_and_labels(version: str) -> None:
    (scan,) = read_dumps(FIXTURES / f"exit_scan_go{version}.txt")
    scanned = [ln for ln in lines(f"exit_scan_go{version}.txt") if "(scan)]" in ln]
    goid = int(scanned[0].split(" ")[1])
    row = frame(scan.cols).set_index("goid").loc[goid]
    assert (row["status"], row["wait_reason"]) == ("waiting", "chan receive")
    (cgo,) = read_dumps(FIXTURES / f"exit_cgo_go{version}.txt")
    callback = frame(cgo.cols).set_index("goid").loc[17]  # the C thread's call into Go
    assert callback["locked"] and callback["wait_reason"] == "chan receive"
    assert callback["user_top"].startswith("main.goCallback ")
    assert callback["start_func"] == "main.goCallback"
    (bubble,) = read_dumps(FIXTURES / f"exit_synctest_go{version}.txt")
    df = frame(bubble.cols)
    blocked = df[df["user_top"].fillna("").str.contains("bubble_test.go:1[46]")]
    assert sorted(blocked["wait_reason"]) == ["chan receive", "select"]


def test_labels_in_go127_headers() -> None:
    (d,) = read_dumps(FIXTURES / "exit_labels_go1.27.3.txt")
    labels = [x for x in frame(d.cols)["labels"] if x is not None]
    assert sorted(x["request"] for x in labels) == ["r 2", "r-1"]
    assert {x["handler"] for x in labels} == {"/api/items"}


@pytest.mark.parametrize("version", VERSIONS)
def test_series_from_a_ci_log(version: str) -> None:
    name = f"exit_gotest_go{version}.txt"
    first, second = read_dumps(FIXTURES / name)
    text = lines(name)
    between = text[first.last_line : second.first_line - 1]
    assert any(ln.startswith("FAIL\texitdumps/timeout") for ln in between)
    assert any(ln.startswith("--- FAIL: TestBubbleLeak") for ln in between)
    assert text[-2].startswith("FAIL") and second.last_line < len(text) - 1


def noisy(parts: list[bytes]) -> bytes:
    return b"".join(parts)


def test_log_lines_around_and_between_are_ignored() -> None:
    """Real dumps inside real log text (a schedtrace run's stderr, go test's lines)."""
    log = (FIXTURES / "schedtrace_go1.26.8.txt").read_bytes()
    agent = (FIXTURES / "goroutineleak_debug2_go1.27.3.txt").read_bytes()
    deadlock = (FIXTURES / "exit_deadlock_go1.26.8.txt").read_bytes()
    data = noisy([log, agent, log, b"exit status 2\n", deadlock, log[:100]])
    got = read_dumps(io.BytesIO(data))
    assert [d.end for d in got] == ["plain", "deadlock"]
    want_agent = read_dumps(io.BytesIO(agent))[0]
    frames_equal(got[0], want_agent)
    frames_equal(got[1], read_dumps(io.BytesIO(deadlock))[0])
    # the agent's snapshot rows: what the debug=2 parser gives for the dump alone
    pd.testing.assert_frame_equal(frame(got[0].cols), frame(parse_dump(agent)[0]))
    offset = log.count(b"\n")
    assert got[0].first_line == offset + 1


@pytest.mark.parametrize("chunk", [64, 997, 1 << 16])
def test_chunking_and_crlf_do_not_change_the_result(chunk: int) -> None:
    data = (FIXTURES / "exit_gotest_go1.27.3.txt").read_bytes()
    want = read_dumps(io.BytesIO(data))
    for variant in (data, data.replace(b"\n", b"\r\n")):
        got = read_dumps(io.BytesIO(variant), chunk=chunk)
        assert [(d.end, d.message, d.first_line, d.last_line, d.running_tests) for d in got] == [
            (d.end, d.message, d.first_line, d.last_line, d.running_tests) for d in want
        ]
        for g, w in zip(got, want, strict=True):
            frames_equal(g, w)


@pytest.mark.parametrize("version", VERSIONS)
def test_cut_mid_goroutine_keeps_the_whole_ones(version: str) -> None:
    name = f"exit_timeout_go{version}.txt"
    text = lines(name)
    headers = [i for i, ln in enumerate(text) if ln.startswith("goroutine ")]
    for h in headers[1:]:
        for cut in (h + 1, h + 2):  # after the header; inside the first frame's location
            data = "\n".join(text[:cut]) + "\n" + text[cut][:12]
            for tail in ("", "\nFAIL\texitdumps/timeout\t2.01s\n"):  # at the end, or logs after
                (d,) = read_dumps(io.BytesIO((data + tail).encode()))
                kept = plain_goids(text[headers[0] : h])
                assert sorted(d.cols["goid"]) == sorted(kept)
                assert d.cut_goid == int(text[h].split(" ")[1])
                assert d.cut_line == h + 1
                assert d.note is not None and f"goroutine {d.cut_goid}" in d.note
                assert d.end == "timeout"


@pytest.mark.parametrize(
    "data",
    [b"", b"hello\nworld\n", b"\x00\xff" * 100_000, b"goroutine 5 started\n",
     b"goroutine 1 [running]: not a header\n"],
    ids=["empty", "text", "binary", "log-line", "almost-a-header"],
)  # fmt: skip
def test_no_dump_is_one_sentence(data: bytes) -> None:
    with pytest.raises(GoleakError, match=r"^that text holds no goroutine dump .*\.$"):
        read_dumps(io.BytesIO(data))


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(GoleakError, match=r"cannot read .*missing\.txt"):
        read_dumps(tmp_path / "missing.txt")
    with pytest.raises(GoleakError, match="cannot read"):
        read_dumps(tmp_path)
    sched = FIXTURES / "schedtrace_go1.27.3.txt"
    with pytest.raises(GoleakError, match=r"schedtrace_go1\.27\.3\.txt holds no goroutine dump"):
        read_dumps(sched)


def test_a_huge_line_is_skipped_and_a_header_inside_it_is_not_one() -> None:
    dump = (FIXTURES / "exit_deadlock_go1.27.3.txt").read_bytes()
    blob = b"x" * 200_000 + b" goroutine 9 [running]:\n"  # not at a line start
    got = read_dumps(io.BytesIO(blob + dump), chunk=1 << 14)
    frames_equal(got[0], read_dumps(io.BytesIO(dump))[0])
    assert got[0].first_line == 1 + dump[: dump.index(b"\ngoroutine ")].count(b"\n") + 2
