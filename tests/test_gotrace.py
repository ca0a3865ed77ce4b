"""%gotrace through a real IPython shell on real programs: it agrees with %dlvtrace (both
on at once), the flight recorder frozen by hand and on a spike, trace files and live
/debug/pprof/trace on Go 1.26 and 1.27, recordings, and bad input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import goleak_magic
from goleak_magic import creations, gotrace
from goleak_magic.session import Session
from goleak_magic.settings import Settings
from goleak_magic.viz import model

from .conftest import PROGRAMS, wait_for
from .trace_support import workers_test_trace
from .viz_support import (
    chromium_page,
    drag,
    go_statement,
    model_data,
    open_timeline,
    panel_point,
    table_rows,
)


def site_of(example: str, pattern: str, func: str) -> str:
    file, line = go_statement(example, pattern)
    return f"{func} {file}:{line}"


def started_since(pid: int) -> float:
    """Seconds since process ``pid`` started."""
    return time.time() - os.stat(f"/proc/{pid}").st_mtime


def test_gotrace_and_dlvtrace_at_once_agree_on_spawn(ip: InteractiveShell, tmp_path: Path) -> None:
    n, delay = 200, 6.0
    ip.run_line_magic("golaunch", f"example:spawn --name sp -- -n {n} -delay {delay}s")
    s = goleak_magic.session()
    t = s.targets["sp"]
    handle = ip.run_line_magic("gotrace", "sp")
    ip.run_line_magic("dlvtrace", "sp")
    # both must be on before the program's delay ends, else creations are missed
    assert started_since(t.pid) < delay, "the traces started too late for this machine"
    wait_for(lambda: any(ln.startswith("created=") for ln in t.log_lines(50, "stdout")),
             timeout=60, what="spawn's report")  # fmt: skip
    ip.run_line_magic("dlvtrace", "--stop sp")
    rows = ip.run_line_magic("gotrace", "--stop sp")
    assert not handle.running and handle.error is None
    site = site_of("spawn", r"^\s*go park\(ch\)$", "main.main")
    c = t.creations
    by = {src: c[(c["source"] == src) & (c["site"] == site)] for src in ("trace", "delve")}
    assert len(by["trace"]) == n and len(by["delve"]) == n  # both exactly N
    assert set(by["trace"]["new_goid"]) == set(by["delve"]["new_goid"])
    assert len(rows[rows["site"] == site]) == n
    # one stack_id is one stack on the target, whichever source saw it
    assert c.groupby("stack_id")["stack"].nunique().max() == 1
    assert set(by["trace"]["stack_id"]).isdisjoint(c.loc[c["source"] == "delve", "stack_id"])
    # every one of them blocked on its channel at main.park
    tr = t.transitions
    blocks = tr[(tr["to_state"] == "waiting") & (tr["site"] == site)]
    assert set(blocks["goid"]) == set(by["trace"]["new_goid"])
    assert (
        set(blocks["reason"]) == {"chan receive"}
        and blocks["at"].str.startswith("main.park ").all()
    )
    sites = ip.run_line_magic("gotrace", "--sites sp")
    assert sites.iloc[0]["site"] == site and sites.iloc[0]["count"] == n
    # the suspects table carries the trace's evidence (its rule is the snapshots')
    sus = s.suspects("sp", min_snapshots=0)
    ev = sus.loc[sus["site"] == site, "evidence"].iloc[0]
    assert f"trace: {n} created in its window, {n} never ended" in ev and "chan receive" in ev
    # the timeline's table says where and for how long they blocked
    data = s.timeline("sp").data
    i = data.sources["sites"]["site"].index(site)
    assert data.sources["sites"]["blocked_for"][i].endswith(
        f"over {n:,} blocks, {n:,} still blocked"
    )
    assert data.sources["sites"]["wait_reason"][i] == "chan receive"
    # a recording keeps both sources and the transitions
    path = tmp_path / "sp.goleak"
    ip.run_line_magic("goleak", f"save sp {path}")
    back = s.load(path, name="sp-saved")
    cols = ["time", "goid", "from_state", "to_state", "reason", "site", "at", "stack_id"]
    assert back.transitions[cols].astype(object).equals(tr[cols].astype(object))
    assert back.creations["source"].tolist() == c["source"].tolist()


def test_streamed_rows_land_while_the_trace_runs(ip: InteractiveShell) -> None:
    """A streamed trace's creations are in the target's table (and its timeline) while
    it still runs; its end lands the rest, each creation once."""
    n, delay = 300, 4.0
    ip.run_line_magic(
        "golaunch", f"example:spawn --name live -- -n {n} -delay {delay}s -every 20ms"
    )
    s = goleak_magic.session()
    t = s.targets["live"]
    handle = ip.run_line_magic("gotrace", "live")
    assert started_since(t.pid) < delay, "the trace started too late for this machine"
    site = site_of("spawn", r"^\s*go park\(ch\)$", "main.main")

    def landed() -> int:
        c = t.creations
        return int(((c["source"] == "trace") & (c["site"] == site)).sum())

    wait_for(landed, timeout=60, what="trace creations while the trace runs", show=landed)
    assert handle.running  # nothing stopped it: the rows came while it streamed
    assert s.timeline("live").data.creation_source == "trace"
    wait_for(lambda: any(ln.startswith("created=") for ln in t.log_lines(50, "stdout")),
             timeout=60, what="spawn's report")  # fmt: skip
    rows = ip.run_line_magic("gotrace", "--stop live")
    assert not handle.running and handle.error is None
    c = t.creations
    mine = c[(c["source"] == "trace") & (c["site"] == site)]
    assert len(mine) == n and mine["new_goid"].is_unique  # exact: none missed, none twice
    assert c.loc[c["source"] == "trace", "new_goid"].is_unique
    assert c["seq"].is_unique
    assert (rows["site"] == site).sum() == n  # the window is the whole capture
    assert set(rows["new_goid"]) <= set(c["new_goid"])


def test_a_stream_longer_than_its_table_says_what_was_let_go() -> None:
    """A stream's rows go only to the target's bounded tables: past max_rows its window
    is the newest rows its table holds, and its summary counts the rest."""
    n, delay = 300, 3.0
    s = Session(Settings(max_rows=100))
    try:
        t = s.launch("example:spawn", name="bounded", args=["-n", str(n), "-delay", f"{delay}s"])
        handle = s.gotrace("bounded")
        assert started_since(t.pid) < delay, "the trace started too late for this machine"
        wait_for(lambda: any(ln.startswith("created=") for ln in t.log_lines(50, "stdout")),
                 timeout=60, what="spawn's report")  # fmt: skip
        s.stop_gotrace("bounded")
        assert handle.error is None and len(t.creations) == 100
        site = site_of("spawn", r"^\s*go park\(ch\)$", "main.main")
        assert 50 <= (handle.window["site"] == site).sum() <= len(handle.window) <= 100
        assert handle.let_go >= n - 100
        assert f"the oldest {handle.let_go:,} of its creations were let go" in handle.summary()
    finally:
        s.close()


def test_gotrace_and_dlvtrace_at_once_agree_on_leakyservice(ip: InteractiveShell) -> None:
    ip.run_line_magic("golaunch", "example:leakyservice --name lk -- -rate 10 -slow 1 -timeout 1s")
    s = goleak_magic.session()
    ip.run_line_magic("gotrace", "lk")
    ip.run_line_magic("dlvtrace", "lk --duration 3 --wait")
    ip.run_line_magic("gotrace", "--stop lk")
    c = s.targets["lk"].creations
    # The agent's poller (a time.AfterFunc every 50 ms) is left out of the trace's tables;
    # Delve sees it like any goroutine. leakyservice starts none of its own there.
    c = c[c["site_func"] != "time.goFunc"]
    delve, trace = c[c["source"] == "delve"], c[c["source"] == "trace"]
    leak = site_of("leakyservice", r"^\tgo func\(\) \{$", "main.handler")
    assert (delve["site"] == leak).sum() >= 10
    # Delve's window lies inside the trace's: each goroutine Delve saw created, the trace
    # saw created at the same go statement, so per-site counts of that window match.
    site_by_goid = trace.set_index("new_goid")["site"]
    assert delve["new_goid"].isin(site_by_goid.index).all()
    seen = trace[trace["new_goid"].isin(delve["new_goid"])]
    assert seen["site"].value_counts().to_dict() == delve["site"].value_counts().to_dict()


@pytest.mark.browser
def test_flight_recorder_on_spike_and_freeze_on_burstyservice(
    ip: InteractiveShell, tmp_path: Path, artifacts: Path
) -> None:
    ip.run_line_magic(
        "golaunch", "example:burstyservice --name bs -- -rate 0.5 -burst 300 -work 100ms"
    )
    s = goleak_magic.session()
    burst = site_of("burstyservice", r"go func\(id int64\) \{", "main.serveBurst")
    ip.run_line_magic("gotrace", "bs --metrics 100")
    handle = ip.run_line_magic("gotrace", "bs --flight 5 --on-spike")
    assert handle.mode == "flight" and handle.running
    wait_for(lambda: handle.spike is not None and (handle.spike.ready_s or handle.spike.error),
             timeout=30, what="the spike's freeze", show=lambda: handle.spike)  # fmt: skip
    assert handle.spike.error is None and handle.spike.ready_s > 0
    assert handle.spike.count - handle.spike.baseline >= 10
    spiked = handle.sites()
    assert spiked.iloc[0]["site"] == burst and spiked.iloc[0]["count"] >= 300
    assert "the window's table was there" in handle.summary()
    rows = ip.run_line_magic("gotrace", "bs --freeze")  # by hand, a few seconds later
    assert creations.sites(rows).iloc[0]["site"] == burst
    first = handle.spike
    assert ip.run_line_magic("gotrace", "bs --on-spike") is handle  # armed again
    wait_for(lambda: handle.spike is not None and (handle.spike.ready_s or handle.spike.error),
             timeout=30, what="the next spike's freeze", show=lambda: handle.spike)  # fmt: skip
    assert handle.spike.error is None and handle.spike.at > first.at
    assert handle.sites().iloc[0]["site"] == burst
    c = s.targets["bs"].creations
    assert c["new_goid"].is_unique  # overlapping windows land once
    ip.run_line_magic("gotrace", "--stop bs")
    ip.run_line_magic("gotrace", "bs --metrics 0")
    ip.run_line_magic("golaunch", "--stop bs")
    html = tmp_path / "bursty.html"
    tl = s.timeline("bs", html=html)
    assert tl.data.has["counts"] and tl.data.creation_source == "trace"
    with chromium_page() as (page, errors):
        open_timeline(page, html)
        times, b = model.ms(c["time"]), tl.data.bin_ms  # the window takes whole bins
        start = panel_point(page, "goroutines", float(times.min()) - b)
        drag(page, start, panel_point(page, "goroutines", float(times.max()) + b))
        wait_for(lambda: model_data(page, "window")["x0"], timeout=5, what="the window")
        row = table_rows(page)[0]
        assert row[0] == burst and int(row[1].replace(",", "")) >= 300
        assert row[5].startswith("median ")  # blocked for, from the trace
        page.screenshot(path=artifacts / "timeline_gotrace_burst.png", full_page=True)
        assert errors == []


def test_file_and_url_on_each_go(ip: InteractiveShell, tmp_path: Path, toolchain: str) -> None:
    _, out = workers_test_trace(tmp_path)
    rows = ip.run_line_magic("gotrace", f"--file {out} --name tt")
    s = goleak_magic.session()
    target = s.targets["tt"]
    assert target.state == "recorded" and target.pid is None
    workers = rows[rows["site_func"] == "tracedtest.TestWorkers"]
    assert len(workers) == 7 and (workers["source"] == "trace").all()
    ends = target.transitions[target.transitions["to_state"] == "dead"]
    assert set(workers["new_goid"]) <= set(ends["goid"])

    ip.run_line_magic("golaunch", f"{PROGRAMS / 'pprofserver'} --name web --no-agent -- -n 5")
    web = s.targets["web"]
    line = wait_for(
        lambda: next((ln for ln in web.log_lines(50, "stdout") if ln.startswith("pprof=")), None),
        what="the pprof address",
    )
    url = str(line).removeprefix("pprof=")
    with pytest.raises(UsageError, match=r"--url URL --name web.*--file trace.out.*%dlvtrace web"):
        ip.run_line_magic("gotrace", "web")
    rows = ip.run_line_magic("gotrace", f"--url {url} --name web --duration 1 --wait")
    assert (rows["source"] == "trace").all() and len(web.transitions) > 0
    assert web.gotrace is not None and web.gotrace.error is None


def test_spike_rule() -> None:
    """max(MIN_RISE, half the recent median) above that median: 10 on a quiet program,
    half of it on a busy one; nothing before there is a history."""
    assert gotrace.spike_rule([], 1000) is None
    assert gotrace.spike_rule([4, 5, 6], 14) is None and gotrace.spike_rule([4, 5, 6], 15) == 5
    busy = [100.0, 98, 103, 100, 250]  # one earlier spike does not move the median
    assert gotrace.spike_rule(busy, 149) is None and gotrace.spike_rule(busy, 150) == 100


def test_bad_input_and_old_go(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(goleak_magic.session().targets)
    for line, said in [
        ("", "say which target to trace"),
        ("nope", "there is no target named 'nope'"),
        ("--file /no/such.trace", "is not a file"),
        ("--stop nope", "there is no target named"),
    ]:
        with pytest.raises(UsageError, match=said) as e:
            ip.run_line_magic("gotrace", line)
        assert "\n" not in str(e.value)
    assert set(goleak_magic.session().targets) == before  # a bad file leaves no target
    monkeypatch.setenv("GOTOOLCHAIN", "go1.22.12")  # before the flight recorder
    ip.run_line_magic("golaunch", "example:spawn --name old -- -n 20 -every 100ms")
    with pytest.raises(UsageError, match="add flight"):
        ip.run_line_magic("gotrace", "old --on-spike")
    with pytest.raises(UsageError, match="has no flight recorder running"):
        ip.run_line_magic("gotrace", "old --freeze")
    handle = ip.run_line_magic("gotrace", "old --flight 5")
    assert handle.mode == "stream" and "streaming the trace instead" in handle.notes[0]
    for busy in ("old --duration 1", f"--file {__file__} --name old"):
        with pytest.raises(UsageError, match="already has a stream trace running"):
            ip.run_line_magic("gotrace", busy)
    assert "old" in goleak_magic.session().targets  # refused, not dropped
    old = goleak_magic.session().targets["old"]
    wait_for(lambda: any(ln.startswith("created=") for ln in old.log_lines(50, "stdout")),
             what="spawn's report")  # fmt: skip
    rows = ip.run_line_magic("gotrace", "--stop old")
    assert len(rows) >= 1 and isinstance(rows, pd.DataFrame)
    with pytest.raises(UsageError, match="no execution trace running"):
        ip.run_line_magic("gotrace", "--stop old")
