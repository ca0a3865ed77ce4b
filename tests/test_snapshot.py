"""Goroutine snapshots from real Go programs: sources, series, diffs and bad input."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from goleak_magic import GoleakError, snapshot
from goleak_magic.delve import server as dlv_server
from goleak_magic.session import Session
from goleak_magic.target import Target

from .conftest import PROGRAMS, wait_for

PARK_LINE = "pprofserver/main.go:29"  # the go statement in pprofserver
SPAWN_LINE = "spawn/main.go:38"


def started(t: Target, prefix: str) -> str:
    line = wait_for(
        lambda: next((ln for ln in t.log_lines(20, "stdout") if ln.startswith(prefix)), None),
        what=f"'{prefix}' on stdout",
    )
    return str(line)


def parked(g: pd.DataFrame, where: str = PARK_LINE) -> pd.DataFrame:
    rows = g[g["created_at"].str.endswith(where).fillna(False)]
    return rows.sort_values("goid").reset_index(drop=True)


def test_agent_pprof_and_delve_agree(sess: Session, toolchain: str) -> None:
    t = sess.launch(str(PROGRAMS / "pprofserver"), args=["-n", "40", "-drop-half"])
    url = started(t, "pprof=").removeprefix("pprof=")
    a = sess.snapshot(t.name, source="agent")
    p = sess.snapshot(t.name, source="pprof", url=url)
    d = sess.snapshot(t.name, source="delve")
    assert (a.source, p.source, d.source) == ("agent", "pprof", "delve")
    assert (a.id, p.id, d.id) == (1, 2, 3)
    # The program is still after its start: every source sees the same goroutines, in
    # the same states, created at the same go statement, with the same proven leaks.
    cols = ["goid", "status", "wait_reason", "created_by", "created_at", "leaked"]
    pa, pp, pdv = (parked(x.frame)[cols] for x in (a, p, d))
    assert len(pa) == 40 and pa["leaked"].sum() == 20
    pd.testing.assert_frame_equal(pa, pp)
    pd.testing.assert_frame_equal(pa, pdv)
    # Beyond the parked ones: main, and (for pprof) its own server's request goroutines.
    main = [x.frame[x.frame["created_by"].isna()][cols[:3]].reset_index(drop=True)
            for x in (a, p, d)]  # fmt: skip
    pd.testing.assert_frame_equal(main[0], main[1])
    pd.testing.assert_frame_equal(main[0], main[2])
    assert len(a.frame) == len(d.frame) == 41
    assert all(x.paused_s is not None and x.paused_s >= 0 for x in (a, p, d))
    # all three landed in the target's table, numbered
    g = t.goroutines
    assert sorted(g["snapshot"].unique()) == [1, 2, 3]
    assert set(g.loc[g["snapshot"] == 3, "source"]) == {"delve"}
    # auto takes the cheapest: the agent
    assert sess.snapshot(t.name).source == "agent"


def test_pprof_without_a_leak_profile_says_so_once(sess: Session, monkeypatch) -> None:
    monkeypatch.setenv("GOTOOLCHAIN", "local")  # Go 1.26 without the experiment
    t = sess.launch(str(PROGRAMS / "pprofserver"), args=["-n", "10", "-drop-half"], agent=False)
    url = started(t, "pprof=").removeprefix("pprof=")
    first = sess.snapshot(t.name, url=url)  # auto: no agent, so pprof
    assert first.source == "pprof" and first.leaked is None
    assert any("no goroutineleak profile" in n for n in first.notes)
    assert any("auto chose pprof" in n for n in first.notes)
    assert not first.frame["leaked"].any() and len(parked(first.frame)) == 10
    second = sess.snapshot(t.name, source="pprof")  # remembered URL
    assert not any("goroutineleak" in n for n in second.notes)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_pprof(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that serves a page where a profile should be."""
    (tmp_path / "debug" / "pprof").mkdir(parents=True)
    (tmp_path / "debug" / "pprof" / "goroutineleak").write_text("<html>a dashboard</html>\n")
    handler = lambda *a: _Quiet(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_bad_sources(sess: Session, not_pprof: str) -> None:
    t = sess.launch("example:spawn", args=["-n", "5"], agent=False)
    with pytest.raises(GoleakError, match="not one of auto"):
        sess.snapshot(t.name, source="gdb")
    with pytest.raises(GoleakError, match=r"needs url \(--url\)"):
        sess.snapshot(t.name, source="pprof")
    with pytest.raises(GoleakError, match="has no agent"):
        sess.snapshot(t.name, source="agent")
    with pytest.raises(GoleakError, match=r"no detail \(--detail\)"):
        sess.snapshot(t.name, source="sched")
    with pytest.raises(GoleakError, match="cannot reach"):
        sess.snapshot(t.name, source="pprof", url="http://127.0.0.1:9/debug/pprof/")
    with pytest.raises(GoleakError, match="not an http URL"):
        sess.snapshot(t.name, source="pprof", url="ftp://127.0.0.1/")
    with pytest.raises(GoleakError, match="without a goroutine dump"):
        sess.snapshot(t.name, source="pprof", url=not_pprof)
    with pytest.raises(GoleakError, match="HTTP 404"):
        sess.snapshot(t.name, source="pprof", url=not_pprof + "/elsewhere/")
    assert not t.snapshots and not len(t.goroutines)  # nothing half-recorded


def test_pprof_base() -> None:
    assert snapshot.pprof_base("127.0.0.1:6060") == "http://127.0.0.1:6060/debug/pprof/"
    assert (
        snapshot.pprof_base("http://h:1/app/debug/pprof/goroutine?debug=2")
        == "http://h:1/app/debug/pprof/"
    )


def test_sched_source_before_the_first_detail_row(sess: Session) -> None:
    # At a 20 s interval the first tick's row comes 20 s later: launch does not wait that
    # long, and a sched snapshot says why it has nothing yet.
    t = sess.launch("example:spawn", detail=True, schedtrace_ms=20_000, agent=False)
    assert len(t.tables["sched"]) == 0 and t.alive
    with pytest.raises(GoleakError, match=r"no complete detail \(--detail\) tick yet.*try again"):
        sess.snapshot(t.name, source="sched")


def test_sched_source_counts(sess: Session) -> None:
    t = sess.launch("example:spawn", detail=True, args=["-n", "300"], agent=False)
    started(t, "created=")
    seen = len(t.tables["sched"])
    wait_for(lambda: len(t.tables["sched"]) > seen + 1, what="a tick after the spawn")
    snap = sess.snapshot(t.name, source="sched")
    c = snap.counts
    assert snap.source == "sched" and not len(snap.frame)
    states = c[c["state"].notna()].set_index("state")["count"]
    assert states["waiting"] >= 300
    reasons = c[c["wait_reason"].notna()].set_index("wait_reason")["count"]
    assert reasons["chan receive"] >= 300
    last = t.sched.iloc[-1]
    assert states.sum() == snap.goroutines <= last["goroutines"] + 20


def test_target_gone_mid_snapshot_keeps_what_was_recorded(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "40000"])
    started(t, "created=")
    first = sess.snapshot(t.name, source="agent")
    assert first.goroutines >= 40000

    def kill_at_first_chunk(n: int, nbytes: int) -> None:
        if t.alive:
            os.kill(t.pid, signal.SIGKILL)

    with pytest.raises(GoleakError, match="exited during the snapshot"):
        sess.snapshot(t.name, source="agent", progress=kill_at_first_chunk)
    assert [s["id"] for s in t.snapshots] == [1]
    assert len(t.goroutines) == first.goroutines
    with pytest.raises(GoleakError, match="not running"):
        sess.snapshot(t.name)
    with pytest.raises(GoleakError, match="no snapshot source works"):
        sess.snapshot(t.name, source="auto")


