"""The fleet API against a real Prometheus scraping real instances on loopback.

One session-scoped fleet (goleak_magic.fleet.local_fleet, as the tutorial starts it):
6 fleetservice instances (2 leaking 3 goroutines/s, 4 healthy with noisy bursts), one
more that is killed after Prometheus saw it (down at snapshot time), and a garbage
server (valid /metrics, nonsense on the pprof path), all scraped every second by
Debian's prometheus for ~35 s. The same fleet is driven through the magics (a real
IPython shell) at the end.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import goleak_magic
from goleak_magic.errors import GoleakError
from goleak_magic.fleet import FleetSnapshot, fleet_suspects, instances, snapshot_fleet
from goleak_magic.fleet.local import HEALTHY_ARGS, Instance, LocalFleet, local_fleet
from goleak_magic.fleet.record import Fleet as FleetRecord
from goleak_magic.fleet.web import HEADERS_ENV
from goleak_magic.session import Session
from goleak_magic.viz import layout, model
from tests.conftest import wait_for
from tests.fleet_support import Garbage
from tests.viz_support import chromium_page, drag, open_timeline, panel_point, table_rows

pytestmark = pytest.mark.live
WINDOW_S = 35
HEALTHY = HEALTHY_ARGS
LEAK_SITE = "handler.go:14"  # the `go func()` in fleetservice's handle


@dataclass
class Fleet:
    local: LocalFleet
    binary: Path
    leakers: set[str]
    healthy: set[str]
    dead: str
    garbage: Garbage
    rows: pd.DataFrame
    snap: FleetSnapshot
    progress: list[tuple[str, int, str]]


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    garbage = Garbage()
    local = None
    try:
        local = local_fleet(2, 5, workdir=tmp_path_factory.mktemp("fleet"),
                            extra_targets=[garbage.addr])  # fmt: skip
        local.wait(WINDOW_S, extra_targets=1)
        started = local.instances
        rows = instances(local.url, local.match, window=f"{WINDOW_S}s")
        doomed = started[-1]
        doomed.stop()  # Prometheus listed it; it is down when the snapshots come
        progress: list[tuple[str, int, str]] = []
        snap = snapshot_fleet(
            rows,
            steady=None,
            rounds=3,
            every=3,
            progress=lambda *a: progress.append(a),
        )
        yield Fleet(
            local,
            local.binary,
            {i.addr for i in started[:2]},
            {i.addr for i in started[2:6]},
            doomed.addr,
            garbage,
            rows,
            snap,
            progress,
        )
    finally:
        garbage.stop()
        if local is not None:
            local.stop()


def test_instances_marks_exactly_the_leaking_two_as_climbing(fleet: Fleet) -> None:
    rows = fleet.rows
    assert set(rows["instance"]) == fleet.leakers | fleet.healthy | {fleet.dead, fleet.garbage.addr}
    assert set(rows.loc[rows["climbing"], "instance"]) == fleet.leakers
    climbing = rows[rows["climbing"]]
    assert (climbing["growth_per_min"] > 60).all()  # 3/s is 180/min
    assert (rows["job"] == "fleet").all()
    assert all(lbl.get("team") == "goleak" for lbl in rows["labels"])
    assert rows["scrape_url"].str.endswith("/metrics").all()
    assert rows.iloc[:2]["climbing"].all()  # climbing instances come first


def test_fleet_suspects_rank_the_leak_site_first_on_2_of_6(fleet: Fleet) -> None:
    sus = fleet_suspects(fleet.snap)
    top = sus.iloc[0]
    assert top["site"].endswith(LEAK_SITE), sus[["site", "evidence"]]
    assert "on 2 of 6 instances" in top["evidence"]
    assert "blocked in chan send at main.handle.func1 handler.go:15" in top["evidence"]
    assert set(top["affected"]) == fleet.leakers
    assert set(top["unaffected"]) == fleet.healthy
    assert top["leaked_proven"] > 0 and top["growth_per_min"] > 60
    # the healthy instances add no suspect (they run the same handler, which finishes)
    for affected in sus["affected"]:
        assert set(affected) <= fleet.leakers
    per = sus.attrs["per_instance"]
    assert set(per["instance"]) == fleet.leakers | fleet.healthy


def test_dead_and_garbage_instances_are_one_line_each_and_skipped(fleet: Fleet) -> None:
    snap = fleet.snap
    assert len(snap.failures) == 2, snap.failures
    dead = next(f for f in snap.failures if f.startswith(fleet.dead + " (rounds 1, 2, 3 of 3): "))
    junk = next(f for f in snap.failures if f.startswith(fleet.garbage.addr + " "))
    assert "down or unreachable" in dead and "Connection refused" in dead
    assert "not a goroutine dump" in junk
    assert all("\n" not in f for f in snap.failures)
    g = snap.goroutines
    assert set(g["instance"]) == fleet.leakers | fleet.healthy
    assert sorted(g["snapshot"].unique()) == [1, 2, 3]
    assert (g.groupby("instance")["snapshot"].nunique() == 3).all()
    assert set(g["run"]) == {1}
    assert g.loc[g["instance"].isin(fleet.leakers), "leaked"].any()
    assert not g.loc[g["instance"].isin(fleet.healthy), "leaked"].any()
    failed = [p for p in fleet.progress if p[2].startswith("failed")]
    assert {p[0] for p in failed} == {fleet.dead, fleet.garbage.addr}
    assert len(fleet.progress) == 3 * 8


def test_steady_picks_climbing_and_the_flattest_others(fleet: Fleet) -> None:
    healthy = fleet.rows[fleet.rows["instance"].isin(fleet.leakers | fleet.healthy)]
    snap = snapshot_fleet(healthy, steady=1, pool=2)
    assert len(snap.instances) == 3 and set(snap.instances) >= fleet.leakers
    assert not snap.failures
    assert set(snap.goroutines["instance"]) == set(snap.instances)


def test_headers_are_sent_and_never_shown(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    row = fleet.rows[fleet.rows["instance"] == fleet.garbage.addr]
    n = len(fleet.garbage.seen)
    snap = snapshot_fleet(row, headers={"Authorization": "Bearer s3cret-param"})
    monkeypatch.setenv(HEADERS_ENV, "Authorization: Bearer s3cret-env")
    snap2 = snapshot_fleet(row)
    rows = instances(fleet.local.url, 'job="fleet"', window="10s")  # Prometheus takes it too
    got = [h.get("Authorization") for h in fleet.garbage.seen[n:]]
    assert "Bearer s3cret-param" in got and "Bearer s3cret-env" in got
    for shown in (repr(snap), repr(snap2), rows.to_string(), str(rows.attrs)):
        assert "s3cret" not in shown


def test_restarted_instance_becomes_a_new_run(fleet: Fleet, tmp_path: Path) -> None:
    inst = Instance(fleet.binary, *HEALTHY)
    addr = inst.addr
    row = {"instance": addr, "job": "fleet", "climbing": True, "labels": {},
           "scrape_url": f"http://{addr}/metrics"}  # fmt: skip
    box = [inst]

    def restart(name: str, k: int, what: str) -> None:
        if k == 1:  # between the rounds: a new process on the same address
            box[0].stop()
            box[0] = Instance(fleet.binary, *HEALTHY, addr=addr)

    try:
        snap = snapshot_fleet([row], rounds=2, every=0.5, progress=restart)
    finally:
        box[0].stop()
    assert not snap.failures
    assert len(snap.notes) == 1 and "restarted before round 2" in snap.notes[0]
    assert "run 2" in snap.notes[0]
    g = snap.goroutines
    assert g.groupby("snapshot")["run"].first().to_dict() == {1: 1, 2: 2}


@pytest.mark.parametrize(
    ("url", "match", "says"),
    [
        ("closed", 'job="fleet"', "cannot reach Prometheus"),
        ("creds", 'job="fleet"', "the Prometheus URL carries credentials; pass them as a header"),
        ("garbage", 'job="fleet"', "does not look like Prometheus"),
        ("instance", 'job="fleet"', "does not look like Prometheus (/api/v1/status/buildinfo "
         "answered HTTP 404)"),
        ("prom", 'job="nope"', "no series match go_goroutines{job=\"nope\"}"),
        ("prom", "job=", "Prometheus rejects the query go_goroutines{job=} (1:"),
    ],
)  # fmt: skip
def test_bad_prometheus_input_is_one_sentence(
    fleet: Fleet, url: str, match: str, says: str
) -> None:
    where = {
        "closed": "http://127.0.0.1:1",
        "creds": f"http://me:pw-s3cret@{fleet.local.url.removeprefix('http://')}",
        "garbage": f"http://{fleet.garbage.addr}",
        "instance": f"http://{next(iter(fleet.healthy))}",
        "prom": fleet.local.url,
    }[url]
    with pytest.raises(GoleakError) as e:
        instances(where, match, window="10s")
    assert says in str(e.value)
    assert "\n" not in str(e.value) and "s3cret" not in str(e.value)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("http://evil.example/{instance}/debug/pprof", "host comes from the instance's labels"),
        ("http://{instance}.evil.example/debug/pprof", "host comes from the instance's labels"),
        ("http://{pod_ip}:6060/debug/pprof", "names the label 'pod_ip'"),
    ],
)
def test_pprof_template_must_take_its_host_from_the_labels(
    fleet: Fleet, template: str, says: str
) -> None:
    with pytest.raises(GoleakError, match=says.replace("(", r"\(").replace(")", r"\)")):
        snapshot_fleet(fleet.rows, pprof_template=template)


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (
            "login",
            "login/debug/pprof/goroutineleak answered HTTP 401 Unauthorized (an HTML login "
            "page); pass headers",
        ),
        ("error", "answered HTTP 500 Internal Server Error; is it net/http/pprof?"),
        ("slow", "down or unreachable at http://{addr}/slow/debug/pprof (timed out)"),
    ],
)
def test_login_page_500_and_slow_instance_are_one_line(fleet: Fleet, path: str, says: str) -> None:
    row = fleet.rows[fleet.rows["instance"] == fleet.garbage.addr]
    template = "http://{instance}/" + path + "/debug/pprof"
    snap = snapshot_fleet(row, pprof_template=template, timeout=0.5)
    (line,) = snap.failures
    assert (
        line.startswith(f"{fleet.garbage.addr}: ") and says.format(addr=fleet.garbage.addr) in line
    )
    assert len(snap.goroutines) == 0 and list(snap.goroutines.columns)[-2:] == ["instance", "run"]


def test_label_template_reaches_the_instance(fleet: Fleet) -> None:
    addr = next(iter(fleet.leakers))
    host, port = addr.rsplit(":", 1)
    row = {"instance": addr, "job": "fleet", "climbing": True, "labels": {"ip": host}}
    snap = snapshot_fleet([row], pprof_template="http://{ip}:" + port + "/debug/pprof")
    assert not snap.failures and len(snap.goroutines) > 0
    assert os.environ.get(HEADERS_ENV) is None


# ---- the magics, through a real IPython shell ----------------------------------------
def test_magics_find_the_two_leaking_instances_and_their_site(
    fleet: Fleet, ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = len(fleet.garbage.seen)
    # a window wide enough to still hold the dead instance, however late this test runs
    rows = ip.run_line_magic(
        "goleak",
        f"fleet --prometheus {fleet.local.url} --match '{fleet.local.match}' --window 5m "
        "--name prod --header 'Authorization: Bearer s3cret-magic'",
    )
    assert set(rows.loc[rows["climbing"], "instance"]) == fleet.leakers
    assert {fleet.dead, fleet.garbage.addr} <= set(rows["instance"])
    g = ip.run_line_magic("schedsnap", "--fleet prod --every 2 --count 3 --steady -1")
    shown = capsys.readouterr()
    assert set(g["instance"]) == fleet.leakers | fleet.healthy
    assert sorted(g["snapshot"].unique()) == [1, 2, 3]
    # the dead and the garbage instance: one line each in the result, the rest go on
    failures = [
        ln for ln in shown.out.splitlines() if ln.startswith((fleet.dead, fleet.garbage.addr))
    ]
    assert len(failures) == 2 and "down or unreachable" in " ".join(failures)
    assert "not a goroutine dump" in " ".join(failures)
    assert f"round 3: {next(iter(fleet.leakers))}: ok:" in shown.err  # progress per instance

    sus = ip.run_line_magic("goleak", "suspects prod")
    top = sus.iloc[0]
    assert top["site"].endswith(LEAK_SITE) and "on 2 of 6 instances" in top["evidence"]
    assert set(top["affected"]) == fleet.leakers and set(top["unaffected"]) == fleet.healthy
    assert all(set(a) <= fleet.leakers for a in sus["affected"])  # healthy add no suspect
    report = ip.run_line_magic("goleak", "report prod").text()
    assert report.startswith("Leak on 2 of 6 instances of fleet prod: goroutines started at ")
    assert f"not on: {', '.join(top['unaffected'])}" in report
    assert f"skipped: {fleet.dead}" in report

    status = ip.run_line_magic("goleak", "status")
    assert status.set_index("name").loc["prod", "state"] == "fleet"

    path = tmp_path / "prod.goleak"
    ip.run_line_magic("goleak", f"save prod {path}")
    back = ip.run_line_magic("goleak", f"load {path} --name back")
    assert isinstance(back, FleetRecord) and back.prometheus == fleet.local.url
    live = goleak_magic.session().get("prod")
    pd.testing.assert_frame_equal(back.instances, live.instances)
    pd.testing.assert_frame_equal(back.goroutines, live.goroutines)
    pd.testing.assert_frame_equal(back.suspects, live.suspects)
    assert back.failures == live.failures and back.headers == {}
    assert ip.run_line_magic("goleak", "report back").text().startswith("Leak on 2 of 6")
    # the header reached the instances, and nothing kept or shown holds it
    assert "Bearer s3cret-magic" in [h.get("Authorization") for h in fleet.garbage.seen[n:]]
    with zipfile.ZipFile(path) as zf:
        assert not any(b"s3cret" in zf.read(m) for m in zf.namelist())
    for text in (shown.out, shown.err, report, repr(live), live._repr_html_()):
        assert "s3cret" not in text

    # the timeline of the loaded fleet: one line per instance above the usual panels, the
    # same site table (the leak site first, ranked by the fleet suspects)
    page = tmp_path / "prod.html"
    tl = ip.run_line_magic("goleak", f"timeline back --html {page}")
    assert tl.figure.panels[0] == "instances"
    lines = tl.data.sources["instances"]
    assert sorted(lines["instance"]) == sorted(rows["instance"])
    climbing = {
        i for i, c in zip(lines["instance"], lines["climbing"], strict=True) if c == "climbing"
    }
    assert climbing == fleet.leakers
    assert all(len(x) == len(y) > 10 for x, y in zip(lines["xs"], lines["ys"], strict=True))
    assert tl.data.sources["sites"]["site"][0].endswith(LEAK_SITE)
    # goroutine ids repeat across instances: each instance's goroutines count on their own
    agg = tl.data.sources["agg"]
    assert agg["created"].sum() == len(back.goroutines.drop_duplicates(["instance", "run", "goid"]))
    assert "s3cret" not in page.read_text()
    with pytest.raises(UsageError, match="is a fleet: its timeline is drawn"):
        ip.run_line_magic("goleak", "timeline back --live")


def test_fleet_magic_help_and_bad_input(fleet: Fleet, ip: InteractiveShell,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    ip.run_cell("%goleak fleet?")
    text = capsys.readouterr().out
    assert "--prometheus URL" in text and "Climbing: the slope is positive" in text
    with pytest.raises(UsageError, match="required: --match"):
        ip.run_line_magic("goleak", f"fleet --prometheus {fleet.local.url}")
    with pytest.raises(UsageError, match="host comes from the instance's labels"):
        ip.run_line_magic("goleak", f"fleet --prometheus {fleet.local.url} --match "
                          "'job=\"fleet\"' --pprof http://evil.example/{instance}")  # fmt: skip
    with pytest.raises(UsageError, match="no series match"):
        ip.run_line_magic("goleak", f"fleet --prometheus {fleet.local.url} --match 'job=\"no\"'")
    with pytest.raises(UsageError, match="there is no target named 'nope'"):
        ip.run_line_magic("schedsnap", "--fleet nope")
    assert goleak_magic.session().targets == {}


@pytest.mark.browser
def test_exported_fleet_timeline_select_on_the_instances_panel(
    fleet: Fleet, sess: Session, tmp_path: Path
) -> None:
    sess.fleet(fleet.local.url, fleet.local.match, window="5m", name="f")
    sess.fleet_snapshot("f", every=1, count=2, steady=1)
    page_file = tmp_path / "fleet.html"
    tl = sess.timeline("f", html=page_file)
    t = model.ms(sess.get("f").goroutines["time"])
    with chromium_page() as (page, errors):
        open_timeline(page, page_file)
        title = layout.panel_title("instances", tl.data)
        drag(page, panel_point(page, title, float(t.min()) - 500),
             panel_point(page, title, float(t.max()) + 500))  # fmt: skip
        rows = wait_for(lambda: table_rows(page), timeout=5, what="rows")
        assert rows[0][0].endswith(LEAK_SITE), rows
        assert errors == []
