"""Suspects on the shipped examples, through %schedsnap and %goleak in a real IPython shell.

Each leaky example must rank its true leak site (the go statement) first, blocked where
the bug blocks it; the healthy ones must have nothing at or above the threshold. Lines
are looked up in the examples' own source, so an edit there cannot silently pass.
The analysis on captured dumps alone (no go needed) is in test_analysis.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import goleak_magic
from goleak_magic import analysis
from goleak_magic.build import examples_dir
from goleak_magic.session import Session
from goleak_magic.target import Target

from .conftest import wait_for


def line_of(example: str, pattern: str, after: str = "") -> int:
    """The first line of ``example``'s main.go matching ``pattern`` after ``after``."""
    lines = (examples_dir() / example / "main.go").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if after in ln) if after else 0
    return next(i + 1 for i in range(start, len(lines)) if re.search(pattern, lines[i]))


@dataclass
class Leak:
    example: str
    args: str
    creator: str  # the function holding the go statement
    go_stmt: tuple[str, str]  # (pattern, after) locating the go statement
    reason: str  # the wait reason where it blocks
    blocked_in: str  # the function it blocks in
    block_line: tuple[str, str]  # (pattern, after) locating that line

    @property
    def site(self) -> str:
        line = line_of(self.example, *self.go_stmt)
        return f"{self.creator} {examples_dir() / self.example / 'main.go'}:{line}"

    @property
    def blocked_at(self) -> str:
        line = line_of(self.example, *self.block_line)
        where = examples_dir() / self.example / "main.go"
        return f"{self.reason} at {self.blocked_in} {where}:{line}"


LEAKS = [
    Leak("leakyservice", "", "main.handler", (r"go func\(\)", "func handler"), "chan send",
         "main.handler.func1", (r"result <- query", "")),
    Leak("forgottenticker", "", "main.startPoller", (r"go func\(\)", "func startPoller"),
         "select", "main.startPoller.func1", (r"select \{", "func startPoller")),
    Leak("spawn", "-n 200 -drop-half", "main.main", (r"go park\(ch\)", ""), "chan receive",
         "main.park", (r"<-ch", "func park")),
    Leak("contextleak", "-mode nocancel", "main.nocancelJob", (r"go watchProgress", ""),
         "chan receive", "main.watchProgress", (r"<-ctx.Done\(\)", "func watchProgress")),
    Leak("contextleak", "-mode unwatched", "main.unwatchedJob", (r"go fetch", ""),
         "chan send", "main.fetch", (r"out <- id // blocks", "")),
    Leak("wgdeadlock", "-mode waitgroup", "main.main", (r"go start\(\)", ""),
         "sync.WaitGroup.Wait", "main.waitgroupBatch", (r"wg.Wait\(\)", "func waitgroupBatch")),
    Leak("wgdeadlock", "-mode mutex", "main.mutexBatch", (r"go b.mutexWorker", ""),
         "sync.Mutex.Lock", "main.(*batch).mutexWorker", (r"b.mu.Lock\(\)", "mutexWorker()")),
    Leak("burstyservice", "", "main.sendAudit", (r"go func\(\)", "func sendAudit"),
         "chan send", "main.sendAudit.func1", (r"events <- id // blocks", "")),
]  # fmt: skip
HEALTHY = ["healthy", "timeafter"]
LEAKY_EXAMPLES = {leak.example for leak in LEAKS}


def reported(t: Target) -> int:
    """The goroutine count the example printed last."""
    lines = [ln for ln in t.log_lines(20, "stdout") if ln.startswith("goroutines=")]
    return int(lines[-1].removeprefix("goroutines=")) if lines else 0


def test_every_shipped_example_is_covered() -> None:
    shipped = {p.name for p in examples_dir().iterdir() if (p / "main.go").is_file()}
    assert shipped == LEAKY_EXAMPLES | set(HEALTHY) | {"fleetservice"}  # see test_fleet


def run_series(ip: InteractiveShell, example: str, args: str, name: str) -> None:
    ip.run_line_magic("golaunch", f"example:{example} --name {name} -- {args}")
    t = goleak_magic.session().targets[name]
    wait_for(lambda: any("goroutines=" in ln for ln in t.log_lines(20, "stdout")),
             what="the example's first report")  # fmt: skip
    ip.run_line_magic("schedsnap", f"{name} --every 0.5 --count 6 -o series")
    series = ip.user_ns["series"]
    assert series.wait(60) and series.error is None and len(series.snapshots) == 6


