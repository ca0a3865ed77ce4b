"""The goroutine-dump parsers on real Go 1.26 and 1.27 dumps (tests/fixtures, see README).

Expected values come from an independent, plain reading of the same text (string
splitting, no regexes of the parser's), so the tests check the parser, not a copy of it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from goleak_magic import GoleakError, tables
from goleak_magic.dumps.leakprofile import parse_leak_profile
from goleak_magic.dumps.model import to_frame
from goleak_magic.dumps.text import DumpParser, parse_dump, parse_labels

FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = ["1.26.8", "1.27.3"]


def dump(version: str) -> bytes:
    return (FIXTURES / f"goroutineleak_debug2_go{version}.txt").read_bytes()


def blocks(text: str) -> list[list[str]]:
    """The dump as blocks of lines: the plain reading the parser is checked against."""
    return [b.split("\n") for b in text.strip("\n").split("\n\n")]


def is_agent(block: list[str], agent_ids: set[int]) -> bool:
    creator = next((i for i, ln in enumerate(block) if ln.startswith("created by ")), None)
    own = any("zz_goleak_magic_agent" in ln for ln in block[: (creator or len(block)) + 2])
    parent = block[creator].rsplit(" ", 1)[-1] if creator is not None else ""
    return own or (parent.isdigit() and int(parent) in agent_ids)


def expected(text: str) -> pd.DataFrame:
    """goid, header text, creator line of every non-agent goroutine."""
    rows = []
    for b in blocks(text):
        goid = int(b[0].split(" ")[1])
        header = b[0][b[0].index("[") + 1 : b[0].rindex("]")]
        creator = next((ln for ln in b if ln.startswith("created by ")), None)
        rows.append({"goid": goid, "header": header, "creator": creator, "block": b})
    df = pd.DataFrame(rows)
    agent_ids: set[int] = set()
    for _ in range(3):  # agent goroutines, what they started, what that started
        agent_ids |= {r.goid for r in df.itertuples() if is_agent(r.block, agent_ids)}
    return df[~df["goid"].isin(agent_ids)].reset_index(drop=True)


def parsed(version: str, **kw: object) -> pd.DataFrame:
    cols, _ = parse_dump(dump(version), **kw)  # type: ignore[arg-type]
    return to_frame(cols, snapshot=1, time=pd.Timestamp.now(tz="UTC"), source="agent")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_goroutine_but_the_agents(version: str) -> None:
    want = expected(dump(version).decode())
    got = parsed(version)
    assert sorted(got["goid"]) == sorted(want["goid"])
    assert len(got) >= 15  # dumpgen's own goroutines are all there
    # The agent serves the dump, so its goroutines are in it: they must not be in the rows.
    raw_ids = {int(b[0].split(" ")[1]) for b in blocks(dump(version).decode())}
    assert len(raw_ids) > len(got)
    assert not got["top"].str.contains("zz_goleak_magic_agent").any()
    assert not got["created_at"].fillna("").str.contains("zz_goleak_magic_agent").any()
    pd.testing.assert_frame_equal(got, tables.conform("goroutines", got))  # the schema


@pytest.mark.parametrize("version", VERSIONS)
def test_headers(version: str) -> None:
    want = expected(dump(version).decode()).set_index("goid")
    got = parsed(version).set_index("goid")
    for goid, row in got.iterrows():
        header = want.at[goid, "header"]
        assert row["leaked"] == ("(leaked)" in header)
        assert row["locked"] == ("locked to thread" in header)
        state = header.split(",")[0].split("]")[0].split(" labels:")[0]
        state = state.replace(" (leaked)", "").replace(" (scan)", "")
        if row["status"] in ("waiting", "leaked"):
            assert row["wait_reason"] == state
        else:
            assert row["status"] == state and pd.isna(row["wait_reason"])
        if " minutes" in header:
            assert row["wait_minutes"] == int(header.split(" minutes")[0].rsplit(" ", 1)[1])
        else:
            assert pd.isna(row["wait_minutes"])
    # what dumpgen set up, and the capture waited for
    assert got["wait_minutes"].eq(1).sum() >= 8
    assert got["locked"].sum() == 1
    assert set(got["wait_reason"].dropna()) >= {
        "chan receive", "chan send", "sync.Mutex.Lock", "sync.WaitGroup.Wait",
        "sync.Cond.Wait", "sleep", "select", "IO wait",
    }  # fmt: skip
    assert (got["status"] == "syscall").sum() == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_labels_and_proven_leaks(version: str) -> None:
    got = parsed(version)
    labelled = got[got["labels"].notna()]
    assert labelled["labels"].tolist() == [{"path": "/a b]", "request": "r-42"}]
    leaked = got[got["leaked"]]
    # dumpgen's provable leaks: three senders and a generic receiver on channels nothing
    # else holds, always; a mutex, a WaitGroup and a Cond waiter, and main in an empty
    # select, when the GC's reachability walk gets there (it varies from run to run).
    assert (leaked["start_func"] == "main.leakSend.func1").sum() == 3
    assert "main.generic[...]" in set(leaked["start_func"])
    assert set(leaked["start_func"]) <= {
        "main.leakSend.func1", "main.generic[...]", "main.main.func1", "main.main.func2",
        "main.main.func3", "main.main",
    }  # fmt: skip
    assert (leaked["status"] == "leaked").all()
    assert (got.loc[~got["leaked"], "status"] != "leaked").all()
    assert leaked["leaked"].sum() == dump(version).decode().count("(leaked)")


@pytest.mark.parametrize("version", VERSIONS)
def test_creators_frames_and_ancestors(version: str) -> None:
    want = expected(dump(version).decode()).set_index("goid")
    got = parsed(version, stacks=True).set_index("goid")
    for goid, row in got.iterrows():
        creator = want.at[goid, "creator"]
        if not isinstance(creator, str):  # the main goroutine
            assert pd.isna(row["created_by"]) and pd.isna(row["parent_goid"])
            continue
        func = creator.removeprefix("created by ").split(" in goroutine ")[0]
        assert row["created_by"] == func
        assert row["parent_goid"] == int(creator.rsplit(" ", 1)[1])
        block = want.at[goid, "block"]
        loc = block[block.index(creator) + 1].strip().split(" +0x")[0]
        assert row["created_at"] == loc
        first_func = block[1].rsplit("(", 1)[0]
        assert row["top"] == f"{first_func} {block[2].strip().split(' +0x')[0]}"
        assert row["stack"][0] == row["top"]
    # A frame outside GOROOT is the program's own: sync.Mutex's waiter blocks in main.
    mutex = got[got["wait_reason"] == "sync.Mutex.Lock"].iloc[0]
    assert mutex["top"].startswith("internal/sync.runtime_SemacquireMutex ")
    assert mutex["user_top"].startswith("main.main.func1 ")
    assert got.loc[got["status"] == "syscall", "user_top"].isna().all()  # all in the runtime
    generic = got[got["start_func"] == "main.generic[...]"]
    assert len(generic) == 2
    deep = got[got["start_func"] == "main.deep"].iloc[0]
    assert "...21 frames elided..." in deep["stack"]
    assert sum(f.startswith("main.deep ") for f in deep["stack"]) == 100
    # tracebackancestors: the creator's stack at the go statement, in order.
    nested = got[(got["created_by"] == "main.nested")]
    assert len(nested) == 2
    for stack in nested["stack"]:
        origins = [f for f in stack if f.startswith("[originating from goroutine")]
        assert len(origins) >= 2
        assert stack[-1].startswith("main.main ")
    # args are gone from frames, so identical stacks are one interned tuple
    senders = got[got["start_func"] == "main.leakSend.func1"]["stack"].tolist()
    assert all(s is senders[0] for s in senders)


def test_labels_of_both_forms() -> None:
    text = dump("1.26.8").decode()
    assert 'labels:{"path": "/a b]", "request": "r-42"}' in text  # Go 1.26, quoted always
    text = dump("1.27.3").decode()
    assert '{path: "/a b]", request: "r-42"}' in text  # Go 1.27 quotes only when needed
    assert "{goleak_magic: agent}" in text


@pytest.mark.parametrize("version", VERSIONS)
def test_streaming_in_small_chunks_equals_whole(version: str) -> None:
    data = dump(version)
    p = DumpParser(stacks=True)
    seen = []
    p.progress = lambda n, b: seen.append((n, b))
    for i in range(0, len(data), 777):
        p.feed(data[i : i + 777])
    cols = p.finish()
    chunked = to_frame(cols, snapshot=1, time=pd.Timestamp(0, tz="UTC"), source="x")
    whole, _ = parse_dump(data, stacks=True)
    expect = to_frame(whole, snapshot=1, time=pd.Timestamp(0, tz="UTC"), source="x")
    pd.testing.assert_frame_equal(chunked, expect)
    assert seen[-1][1] == len(data)
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)


@pytest.mark.parametrize("version", VERSIONS)
def test_truncated_dump_keeps_the_whole_blocks(version: str) -> None:
    data = dump(version)
    text = data.decode()
    cut = text.index(".go:", len(text) // 2) + 2  # mid-line, inside some block
    cols, p = parse_dump(data[:cut])
    assert p.malformed == 1
    whole, _ = parse_dump(text[:cut].rsplit("\n\n", 1)[0] + "\n")
    assert list(cols["goid"]) == list(whole["goid"]) and len(cols["goid"]) > 3
    full, _ = parse_dump(data)
    assert set(cols["goid"]) < set(full["goid"])


def test_garbled_header_is_skipped_and_counted() -> None:
    text = dump("1.27.3").decode()
    first = text.index("\n\ngoroutine ") + 2
    end = text.index("\n", first)
    garbled = text[:first] + text[first:end].replace("[", "<", 1) + text[end:]
    cols, p = parse_dump(garbled)
    full, _ = parse_dump(text)
    assert p.malformed == 1
    assert len(cols["goid"]) == len(full["goid"]) - 1


@pytest.mark.parametrize("bad", [b"", b"hello world\n", b"<html>404 page not found</html>"])
def test_not_a_dump(bad: bytes) -> None:
    with pytest.raises(GoleakError, match="no goroutine dump"):
        parse_dump(bad)


@pytest.mark.parametrize("version", VERSIONS)
def test_leak_profile(version: str) -> None:
    text = (FIXTURES / f"goroutineleak_debug1_go{version}.txt").read_text()
    total, records = parse_leak_profile(text)
    assert total == int(text.splitlines()[0].rsplit(" ", 1)[1])
    assert sum(r.count for r in records) == total
    assert len(records) == text.count(" @")
    senders = [r for r in records if r.frames and r.frames[0].startswith("main.leakSend.func1 ")]
    assert len(senders) == 1 and senders[0].count == 3
    # every proven leak with a stack is one dumpgen set up (same functions as debug=2's)
    leaked_funcs = set(parsed(version).query("leaked")["user_top"].str.split(" ").str[0])
    record_funcs = {
        next(f for f in r.frames if "/src/" not in f.split(" ", 1)[1]).split(" ")[0]
        for r in records
        if r.frames
    }
    assert record_funcs <= leaked_funcs | {"main.main"}


def test_leak_profile_rejects_other_text() -> None:
    with pytest.raises(GoleakError, match="not a goroutineleak profile"):
        parse_leak_profile(dump("1.27.3").decode())


def test_parse_labels_unquotes_go_strings() -> None:
    assert parse_labels('"a\\"b": "c\\\\d", "e": "\\u00e9"') == {'a"b': "c\\d", "e": "é"}
    assert parse_labels("k: v, x.y/z: w_1") == {"k": "v", "x.y/z": "w_1"}