def test_progress_and_bounded_table(sess: Session) -> None:
    sess.settings.max_rows = 25_000
    t = sess.launch("example:spawn", args=["-n", "20000"])
    started(t, "created=")
    seen: list[tuple[int, int]] = []
    snap = sess.snapshot(t.name, progress=lambda n, b: seen.append((n, b)))
    assert len(seen) >= 2 and seen[-1][0] >= snap.goroutines >= 20000
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)
    sess.snapshot(t.name)
    log = t.tables["goroutines"]
    # Two snapshots do not fit in 25,000 rows: the older one went, and is counted.
    assert len(log) == snap.goroutines and log.dropped == snap.goroutines
    assert t.goroutines["snapshot"].unique().tolist() == [2]


def test_series_in_the_background(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "30", "-every", "20ms"])
    series = sess.snapshot(t.name, every=0.3, count=4)
    assert series.wait(30) and series.error is None
    ids = [s.id for s in series.snapshots]
    assert ids == [1, 2, 3, 4]
    counts = [len(parked(s.frame, SPAWN_LINE)) for s in series.snapshots]
    assert counts == sorted(counts) and counts[-1] == 30  # they pile up, none leaves
    assert len(series.frame()) == len(t.goroutines)
    d = sess.diff(t.name, 1, 4)
    assert len(d.gone) == 0 and len(d.new) >= counts[-1] - counts[0]
    assert set(d.persisting) == set(series.snapshots[0].frame["goid"])
    row = d.sites[d.sites["site"].str.endswith(SPAWN_LINE)].iloc[0]
    assert row["delta"] == counts[-1] - counts[0] == row["new"]
    with pytest.raises(GoleakError, match="no snapshot 9"):
        sess.diff(t.name, 1, 9)


def test_series_stops_when_the_target_exits(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "5", "-hold", "1s"])
    series = sess.snapshot(t.name, every=0.25, count=100)
    assert series.wait(30)
    assert 1 <= len(series.snapshots) < 100
    assert series.error is not None and "not running" in series.error
    assert len(t.snapshots) == len(series.snapshots)


def test_series_bad_arguments(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "5"])
    with pytest.raises(GoleakError, match="go together"):
        sess.snapshot(t.name, every=1.0)
    with pytest.raises(GoleakError, match=r"every \(--every\) takes"):
        sess.snapshot(t.name, every=0, count=3)
    s = sess.snapshot(t.name, every=10, count=5)
    s.stop()
    assert s.done and len(s.snapshots) == 1


def test_delve_for_any_binary_with_stacks_and_series(sess: Session) -> None:
    t = sess.launch("example:spawn", args=["-n", "20", "-drop-half"], agent=False)
    started(t, "created=")
    snap = sess.snapshot(t.name, stacks=True)  # auto: no agent, no URL, so Delve
    assert snap.source == "delve" and any("auto chose delve" in n for n in snap.notes)
    rows = parked(snap.frame, SPAWN_LINE)
    assert len(rows) == 20 and (rows["created_by"] == "main.main").all()
    assert rows["wait_reason"].eq("chan receive").all()
    # No agent and no pprof: nothing ran the GC's leak detection, so leaks are unknown.
    assert snap.leaked is None and not rows["leaked"].any()
    assert all(any(f.startswith("main.park ") for f in s) for s in rows["stack"])
    assert rows["top"].str.startswith("main.").all()  # runtime frames are not "where"
    series = sess.snapshot(t.name, source="delve", every=0.3, count=2)
    assert series.wait(60) and series.error is None and len(series.snapshots) == 2
    assert dlv_server.current(t) is None  # attached for the series, detached after
    assert t.alive