@pytest.mark.parametrize("leak", LEAKS, ids=lambda x: f"{x.example} {x.args}".strip())
def test_true_leak_site_ranks_first(ip: InteractiveShell, leak: Leak) -> None:
    run_series(ip, leak.example, leak.args, "ex")
    ip.run_line_magic("goleak", "suspects ex -o sus")
    sus: pd.DataFrame = ip.user_ns["sus"]
    top = sus.iloc[0]
    assert top["site"] == leak.site, sus[["site", "score", "evidence"]].head(3).to_string()
    assert top["blocked_at"] == leak.blocked_at
    assert top["score"] >= analysis.SUSPECT_THRESHOLD
    assert top["alive"] >= top["persisted"] > 0
    assert leak.reason in top["evidence"]
    # The report names the same site and place, with a stack from that site.
    rep = ip.run_line_magic("goleak", "report ex")
    text = rep.text()
    assert text.startswith("Leak suspect in ex") and top["blocked_at"] in text
    assert any(leak.blocked_in in f for f in top["example_stack"])


@pytest.mark.parametrize("example", HEALTHY)
def test_healthy_has_nothing_above_threshold(ip: InteractiveShell, example: str) -> None:
    run_series(ip, example, "", "ok")
    sus = ip.run_line_magic("goleak", "suspects ok")
    assert len(sus) and (sus["score"] < analysis.SUSPECT_THRESHOLD).all(), sus.head().to_string()
    assert ip.run_line_magic("goleak", "report ok").text().startswith("No leak suspect in ok")


def test_suspects_takes_its_own_snapshots(ip: InteractiveShell) -> None:
    ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 50 -drop-half")
    t = goleak_magic.session().targets["sp"]
    wait_for(lambda: t.log_lines(5, "stdout"), what="spawn's report")
    sus = ip.run_line_magic("goleak", "suspects sp")  # none yet: it takes three
    assert len(t.snapshots) == 3
    assert sus.iloc[0]["leaked_proven"] == 25 and sus.iloc[0]["score"] == 25


def test_schedsnap_magic(
    ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("golaunch", "example:spawn --name sn -- -n 30 -every 30ms")
    df = ip.run_line_magic("schedsnap", "sn --stacks")
    out = capsys.readouterr().out
    assert "snapshot 1 of sn via agent" in out
    assert isinstance(df, pd.DataFrame) and df["stack"].map(len).gt(0).all()
    assert ip.run_line_magic("schedsnap", "sn -o snap2") is None
    assert ip.user_ns["snap2"]["snapshot"].eq(2).all()
    d = ip.run_line_magic("schedsnap", "--diff 1 2")  # the one target with snapshots
    assert d.a == 1 and d.b == 2 and len(d.gone) == 0
    assert len(d.new) == len(ip.user_ns["snap2"]) - len(df)
    path = tmp_path / "report.html"
    ip.run_line_magic("goleak", f"report sn --html {path}")
    assert "goleak report: sn" in path.read_text()
    for bad, msg in [
        ("", "say which target"),
        ("nosuch", "no target named"),
        ("sn --source gdb", "invalid choice"),
        ("sn --every 1", "go together"),
        ("sn --diff 1 7", "no snapshot 7"),
        ("sn -o 1x", "variable name"),
    ]:
        with pytest.raises(UsageError, match=msg):
            ip.run_line_magic("schedsnap", bad)
    with pytest.raises(UsageError, match="no target named"):
        ip.run_line_magic("goleak", "suspects nosuch")


def test_one_then_two_snapshots(sess: Session) -> None:
    """One snapshot shows no trend; a second one, an interval later, shows what stayed."""
    ticker = next(x for x in LEAKS if x.example == "forgottenticker")
    t = sess.launch("example:forgottenticker")
    wait_for(lambda: any("goroutines=" in ln for ln in t.log_lines(20, "stdout")),
             what="the first report")  # fmt: skip
    sess.snapshot(t.name)
    one = t.suspects
    top = one[one["site"] == ticker.site].iloc[0]
    assert pd.isna(top["growth_per_min"]) and top["score"] == 0  # nothing proven, no trend
    assert top["evidence"].startswith("one snapshot, no trend yet")
    grown = top["alive"] + 20
    wait_for(lambda: reported(t) >= grown, what=f"{grown} goroutines alive")
    sess.snapshot(t.name)
    two = t.suspects
    assert len(t.snapshots) == 2
    assert two.iloc[0]["site"] == ticker.site
    assert two.iloc[0]["score"] >= analysis.SUSPECT_THRESHOLD
