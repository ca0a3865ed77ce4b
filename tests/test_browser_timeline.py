"""The exported timeline in headless Chromium: select a window or tap a climb, read the
linked table, with no kernel behind the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goleak_magic import tables
from goleak_magic.session import Session
from goleak_magic.viz import export, layout, model
from goleak_magic.viz.model import Recording

from .conftest import wait_for
from .viz_support import (
    chromium_page,
    creations_from_counts,
    drag,
    go_statement,
    head_text,
    model_data,
    open_timeline,
    panel_point,
    table_rows,
)

pytestmark = pytest.mark.browser


def test_box_select_the_climb_of_a_traced_leak_lists_its_go_statement(
    sess: Session, tmp_path: Path, artifacts: Path
) -> None:
    """The done-when: a real leakyservice run, its creations traced by Delve, a snapshot,
    the target stopped; the exported page, box-select over the climb, read the table."""
    file, line = go_statement("leakyservice", r"^\tgo func\(\) \{$")  # the handler's
    leak_site = f"main.handler {file}:{line}"
    # Every handler goroutine leaks: the query (2 x 100 ms) always loses to the timeout.
    t = sess.launch(
        "example:leakyservice", detail=True, args=["-rate", "20", "-slow", "1", "-timeout", "100ms"]
    )
    sess.trace(t.name)
    wait_for(
        lambda: (t.creations["site"] == leak_site).sum() >= 40, timeout=60, what="traced leaks"
    )
    sess.stop_trace(t.name)
    sess.snapshot(t.name)
    sess.stop(t.name)
    html = tmp_path / "leak.html"
    tl = sess.timeline(t.name, html=html)
    assert tl.data.creation_source == "trace" and tl.data.alive_known
    c = t.creations
    alive_ids = set(t.goroutines["goid"])  # the snapshot, newer than the trace's last listing
    with chromium_page() as (page, errors):
        open_timeline(page, html)
        spikes = model_data(page, "spikes")
        tm = model.ms(c["time"])
        leaks = tm[(c["site"] == leak_site).to_numpy()]
        climbs = [i for i, k in enumerate(spikes["kind"]) if k == "climb"]
        counts = t.tables["sched"].frame()["goroutines"]
        assert climbs, (  # what the detector saw, should this ever fail again
            f"no climb in {spikes['kind']}; sched goroutines ({counts.notna().sum()} of "
            f"{len(counts)} known): {counts.tolist()}"
        )
        # the climb the trace watched (a loaded machine can split the run into several)
        i = max(
            climbs,
            key=lambda k: ((leaks >= spikes["left"][k]) & (leaks < spikes["right"][k])).sum(),
        )
        start = panel_point(page, "goroutines", spikes["left"][i])
        drag(page, start, panel_point(page, "goroutines", spikes["right"][i]))
        wait_for(lambda: model_data(page, "window")["x0"], timeout=5, what="the window")
        win = model_data(page, "window")
        mine = c[(tm >= win["x0"][0]) & (tm < win["x1"][0]) & (c["site"] == leak_site).to_numpy()]
        assert len(mine) >= 10
        row = table_rows(page)[0]  # the leak first: most still alive
        assert row[1] == f"{len(mine):,}"
        # alive: in the snapshot (nearly all: under load Delve's stops can let a query
        # finish before its timeout, and then its goroutine does not leak)
        assert row[2] == f"{mine['new_goid'].isin(alive_ids).sum():,}"
        assert int(row[2]) >= 0.8 * len(mine)
        # blocked on the send right below the go statement
        assert "main.handler.func1 " in row[3] and row[3].endswith(f"main.go:{line + 1}")
        assert row[4] == "chan send"
        assert f"between {pd.Timestamp(win['x0'][0], unit='ms'):%H:%M:%S}" in head_text(page)
        page.locator(".slick-row", has_text=leak_site).locator(".slick-cell").first.click()
        wait_for(lambda: "blocked: goroutine" in model_data_text(page), 5, "the stack")
        assert model_data_text(page).startswith(f"{leak_site}\n\ncreated at")
        page.screenshot(path=artifacts / "timeline_traced_leak.png", full_page=True)
        assert errors == []


def spawn_timeline(sess: Session, out: Path) -> tuple[Recording, str]:
    """A real spawn run (one go statement, 20 creations every 10 ms, nothing exits), its
    creations derived from the real goroutine counts, and a snapshot at the end."""
    t = sess.launch("example:spawn", detail=True, args=["-n", "200", "-every", "10ms"])
    wait_for(lambda: (t.sched["goroutines"].max() or 0) >= 200, what="all 200 goroutines")
    file, line = go_statement("spawn", r"^\s*go park\(ch\)$")
    site = f"main.main {file}:{line}"
    c = creations_from_counts(t, site, (site, "main.main.func1 /x.go:1", "runtime.goexit"))
    last = [
        {"snapshot": 1, "time": t.sched["time"].max(), "goid": int(g), "status": "waiting",
         "wait_reason": "chan receive", "top": "main.park main.go:25",
         "user_top": "main.park main.go:25", "created_by": "main.main",
         "created_at": f"{file}:{line}"}
        for g in c["new_goid"].iloc[::2]
    ]  # fmt: skip
    rec = Recording(
        sched=t.sched, waits=t.waits, creations=c, goroutines=tables.frame("goroutines", last)
    )
    data = model.build(rec)
    export.save_html(layout.build(data, "spawn").root, out, "spawn")
    return rec, site


def raw_count(rec: Recording, site: str, x0: float, x1: float) -> tuple[int, int]:
    """Creations at ``site`` in [x0, x1) and how many of them the snapshot still has."""
    c = rec.creations
    t = model.ms(c["time"])
    inside = c[(t >= x0) & (t < x1) & (c["site"] == site).to_numpy()]
    return len(inside), int(inside["new_goid"].isin(rec.goroutines["goid"]).sum())


def test_tap_the_climb_then_box_select_part_of_it(
    sess: Session, tmp_path: Path, artifacts: Path
) -> None:
    html = tmp_path / "spawn.html"
    rec, site = spawn_timeline(sess, html)
    with chromium_page() as (page, errors):
        open_timeline(page, html)
        spikes = model_data(page, "spikes")
        (i,) = [k for k, kind in enumerate(spikes["kind"]) if kind == "climb"]
        mid = (spikes["left"][i] + spikes["right"][i]) / 2
        x, _ = panel_point(page, "goroutines", mid)
        _, y = panel_point(page, "goroutines", mid)
        page.mouse.click(x, y)  # inside the climb's hatched box
        wait_for(lambda: model_data(page, "window")["x0"], timeout=5, what="the window")
        win = model_data(page, "window")
        n, alive = raw_count(rec, site, win["x0"][0], win["x1"][0])
        assert n >= 150  # the tap covers the climb, so most of the 200
        rows = table_rows(page)
        assert rows[0][:3] == [site, f"{n:,}", f"{alive:,}"]
        assert rows[0][3] == "main.park main.go:25" and rows[0][4] == "chan receive"
        assert f"{n:,} goroutines created between" in head_text(page)
        page.locator(".slick-row").first.locator(".slick-cell").first.click()
        wait_for(lambda: "runtime.goexit" in model_data_text(page), timeout=5, what="stack")
        page.screenshot(path=artifacts / "timeline_tap_climb.png", full_page=True)

        # box-select the middle third of the climb
        left, right = spikes["left"][i], spikes["right"][i]
        a = left + (right - left) / 3
        b = left + 2 * (right - left) / 3
        drag(page, panel_point(page, "creations per site", a), panel_point(page, "creations", b))
        wait_for(lambda: model_data(page, "window")["x0"] != win["x0"], timeout=5, what="new win")
        win2 = model_data(page, "window")
        assert a - model.build(rec).bin_ms <= win2["x0"][0] <= a + model.build(rec).bin_ms
        n2, alive2 = raw_count(rec, site, win2["x0"][0], win2["x1"][0])
        assert 0 < n2 < n
        wait_for(lambda: table_rows(page)[0][1] == f"{n2:,}", timeout=5, what="table update")
        assert table_rows(page)[0][2] == f"{alive2:,}"
        page.screenshot(path=artifacts / "timeline_box_select.png", full_page=True)
        # a live update patching a bin inside the window refreshes the table, no new select
        page.evaluate(
            """(x0) => {
              const agg = Bokeh.documents[0].get_model_by_name("agg")
              const i = agg.data.bin.findIndex((b) => b >= x0)
              agg.patch(new Map([["created", [[i, agg.data.created[i] + 5]]]]))
            }""",
            win2["x0"][0],
        )
        wait_for(lambda: table_rows(page)[0][1] == f"{n2 + 5:,}", timeout=5, what="refresh")
        assert errors == []


def model_data_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate("() => Bokeh.documents[0].get_model_by_name('stack').text")


def test_markup_in_site_names_stays_text_and_page_works_offline(
    tmp_path: Path, artifacts: Path
) -> None:
    evil = 'main.<img src=x onerror="window.pwned=1"> /w/<script>window.pwned=2</script>.go:7'
    t0 = pd.Timestamp.now(tz="UTC").floor("s")
    rows = [
        # 2 s of creations, a 1 s gap, 2 s more
        {"time": t0 + pd.Timedelta(milliseconds=10 * i + 1000 * (i >= 200)), "seq": i,
         "site": evil if i % 2 else
         "main.ok /w/ok.go:1", "stack_id": i % 2, "stack": (evil if i % 2 else "ok",)}
        for i in range(400)
    ]  # fmt: skip
    rec = Recording(creations=tables.frame("creations", rows), name="<b>x</b>")
    html = tmp_path / "evil.html"
    export.save_html(layout.build(model.build(rec), "<b>x</b>").root, html, "<b>x</b>")
    with chromium_page() as (page, errors):
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        open_timeline(page, html)
        t = model.ms(rec.creations["time"])
        drag(
            page,
            panel_point(page, "creations", float(t.min())),
            panel_point(page, "creations", float(t.max())),
        )
        rows_seen = wait_for(lambda: table_rows(page), timeout=5, what="rows")
        assert sorted((r[0], r[1]) for r in rows_seen) == [  # the names, literally
            ("main.<img src=x onerror=\"window.pwned=1\"> /w/<script>window.pwned=2</script>.go:7",
             "200"),
            ("main.ok /w/ok.go:1", "200"),
        ]  # fmt: skip
        evil_row = [r[0] for r in rows_seen].index(evil)
        page.locator(".slick-row").nth(evil_row).locator(".slick-cell").first.click()
        wait_for(lambda: evil in model_data_text(page), timeout=5, what="stack text")
        assert page.locator("img[src=x]").count() == 0
        assert page.evaluate("() => window.pwned") is None and dialogs == []
        page.screenshot(path=artifacts / "timeline_markup_as_text.png", full_page=True)
        gap = float(t0.value / 1e6) + 2000
        drag(
            page,
            panel_point(page, "creations", gap + 200),
            panel_point(page, "creations", gap + 800),
        )
        wait_for(lambda: head_text(page).startswith("No goroutines created between"), 5, "gap")
        assert f"the recording has them from {t0:%H:%M:%S}.000 to" in head_text(page)
        assert page.locator(".slick-row").count() == 0
        assert [u for u in requests if not u.startswith("file://")] == []  # offline
        assert errors == []
    assert np.isnan(model.build(rec).sources["agg"]["alive"]).all()
