"""The schedtrace parser on stderr captured from real Go runs (tests/fixtures/README.md).

Every expectation comes from ``read_fixture``: an independent, line-by-line reading of
the fixture with plain string methods (no code shared with the parser), which applies
the same documented rules: a line starting with ``SCHED `` ends a tick and starts one if
its ``Nms`` survived and is not earlier than the last row's; a number is printed whole,
so the fields before a cut are good; P/M/G lines count only when whole; whole ones with
no tick are dropped as malformed.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from goleak_magic.schedtrace import MAX_LINE, Parsed, SchedTraceParser, parse_summary

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALL = sorted(p.name for p in FIXTURES.glob("schedtrace_*.txt"))
CLEAN = [n for n in ALL if "chatty" not in n]
DETAIL = [n for n in ALL if "_detail_" in n]
SUMMARY_KEYS = [
    "gomaxprocs",
    "idleprocs",
    "threads",
    "spinningthreads",
    "needspinning",
    "idlethreads",
    "runqueue",
]
# G status -> column; 0 idle, 6 dead and 11 dead-extra are not live; others are g_other
STATE = {
    1: "g_runnable",
    2: "g_running",
    3: "g_syscall",
    4: "g_waiting",
    8: "g_waiting",  # copystack
    9: "g_waiting",  # preempted
    10: "g_leaked",
}
COUNT_KEYS = ["goroutines", *sorted(set(STATE.values())), "g_other"]
ROW_KEYS = ["t_ms", *SUMMARY_KEYS, "local_runq", "runq_per_p", *COUNT_KEYS]


def load(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    assert data.endswith(b"\n")
    return data


# ---- the independent reading -----------------------------------------------------------
def leading_int(s: str) -> int | None:
    digits = ""
    for ch in s:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def is_id(s: str) -> bool:
    return s == "nil" or is_int(s)


def read_summary(line: str) -> tuple[dict[str, Any] | None, bool, str | None]:
    """(row or None, complete?, "plain"/"detail"/None) for a line starting with SCHED."""
    rest = line[len("SCHED ") :]
    t_ms = leading_int(rest)
    if t_ms is None:
        return None, False, None
    row: dict[str, Any] = {"t_ms": t_ms, **dict.fromkeys(SUMMARY_KEYS)}
    rest = rest[len(str(t_ms)) :]
    if not rest.startswith("ms: "):
        return row, False, None
    tokens = rest[len("ms: ") :].split(" ")
    i = 0
    for key in SUMMARY_KEYS:
        k, _, v = tokens[i].partition("=") if i < len(tokens) else ("", "", "")
        if k != key:
            if key == "needspinning":
                continue  # Go 1.19 has none
            return row, False, None
        n = leading_int(v)
        if n is None:
            return row, False, None
        row[key] = n
        if str(n) != v:  # cut right after the number
            return row, False, None
        i += 1
    tail = tokens[i:]
    if tail and tail[0].startswith("gcwaiting="):
        keys = [t.partition("=")[0] for t in tail]
        return row, keys == ["gcwaiting", "nmidlelocked", "stopwait", "sysmonwait"], "detail"
    text = " ".join(tail)
    if not text.startswith("[") or "]" not in text:
        return row, False, None
    plist, _, after = text[1:].partition("]")
    if not all(x.isdigit() for x in plist.split()):
        return row, False, None
    runq = tuple(int(x) for x in plist.split())
    row["runq_per_p"] = runq
    row["local_runq"] = sum(runq)
    ok = after == "" or (
        after.startswith(" schedticks=[")
        and after.endswith("]")
        and all(x.isdigit() for x in after[len(" schedticks=[") : -1].split())
    )
    return row, ok, "plain"


def read_detail(line: str) -> tuple | str | None:
    """("G", status, reason) / ("P", runqsize) / ("M",) for a whole detail line, "cut" for
    one that starts like a detail line ("  G12:") but is not whole, None otherwise."""
    if not line.startswith(("  P", "  M", "  G")):
        return None
    i = 3
    while i < len(line) and line[i].isdigit():
        i += 1
    if i == 3 or not line[i:].startswith(":"):
        return None
    if not line[i:].startswith(": "):
        return "cut"
    kind, rest = line[2], line[i + 2 :]
    if kind == "G":
        status, paren, after = rest.removeprefix("status=").partition("(")
        reason, sep, links = after.rpartition(") m=")
        m, sep2, lockedm = links.partition(" lockedm=")
        ok = rest.startswith("status=") and status.isdigit() and paren and sep and sep2
        return ("G", int(status), reason) if ok and is_id(m) and is_id(lockedm) else "cut"
    if kind == "P":
        pairs = [t.partition("=") for t in rest.split(" ")]
        names = ["status", "schedtick", "syscalltick", "m", "runqsize", "gfreecnt", "timerslen"]
        ok = [k for k, _, _ in pairs] == names and is_id(pairs[3][2])
        ok = ok and all(is_int(v) for k, _, v in pairs if k != "m")
        return ("P", int(pairs[4][2])) if ok else "cut"
    head, sep, after = rest.partition(" preemptoff=")
    _, sep2, tail = after.rpartition(" locks=")
    hp = [t.partition("=") for t in head.split(" ")]
    tp = [t.partition("=") for t in ("locks=" + tail).split(" ")]
    ok = sep and sep2 and [k for k, _, _ in hp] == ["p", "curg", "mallocing", "throwing"]
    ok = ok and [k for k, _, _ in tp] == ["locks", "dying", "spinning", "blocked", "lockedg"]
    ok = ok and all(is_id(v) for _, _, v in hp[:2] + tp[4:])
    ok = ok and all(is_int(v) for _, _, v in hp[2:] + tp[:2])
    ok = ok and all(v in ("true", "false") for _, _, v in tp[2:4])
    return ("M",) if ok else "cut"


def read_fixture(data: bytes) -> Parsed:
    """What the parser must produce for ``data`` (complete lines), read independently."""
    out = Parsed()
    tick: dict[str, Any] | None = None
    last_t_ms = 0

    def close() -> None:
        if tick is None:
            return
        row, kind, gs, ps = tick["row"], tick["kind"], tick["g"], tick["p"]
        if kind == "detail" or gs or ps or tick["m"]:
            counts = dict.fromkeys(COUNT_KEYS, 0)
            reasons: Counter[str] = Counter()
            for status, reason in gs:
                status &= ~0x1000
                if status in (0, 6, 11):
                    continue
                counts["goroutines"] += 1
                counts[STATE.get(status, "g_other")] += 1
                if STATE.get(status) in ("g_waiting", "g_leaked"):
                    reasons[reason] += 1
            row.update(counts)
            if ps and row["gomaxprocs"] in (None, len(ps)):
                row["runq_per_p"] = tuple(ps)
                row["local_runq"] = sum(ps)
            out.waits += [
                {"t_ms": row["t_ms"], "wait_reason": r, "count": n}
                for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])
            ]
        out.sched.append(row)

    for line in data.decode("utf-8", "replace").split("\n")[:-1]:
        if line.startswith("SCHED "):
            close()
            tick = None
            row, complete, kind = read_summary(line)
            if row is not None and row["t_ms"] < last_t_ms:
                row, complete = None, False
            if not complete:
                out.malformed += 1
                out.other.append(line)
            if row is None:
                continue
            last_t_ms = row["t_ms"]
            if kind == "plain" or "runq_per_p" in row:
                out.sched.append(row)
                continue
            tick = {"row": row, "kind": kind, "g": [], "p": [], "m": 0}
            continue
        d = read_detail(line)
        if d is None:
            out.other.append(line)
        elif d == "cut":
            out.malformed += 1
            out.other.append(line)
        elif tick is None:
            out.malformed += 1  # whole, but its tick is gone: dropped
        elif d[0] == "G":
            tick["g"].append(d[1:])
        elif d[0] == "P":
            tick["p"].append(d[1])
        else:
            tick["m"] += 1
    close()
    return out


# ---- helpers ------------------------------------------------------------------------------
def parse(chunks: list[bytes]) -> Parsed:
    p = SchedTraceParser()
    out = Parsed()
    for c in chunks:
        out.extend(p.feed(c))
    out.extend(p.flush())
    assert not p.pending
    return out


def rows(parsed: Parsed) -> list[dict[str, Any]]:
    return [{k: r.get(k) for k in ROW_KEYS} for r in parsed.sched]


def waits_by_tick(parsed: Parsed) -> list[tuple[int, dict[str, int]]]:
    by: dict[int, dict[str, int]] = {}
    for w in parsed.waits:
        by.setdefault(w["t_ms"], {})[w["wait_reason"]] = w["count"]
    return sorted(by.items())


def assert_same(got: Parsed, want: Parsed) -> None:
    assert rows(got) == rows(want)
    assert waits_by_tick(got) == waits_by_tick(want)
    assert got.other == want.other
    assert got.malformed == want.malformed


def random_chunks(data: bytes, seed: int, biggest: int) -> list[bytes]:
    rng = random.Random(seed)
    chunks, i = [], 0
    while i < len(data):
        n = rng.randint(1, biggest)
        chunks.append(data[i : i + n])
        i += n
    return chunks


def last_tick_statuses(data: bytes) -> list[int]:
    """The status of every G line of the fixture's last tick."""
    tick = data[data.rindex(b"SCHED ") :]
    return [int(s) for s in re.findall(rb"(?m)^  G\d+: status=(\d+)\(", tick)]


