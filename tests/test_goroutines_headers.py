"""``parse_header`` over every header form the captured dumps hold (tests/fixtures).

A table of literal expected values, each row naming the captured line it reads (so no
form is made up), beside a plain reading (string splitting) of every header of every
fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from goleak_magic.dumps.model import Header
from goleak_magic.dumps.text import parse_header

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS = sorted(FIXTURES.glob("exit_*.txt")) + sorted(FIXTURES.glob("goroutineleak_debug2_*.txt"))


def H(status: str, reason: str | None = None, **kw: object) -> Header:
    base: dict[str, object] = dict(
        wait_minutes=None, locked=False, leaked=False, labels=None, agent=False
    )
    return Header(status=status, wait_reason=reason, **{**base, **kw})  # type: ignore[arg-type]


# (fixture, the captured header line, what parse_header reads in it)
TABLE = [
    # GOTRACEBACK=system / SIGQUIT: gp= m= (mp=) before the brackets
    ("exit_scan_go1.26.8.txt", "goroutine 46 gp=0x6acf142f860 m=nil [chan receive (scan)]:",
     H("waiting", "chan receive", scan=True)),
    ("exit_scan_go1.27.3.txt", "goroutine 45 gp=0x176e3d2a5680 m=nil [chan receive (scan)]:",
     H("waiting", "chan receive", scan=True)),
    ("exit_scan_go1.26.8.txt",
     "goroutine 49 gp=0x6acf147a000 m=3 mp=0x6acf13c5008 [GC worker (active)]:",
     H("waiting", "GC worker (active)")),
    ("exit_panic_system_go1.27.3.txt",
     "goroutine 1 gp=0x200cbeb7a1e0 m=6 mp=0x200cbebfa008 [running]:", H("running")),
    ("exit_cgo_go1.26.8.txt", "goroutine 0 gp=0x5883c0 m=0 mp=0x589180 [idle]:", H("idle")),
    # a cgo callback's goroutine: locked to the C thread that called in
    ("exit_cgo_go1.26.8.txt",
     "goroutine 17 gp=0x2e4226752780 m=nil [chan receive, locked to thread]:",
     H("waiting", "chan receive", locked=True)),
    # testing/synctest
    ("exit_synctest_go1.26.8.txt", "goroutine 10 [chan receive (durable), synctest bubble 1]:",
     H("waiting", "chan receive", durable=True, bubble=1)),
    ("exit_synctest_go1.26.8.txt", "goroutine 11 [select (durable), synctest bubble 1]:",
     H("waiting", "select", durable=True, bubble=1)),
    # labels: Go 1.27 after the brackets (quoted only where needed), Go 1.26 inside
    ("exit_labels_go1.27.3.txt",
     'goroutine 8 gp=0x2366cf85ba40 m=nil [chan receive] {handler: /api/items, request: "r 2"}:',
     H("waiting", "chan receive", labels={"handler": "/api/items", "request": "r 2"})),
    ("goroutineleak_debug2_go1.27.3.txt",
     'goroutine 24 [chan receive, 1 minutes] {path: "/a b]", request: "r-42"}:',
     H("waiting", "chan receive", wait_minutes=1, labels={"path": "/a b]", "request": "r-42"})),
    ("goroutineleak_debug2_go1.26.8.txt",
     'goroutine 11 [chan receive, 1 minutes labels:{"path": "/a b]", "request": "r-42"}]:',
     H("waiting", "chan receive", wait_minutes=1, labels={"path": "/a b]", "request": "r-42"})),
    ("goroutineleak_debug2_go1.26.8.txt",
     'goroutine 1542 [running labels:{"goleak_magic": "agent"}]:',
     H("running", labels={"goleak_magic": "agent"}, agent=True)),
    # proven leaks, minutes, thread locks, syscalls
    ("goroutineleak_debug2_go1.26.8.txt", "goroutine 1 [select (no cases) (leaked)]:",
     H("leaked", "select (no cases)", leaked=True)),
    ("goroutineleak_debug2_go1.26.8.txt",
     "goroutine 10 [chan receive, 1 minutes, locked to thread]:",
     H("waiting", "chan receive", wait_minutes=1, locked=True)),
    ("goroutineleak_debug2_go1.27.3.txt", "goroutine 7 [syscall, 1 minutes]:",
     H("syscall", wait_minutes=1)),
]  # fmt: skip


@pytest.mark.parametrize(("fixture", "line", "want"), TABLE)
def test_header_table(fixture: str, line: str, want: Header) -> None:
    assert line in (FIXTURES / fixture).read_text().splitlines()  # a captured form
    rest = line.removesuffix(":").split(" ", 2)[2]
    assert parse_header(rest) == want


def plain(rest: str) -> dict[str, object]:
    """The header read by splitting strings, independently of the parser's regexes."""
    inside = rest[rest.index("[") + 1 :]
    after = inside[inside.rindex("]") + 1 :].strip() if "] {" in inside else ""
    inside = inside[: inside.rindex("]")] if not after else inside[: inside.rindex("] {")]
    inside = inside.split(" labels:{")[0]
    parts = inside.split(", ")
    state, marks = parts[0], []
    for mark in ("(durable)", "(scan)", "(leaked)"):  # printed in the reverse order
        if state.endswith(" " + mark):
            state, marks = state[: -len(mark) - 1], [*marks, mark]
    words = {"idle", "runnable", "running", "syscall", "waiting", "dead", "copystack",
             "preempted", "waiting for cgo callback"}  # fmt: skip
    minutes = [int(p.split(" ")[0]) for p in parts[1:] if p.endswith((" minutes", " minute"))]
    bubble = [int(p.rsplit(" ", 1)[1]) for p in parts[1:] if p.startswith("synctest bubble ")]
    return {
        "status": "leaked" if "(leaked)" in marks else (state if state in words else "waiting"),
        "wait_reason": None if state in words else state,
        "wait_minutes": minutes[0] if minutes else None,
        "locked": "locked to thread" in parts[1:],
        "leaked": "(leaked)" in marks,
        "scan": "(scan)" in marks,
        "durable": "(durable)" in marks,
        "bubble": bubble[0] if bubble else None,
        "labelled": "labels:{" in rest or bool(after),
    }


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_every_captured_header_reads_as_plainly_read(path: Path) -> None:
    headers = [ln for ln in path.read_text().splitlines() if ln.startswith("goroutine ")]
    headers = [ln for ln in headers if ln.endswith(":") and "[" in ln]
    assert headers
    for line in headers:
        rest = line.removesuffix(":").split(" ", 2)[2]
        got = parse_header(rest)
        assert got is not None, line
        want = plain(rest)
        assert want.pop("labelled") == (got.labels is not None), line
        assert {k: getattr(got, k) for k in want} == want, line


def test_every_form_is_in_the_fixtures() -> None:
    text = "\n".join(p.read_text() for p in DUMPS)
    for form in ("(scan)", "(durable)", "synctest bubble ", " gp=", " mp=", "(leaked)",
                 "locked to thread", " minutes", "labels:{", "] {"):  # fmt: skip
        assert form in text, form


@pytest.mark.parametrize(
    "rest", ["", "[", "running", "gp=0x1 [running", "[running] trailing", "<running>"]
)
def test_malformed_headers(rest: str) -> None:
    assert parse_header(rest) is None