# ---- every fixture, against the independent reading ----------------------------------------
def test_fixtures_cover_each_go_version_and_stay_small() -> None:
    for version in ("1.22.12", "1.26.8", "1.27.3"):
        assert {f"schedtrace_go{version}.txt", f"schedtrace_detail_go{version}.txt"} <= set(ALL)
    assert all((FIXTURES / n).stat().st_size < 300_000 for n in ALL)


@pytest.mark.parametrize("name", ALL)
def test_fixture_matches_independent_reading(name: str) -> None:
    data = load(name)
    want = read_fixture(data)
    got = parse([data])
    assert_same(got, want)
    assert len(got.sched) >= 3
    if name in CLEAN:
        assert got.other == [] and got.malformed == 0
        assert all(r["gomaxprocs"] == len(r["runq_per_p"]) for r in got.sched)
    if name in DETAIL:
        assert all(r["goroutines"] is not None for r in got.sched)
        for r in got.sched:  # waits sum to the blocked goroutines of the tick
            n = sum(w["count"] for w in got.waits if w["t_ms"] == r["t_ms"])
            assert n == r["g_waiting"] + r["g_leaked"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", [1, 2])
def test_any_chunking_gives_the_same_result(name: str, seed: int) -> None:
    data = load(name)
    whole = parse([data])
    assert_same(parse(random_chunks(data, seed, 4096)), whole)
    assert_same(parse(random_chunks(data, seed, 40)), whole)


@pytest.mark.parametrize(
    "name", ["schedtrace_detail_leaked_go1.27.3.txt", "schedtrace_detail_chatty_go1.26.8.txt"]
)
def test_byte_by_byte_gives_the_same_result(name: str) -> None:
    data = load(name)
    assert_same(parse([data[i : i + 1] for i in range(len(data))]), parse([data]))


# ---- forms of each Go version ----------------------------------------------------------------
def test_go119_old_forms_give_na_and_count_minus_one_links() -> None:
    plain, detail = load("schedtrace_go1.19.13.txt"), load("schedtrace_detail_go1.19.13.txt")
    assert b"needspinning" not in plain + detail
    assert b" m=-1 lockedm=-1\n" in detail and b"gcwaiting=0 " in detail
    for data in (plain, detail):
        got = parse([data])
        assert got.malformed == 0 and got.other == []
        assert all(r["needspinning"] is None for r in got.sched)
        assert all(r["gomaxprocs"] == 2 and r["threads"] > 0 for r in got.sched)
    last = parse([detail]).sched[-1]
    live = [s for s in last_tick_statuses(detail) if s & ~0x1000 not in (0, 6, 11)]
    assert last["goroutines"] == len(live) >= 300


@pytest.mark.parametrize("version", ["1.22.12", "1.26.8", "1.27.3"])
def test_supported_versions_have_every_field(version: str) -> None:
    plain = load(f"schedtrace_go{version}.txt")
    # Go 1.22 prints "[0 0]" without schedticks; 1.26 and 1.27 "[ 0 0 ] schedticks=[...]"
    assert (b"schedticks=[" in plain) == (version != "1.22.12")
    assert (b"] schedticks" not in plain) == (b" [0 0]\n" in plain)
    for name in (f"schedtrace_go{version}.txt", f"schedtrace_detail_go{version}.txt"):
        got = parse([load(name)])
        for r in got.sched:
            assert all(r[k] is not None for k in SUMMARY_KEYS)
            assert r["runq_per_p"] is not None and r["local_runq"] == sum(r["runq_per_p"])


def test_detail_counts_match_the_spawned_goroutines() -> None:
    # spawn -n 300 parks 300 goroutines on "chan receive"; by the last tick all exist.
    for version in ("1.19.13", "1.22.12", "1.26.8", "1.27.3"):
        got = parse([load(f"schedtrace_detail_go{version}.txt")])
        last = got.sched[-1]
        waits = {w["wait_reason"]: w["count"] for w in got.waits if w["t_ms"] == last["t_ms"]}
        assert waits["chan receive"] == 300
        assert 300 < last["goroutines"] < 320  # plus the runtime's own


@pytest.mark.parametrize("version", ["1.26.8", "1.27.3"])
def test_leaked_goroutines_are_counted(version: str) -> None:
    data = load(f"schedtrace_detail_leaked_go{version}.txt")
    got = parse([data])
    # spawn -drop-half: 150 of the 300 are on a channel nothing can reach
    assert data.count(b": status=10(chan receive) ") == 150 * len(got.sched)
    assert all(r["g_leaked"] == 150 for r in got.sched)
    # waits counts leaked goroutines too: all 300 wait on "chan receive"
    for r in got.sched:
        waits = {w["wait_reason"]: w["count"] for w in got.waits if w["t_ms"] == r["t_ms"]}
        assert waits["chan receive"] == 300


def test_scan_bit_is_masked() -> None:
    data = load("schedtrace_detail_gcscan_go1.26.8.txt")
    scanned = re.findall(rb"status=(4\d\d\d)\(", data)
    assert scanned and all(int(s) & 0x1000 for s in scanned)
    got = parse([data])
    want = read_fixture(data)
    assert rows(got) == rows(want)
    assert sum(r["g_other"] for r in got.sched) == 0  # 0x1004 is waiting, not unknown


def test_dead_and_dead_extra_are_not_live() -> None:
    data = load("schedtrace_detail_leakyservice_go1.27.3.txt")
    assert b": status=6()" in data and b": status=11()" in data
    got = parse([data])
    statuses = last_tick_statuses(data)
    live = [s for s in statuses if s not in (0, 6, 11)]
    assert got.sched[-1]["goroutines"] == len(live) < len(statuses)
    reasons = {w["wait_reason"] for w in got.waits}
    assert {"IO wait", "select", "chan send"} <= reasons


def test_unknown_statuses_go_to_g_other() -> None:
    # The runtime has no status 5 or 7 today; relabel real G lines to stand for a future one.
    data = load("schedtrace_detail_go1.27.3.txt")
    relabeled = data.replace(b": status=4(chan receive)", b": status=7(chan receive)", 40)
    relabeled = relabeled.replace(b": status=4(chan receive)", b": status=4103(chan receive)", 2)
    got, orig = parse([relabeled]), parse([data])
    assert_same(got, read_fixture(relabeled))
    assert sum(r["g_other"] for r in got.sched) == 42
    assert [r["goroutines"] for r in got.sched] == [r["goroutines"] for r in orig.sched]


def test_parse_summary_of_each_form() -> None:
    for name in ALL:
        for line in load(name).split(b"\n"):
            if line.startswith(b"SCHED "):
                row, complete, _ = read_summary(line.decode())
                got = parse_summary(line)
                assert (got is not None) == complete
                if complete:
                    assert {k: got.get(k) for k in row} == row
    assert parse_summary(b"SCHED garbage") is None
    assert parse_summary(b"chatty 5") is None


# ---- the program's own stderr, garbage and cut lines ------------------------------------------
@pytest.mark.parametrize(
    "name", ["schedtrace_chatty_go1.26.8.txt", "schedtrace_detail_chatty_go1.26.8.txt"]
)
def test_interleaved_program_lines_pass_through_in_order(name: str) -> None:
    data = load(name)
    got = parse(random_chunks(data, 7, 2000))
    assert got.malformed > 0  # the fixture really has cut runtime lines
    whole = [int(ln.split()[1]) for ln in got.other if re.fullmatch(r"chatty \d+", ln)]
    assert whole == sorted(whole) and len(whole) > 1000
    # Every line the program wrote is somewhere in what was passed through, in order,
    # including those glued to the tail of a runtime line.
    written = [int(n) for n in re.findall(rb"chatty (\d+)\n", data)]
    passed = [int(n) for ln in got.other for n in re.findall(r"chatty (\d+)$", ln)]
    assert passed == written == list(range(written[0], written[0] + len(written)))


def test_real_garbage_sched_lines_are_malformed_not_fatal() -> None:
    data = load("schedtrace_chatty_go1.26.8.txt")
    garbage = [ln for ln in data.split(b"\n") if ln.startswith(b"SCHED chatty")]
    cut = [ln for ln in data.split(b"\n") if ln.startswith(b"SCHED ") and b"chatty" in ln]
    assert garbage and len(cut) > len(garbage)
    got = parse([data])
    assert got.malformed == len(cut)
    for ln in cut:
        assert ln.decode() in got.other
    # A SCHED line cut after its Nms still gives a row; "SCHED chatty" does not.
    assert len(got.sched) == sum(1 for ln in data.split(b"\n") if re.match(rb"SCHED \d", ln))


def test_random_garbage_never_raises() -> None:
    rng = random.Random(3)
    data = load("schedtrace_detail_chatty_go1.26.8.txt")
    pieces = [b"SCHED ", b"  G1: ", b"  P0: status=", b"(", b")", b"\n", b"ms:", b"\xff\xfe"]
    noisy = bytearray(data)
    for _ in range(3000):
        at = rng.randrange(len(noisy))
        noisy[at:at] = rng.choice(pieces) if rng.random() < 0.7 else rng.randbytes(5)
    got = parse(random_chunks(bytes(noisy), 4, 3000))
    assert_same(got, parse([bytes(noisy)]))
    assert got.malformed > 0
    assert all(isinstance(r["t_ms"], int) for r in got.sched)


def test_truncated_last_line_is_handled_at_flush() -> None:
    data = load("schedtrace_detail_go1.26.8.txt")
    last = data.rindex(b"\n  G", 0, len(data) - 1) + 1
    cut = data[: last + 12]  # stops inside the last G line
    p = SchedTraceParser()
    fed = p.feed(cut)
    whole = read_fixture(data)
    assert len(fed.sched) == len(whole.sched) - 1  # the last tick is still open
    assert p.pending and p.open_t_ms is not None
    tail = p.flush()
    assert p.open_t_ms is None
    assert len(tail.sched) == 1 and tail.malformed == 1
    assert tail.other == [cut[last:].decode()]  # "  G312: stat", passed through
    assert rows(tail) == rows(read_fixture(data[:last]))[-1:]


def test_a_programs_end_drops_its_open_detail_tick() -> None:
    # A stop lands while the runtime prints a tick's G lines: that tick is not a row
    # (its count would read as a fall); the ticks before it are whole.
    data = load("schedtrace_detail_leakyservice_go1.27.3.txt")
    last = data.rindex(b"\nSCHED ") + 1
    g_lines = [m.start() for m in re.finditer(rb"\n  G", data[last:])]
    cut = data[: last + g_lines[len(g_lines) // 2] + 1]  # half of the last tick's G lines
    whole = parse([data])
    p = SchedTraceParser()
    out = p.feed(cut)
    assert len(out.sched) == len(whole.sched) - 1
    out.extend(p.end())
    assert not p.pending and rows(out) == rows(whole)[:-1]
    assert waits_by_tick(out) == waits_by_tick(whole)[:-1]
    p = SchedTraceParser()  # flush (a file's end) still records it, as far as it goes
    flushed = p.feed(cut)
    flushed.extend(p.flush())
    assert len(flushed.sched) == len(whole.sched)
    assert flushed.sched[-1]["goroutines"] < whole.sched[-1]["goroutines"]


def test_cut_plain_sched_line_at_flush_gives_a_partial_row() -> None:
    data = load("schedtrace_go1.27.3.txt")
    start = data.rindex(b"SCHED ", 0, len(data) - 1)
    cut = data[: data.index(b" threads=", start)]
    got = parse([cut])
    last = got.sched[-1]
    assert last["gomaxprocs"] == 2 and last["idleprocs"] is not None
    assert last["threads"] is None and last.get("runq_per_p") is None
    assert got.malformed == 1 and got.other == [cut[start:].decode()]


def test_a_partial_program_line_is_passed_on_a_quiet_spell() -> None:
    sched = load("schedtrace_go1.26.8.txt").split(b"\n")[1]
    program = load("schedtrace_chatty_go1.26.8.txt").split(b"\n")[0]
    assert program.startswith(b"chatty ")
    head = sched[: sched.index(b" threads=")]  # "SCHED 53ms: gomaxprocs=2 idleprocs=2"
    p = SchedTraceParser()
    assert p.feed(head[:9]).other == []
    assert p.feed(head[9:] + b"\n" + program).other == [head.decode()]
    assert p.partial_line and not p.holding
    out = p.idle()
    assert out.other == [program.decode()] and out.sched == []
    assert not p.partial_line and p.open_t_ms == parse_summary(sched)["t_ms"]  # still open
    out = p.flush()
    assert [r["idleprocs"] for r in out.sched] == [parse_summary(sched)["idleprocs"]]


@pytest.mark.parametrize(
    "name", ["schedtrace_detail_leakyservice_go1.27.3.txt", "schedtrace_go1.26.8.txt"]
)
def test_a_quiet_spell_anywhere_in_the_runtimes_output_changes_nothing(name: str) -> None:
    # A debugger halts the program mid-print: whatever quiet spells fall between or
    # inside SCHED, P, M and G lines, the result is that of the uninterrupted output.
    data = load(name)
    rng = random.Random(7)
    starts = [m.start() + 1 for m in re.finditer(rb"\n(?:SCHED |  [PMG]\d)", data)]
    p, out, at = SchedTraceParser(), Parsed(), 0
    for start in sorted(rng.sample(starts, min(40, len(starts)))):
        end = data.index(b"\n", start)
        for cut in sorted({start, start + 1, start + 4, rng.randrange(start + 1, end)}):
            out.extend(p.feed(data[at:cut]))
            at = cut
            assert p.holding == (cut > start) and not p.partial_line
            assert p.idle() == Parsed()
    out.extend(p.feed(data[at:]))
    out.extend(p.flush())
    assert_same(out, parse([data]))
    assert out.malformed == 0 and out.other == []


def test_detail_lines_without_their_tick_are_dropped_and_counted() -> None:
    data = load("schedtrace_detail_go1.27.3.txt")
    second = data.index(b"\nSCHED ") + 1
    headless = data[data.index(b"\n") + 1 :]  # the first tick lost its SCHED line
    got = parse([headless])
    orphans = data[:second].count(b"\n") - 1
    assert got.malformed == orphans and got.other == []
    assert rows(got) == rows(parse([data]))[1:]


def test_an_endless_line_is_handed_over() -> None:
    p = SchedTraceParser()
    out = Parsed()
    for _ in range(5):
        out.extend(p.feed(b"x" * (MAX_LINE // 4)))
    assert len(out.other) == 1 and len(out.other[0]) == 5 * (MAX_LINE // 4) > MAX_LINE
    assert p.feed(b"tail\n").other == ["tail"]


def test_a_cut_p_line_drops_that_ticks_per_p_list() -> None:
    # Splice a real program line into a real P line, as the runtime's small writes allow.
    data = load("schedtrace_detail_go1.26.8.txt")
    program = load("schedtrace_chatty_go1.26.8.txt").split(b"\n")[0] + b"\n"
    at = data.index(b" gfreecnt=", data.rindex(b"\n  P1: ")) + 1
    spliced = data[:at] + program + data[at:]
    got = parse([spliced])
    assert_same(got, read_fixture(spliced))
    assert "runq_per_p" not in got.sched[-1] and "local_runq" not in got.sched[-1]
    assert all(r["runq_per_p"] == (0, 0) for r in got.sched[:-1])
    assert got.malformed == 1 and len(got.other) == 2


def test_a_sched_line_from_the_past_makes_no_row() -> None:
    # A real SCHED line, complete or cut, seen again after later ticks: not the runtime's.
    data = load("schedtrace_go1.26.8.txt")
    cut = load("schedtrace_chatty_go1.26.8.txt").split(b"\n")
    cut_line = next(ln for ln in cut if ln.startswith(b"SCHED ") and b"chatty" in ln)
    replayed = data + data.split(b"\n")[3] + b"\n" + cut_line + b"\n"
    got = parse([replayed])
    assert rows(got) == rows(parse([data]))
    assert got.malformed == 2 and got.other == [data.split(b"\n")[3].decode(), cut_line.decode()]
