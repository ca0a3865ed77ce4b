"""Timeline model and bokeh layout, on real recordings: what each panel gets, the linked
sources the page's selection callback reads, live deltas, bad input."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.events import SelectionGeometry
from bokeh.models import CustomJS, DataTable, Div
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from goleak_magic import analysis, tables
from goleak_magic.errors import GoleakError
from goleak_magic.session import Session
from goleak_magic.viz import LiveTimeline, StaticTimeline, export, layout, live, model
from goleak_magic.viz.model import Recording

from .conftest import wait_for
from .viz_support import creations_from_counts, go_statement


def figures(fig: layout.TimelineFigure) -> list:
    return [c for c in fig.root.children if c.__class__.__name__ == "figure"]


def test_schedtrace_only_draws_what_it_can_and_says_what_is_missing(
    sess: Session, tmp_path: Path
) -> None:
    t = sess.launch("example:leakyservice", args=["-rate", "50"])  # no --detail
    wait_for(lambda: len(t.tables["sched"]) >= 5, what="sched ticks")
    tl = sess.timeline(t.name, html=tmp_path / "only.html")
    assert isinstance(tl, StaticTimeline)
    assert tl.figure.panels == ["sched"]
    notes = " ".join(tl.data.notes)
    for hint in ("--detail", f"%dlvtrace {t.name}", f"%schedsnap {t.name}", "heatmap"):
        assert hint in notes
    assert html.escape(tl.data.notes[0]) in tl.figure.notes.text
    sched = tl.data.sources["sched"]
    assert len(sched["x"]) >= 5 and np.all(np.diff(sched["x"]) > 0)
    assert (tmp_path / "only.html").stat().st_size > 100_000  # bokeh inlined


def test_detail_leak_gives_a_climb_and_a_chan_send_heatmap(sess: Session) -> None:
    t = sess.launch("example:leakyservice", detail=True, args=["-rate", "80"])
    wait_for(lambda: (t.sched["goroutines"].max() or 0) >= 60, what="the leak to climb")
    rec = Recording.of(t)
    data = model.build(rec)
    assert data.has["counts"] and data.has["heat"] and not data.has["rate"]
    counts = data.sources["counts"]
    assert len(counts["x"]) == len(rec.sched)
    assert counts["total"].tolist() == rec.sched["goroutines"].astype(float).tolist()
    spikes = data.sources["spikes"]
    climbs = [i for i, k in enumerate(spikes["kind"]) if k == "climb"]
    assert climbs, spikes["label"]
    i = climbs[-1]
    assert spikes["top"][i] >= 60 and spikes["right"][i] > spikes["left"][i]
    assert data.reasons[0] == "chan send"  # the leak is the most common wait
    heat = pd.DataFrame(data.sources["heat"])
    send = rec.waits[rec.waits["wait_reason"] == "chan send"]
    assert heat[heat["reason"] == "chan send"]["count"].max() == send["count"].max()
    fig = layout.build(data, "t")
    assert fig.panels == ["counts", "sched", "heat"]
    assert list(fig.reasons.factors) == data.reasons[::-1]


def test_empty_recording_gives_empty_panels_and_a_note(tmp_path: Path) -> None:
    data = model.build(Recording())
    assert not any(data.has.values())
    assert data.notes[0].startswith("Nothing recorded yet")
    fig = layout.build(data, "nothing yet")
    assert fig.panels == ["counts", "sched"]
    export.save_html(fig.root, tmp_path / "empty.html", "empty")
    live_fig = layout.build(data, "nothing yet", live=True)
    assert live_fig.panels == ["counts", "sched", "rate", "alive", "heat"]


def test_exited_target_still_draws(sess: Session) -> None:
    t = sess.launch("example:spawn", detail=True, args=["-n", "40", "-hold", "1500ms"])
    assert t.wait(20)
    tl = sess.timeline(t.name)
    assert "exited, exit 0" in tl.figure.notes.text
    assert tl.data.sources["counts"]["total"].max() >= 40


def spawn_recording(sess: Session, n: int = 300) -> tuple[Recording, str]:
    t = sess.launch("example:spawn", detail=True, args=["-n", str(n), "-every", "5ms"])
    wait_for(lambda: (t.sched["goroutines"].max() or 0) >= n, what="all goroutines")
    file, line = go_statement("spawn", r"^\s*go park\(ch\)$")
    site = f"main.main {file}:{line}"
    c = creations_from_counts(t, site, (site, "runtime.goexit"))
    return Recording(sched=t.sched, waits=t.waits, creations=c, name=t.name), site


def test_creations_are_counted_per_bin_and_site(sess: Session) -> None:
    rec, site = spawn_recording(sess)
    n = len(rec.creations)
    assert n >= 250
    data = model.build(rec)
    agg, sites = data.sources["agg"], data.sources["sites"]
    assert agg["created"].sum() == n
    assert np.all(np.diff(agg["bin"]) >= 0)  # sorted: the page binary-searches it
    assert np.all(agg["bin"] % data.bin_ms == 0)
    assert sites["site"][0] == site and sites["created"][0] == n
    assert sites["stack"][0].startswith("created at:\n  " + site)
    assert np.isnan(agg["alive"]).all()  # no snapshot: alive unknown, not zero
    rate = data.sources["rate"]
    assert rate["r0"].sum() * data.bin_ms / 1000 == pytest.approx(n)
    assert data.groups[0] == site and data.groups[-1] == model.OTHER
    assert any("creations are drawn as counts per" in x for x in data.notes)
    # a window's sum over agg equals the raw creations in it (what the page computes)
    t = model.ms(rec.creations["time"])
    x0 = agg["bin"][len(agg["bin"]) // 3]
    x1 = x0 + 10 * data.bin_ms
    inside = (agg["bin"] >= x0) & (agg["bin"] < x1)
    assert agg["created"][inside].sum() == ((t >= x0) & (t < x1)).sum()


def test_snapshot_makes_alive_known_and_names_the_blocked_location(sess: Session) -> None:
    rec, site = spawn_recording(sess, n=120)
    c = rec.creations
    func, file_line = site.split(" ", 1)
    # One snapshot of the same goroutines, as %schedsnap records them, minus the first ten.
    snap = [
        {"snapshot": 1, "time": c["time"].max(), "goid": int(g), "status": "waiting",
         "wait_reason": "chan receive", "top": "main.park /x/main.go:25",
         "user_top": "main.park /x/main.go:25", "created_by": func, "created_at": file_line}
        for g in c["new_goid"].iloc[10:]
    ]  # fmt: skip
    rec.goroutines = tables.frame("goroutines", snap)
    data = model.build(rec)
    assert data.alive_known and data.has["alive"]
    sites = data.sources["sites"]
    assert sites["site"][0] == site
    assert sites["alive"][0] == len(c) - 10
    assert sites["blocked_at"][0] == "main.park /x/main.go:25"
    assert sites["wait_reason"][0] == "chan receive"
    assert data.sources["agg"]["alive"].sum() == len(c) - 10
    assert data.sources["alive"]["a0"].tolist() == [len(c) - 10]
    # without the trace, the table counts first sightings; the rate panel stays empty
    rec.creations = tables.empty("creations")
    data = model.build(rec)
    assert data.creation_source == "snapshots" and not data.has["rate"]
    assert data.sources["agg"]["created"].sum() == len(c) - 10
    assert any("first appear" in n for n in data.notes)


def test_many_sites_are_capped_and_grouped() -> None:
    n_sites = model.MAX_TABLE_SITES + 50
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [
        {"time": t0 + pd.Timedelta(seconds=i % 60), "seq": i,
         "site": f"main.f{i % n_sites} m.go:{i % n_sites}", "stack_id": i % n_sites}
        for i in range(n_sites * 2)
    ]  # fmt: skip
    data = model.build(Recording(creations=tables.frame("creations", rows)))
    sites = data.sources["sites"]
    assert len(sites["site"]) == model.MAX_TABLE_SITES + 1
    assert sites["site"][-1] == "(50 more sites)"
    assert data.sources["agg"]["created"].sum() == n_sites * 2
    assert sorted(set(sites["slot"])) == list(range(model.TOP_SITES + 1))


def test_layout_links_every_panel_to_one_axis_and_the_table(sess: Session) -> None:
    rec, _ = spawn_recording(sess, n=100)
    data = model.build(rec)
    fig = layout.build(data, "t")
    figs = figures(fig)
    assert len(figs) == len(fig.panels) == 4  # counts, sched, rate, heat
    assert len({id(p.x_range) for p in figs}) == 1
    src = fig.sources
    for p in figs:
        (cb,) = p.js_event_callbacks[SelectionGeometry.event_name]
        assert cb is fig.callbacks["box"]
        assert any(r.data_source is src["window"] for r in p.renderers)
    for mode, cb in fig.callbacks.items():
        assert isinstance(cb, CustomJS) and cb.args["mode"] == mode
        for arg, name in (("agg", "agg"), ("sites", "sites"), ("table", "table"),
                          ("win", "window"), ("spikes", "spikes")):  # fmt: skip
            assert cb.args[arg] is src[name]
        assert cb.args["bin_ms"] == data.bin_ms
        assert "table.data = {" in cb.code
    assert src["spikes"].selected.js_property_callbacks["change:indices"] == [
        fig.callbacks["spike"]
    ]
    for event in ("change:data", "streaming", "patching"):
        assert src["agg"].js_property_callbacks[event] == [fig.callbacks["refresh"]]
    (table,) = [c for c in fig.root.children if isinstance(c, DataTable)]
    assert table.source is src["table"]
    assert [c.field for c in table.columns] == [
        "site", "created", "alive", "blocked_at", "wait_reason", "blocked_for"
    ]  # fmt: skip
    for name, source in src.items():
        assert source.name == name and set(source.data) == set(data.sources[name])


def test_site_names_are_data_not_markup(tmp_path: Path) -> None:
    evil = "main.<img src=x onerror=alert(1)> /a/<b>.go:1"
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [{"time": t0, "seq": 0, "site": evil, "stack_id": 0, "stack": (evil,)}]
    rec = Recording(creations=tables.frame("creations", rows), name="<script>x</script>")
    data = model.build(rec)
    fig = layout.build(data, "<script>x</script>")
    assert "<script>" not in fig.notes.text and "&lt;script&gt;" in fig.notes.text
    tips = fig.slot_hovers["rate"][0].tooltips
    assert "<img" not in tips and html.escape(evil) in tips
    dollar = "main.(*T[go.shape.$1]).f@v2 /x.go:1"  # bokeh would read @f / $1 as fields
    rows = [{"time": t0, "seq": 0, "site": dollar, "stack_id": 0, "stack": (dollar, "main.main")}]
    data = model.build(Recording(creations=tables.frame("creations", rows)))
    tips = layout.build(data, "x").slot_hovers["rate"][0].tooltips
    assert "main.(*T[go.shape.&#36;1]).f&#64;v2 /x.go:1" in tips and "main.main" in tips
    assert "@r0{0,0.0}/s" in tips  # the one real field
    heads = [c for c in fig.root.children if isinstance(c, Div) and c.name == "head"]
    assert heads[0].render_as_text


def test_live_delta_streams_new_rows_and_patches_the_tail() -> None:
    old = {"x": np.array([1.0, 2.0, 3.0]), "s": ["a", "b", "c"]}
    assert live.delta(old, old) == ("same", None)
    how, rows = live.delta(old, {"x": np.array([1.0, 2.0, 3.0, 4.0]), "s": ["a", "b", "c", "d"]})
    assert how == "stream" and rows["x"].tolist() == [4.0] and rows["s"] == ["d"]
    how, (patches, rows) = live.delta(
        old, {"x": np.array([1.0, 2.0, 3.5, 4.0]), "s": ["a", "b", "c", "d"]}
    )
    assert how == "patch"
    assert patches["x"] == [(slice(2, 3), patches["x"][0][1])]
    assert patches["x"][0][1].tolist() == [3.5] and rows["x"].tolist() == [4.0]
    assert live.delta(old, {"x": np.array([9.0]), "s": ["z"]})[0] == "replace"
    assert live.delta(old, {"y": np.array([1.0, 2.0, 3.0])})[0] == "replace"
    nan = {"x": np.array([1.0, np.nan])}
    assert live.delta(nan, {"x": np.array([1.0, np.nan])})[0] == "same"
    big = {"x": np.arange(500.0)}
    assert live.delta(big, {"x": np.arange(500.0) + 1})[0] == "replace"


def test_live_timeline_follows_a_running_target(sess: Session) -> None:
    t = sess.launch("example:leakyservice", detail=True, args=["-rate", "50"])
    tl = sess.timeline(t.name, live=True)
    assert isinstance(tl, LiveTimeline)
    counts = tl.figure.sources["counts"]
    n0 = len(counts.data["x"])
    seen: set[str] = set()

    def grew() -> bool:
        seen.update(tl.update().values())
        for name, cols in tl.data.sources.items():  # the figure holds exactly the model
            if name not in ("table", "window"):
                got = pd.DataFrame({k: list(v) for k, v in tl.figure.sources[name].data.items()})
                pd.testing.assert_frame_equal(
                    got, pd.DataFrame({k: list(v) for k, v in cols.items()})
                )
        return len(counts.data["x"]) > n0 + 3

    wait_for(grew, what="the live figure to grow")
    assert "stream" in seen
    assert counts.data["x"].tolist() == tl.data.sources["counts"]["x"].tolist()
    assert tl.figure.panels == ["counts", "sched", "rate", "alive", "heat"]
    titles = {k: t.text for k, t in tl.figure.titles.items()}
    assert titles["rate"].endswith(f"none yet: Start trace, or %dlvtrace {t.name}")
    assert titles["alive"].endswith(f"none yet: Take snapshot, or %schedsnap {t.name}")
    assert "none yet" not in titles["counts"] + titles["heat"]
    assert "running" in tl.status()
    tl.controls.stop_target()
    tl.update()
    assert "stopped" in tl.figure.notes.text
    assert len(counts.data["x"]) == len(t.sched.dropna(subset=["goroutines"]))


def test_goleak_timeline_magic(ip: InteractiveShell, tmp_path: Path) -> None:
    ip.run_line_magic("golaunch", "example:spawn --name tl --detail -- -n 30")
    out = tmp_path / "my leak.html"
    tl = ip.run_line_magic("goleak", f"timeline tl --html '{out}'")
    assert isinstance(tl, StaticTimeline) and tl.html == out and out.stat().st_size > 100_000
    assert tl.root.document is None  # free again after the export: show() can adopt it
    assert repr(tl) == f"<StaticTimeline: counts, sched, heat, written to {out}>"
    assert isinstance(ip.run_line_magic("goleak", "timeline tl --live"), LiveTimeline)
    with pytest.raises(UsageError, match="no target named 'nope'"):
        ip.run_line_magic("goleak", "timeline nope")
    with pytest.raises(UsageError, match="is a directory"):
        ip.run_line_magic("goleak", f"timeline tl --html {tmp_path}")
    with pytest.raises(UsageError, match="does not exist"):
        ip.run_line_magic("goleak", f"timeline tl --html {tmp_path}/no/such/x.html")
    with pytest.raises(UsageError):
        ip.run_line_magic("goleak", "timeline")


def test_export_errors_are_one_sentence() -> None:
    fig = layout.build(model.build(Recording()), "x")
    with pytest.raises(GoleakError, match=r"could not write /proc/self/x.html: .*; pick"):
        export.save_html(fig.root, "/proc/self/x.html", "x")


def test_many_spikes_keep_the_largest() -> None:
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    # 1,000 bursts of growing size, each collected at the next tick (the healthy shape)
    rows = [
        {"time": t0 + pd.Timedelta(milliseconds=100 * i), "t_ms": 100 * i,
         "goroutines": 10 + (20 + i // 2) * (i % 2)}
        for i in range(2001)  # ends collected: the last burst is a spike too
    ]  # fmt: skip
    spikes = model.build(Recording(sched=tables.frame("sched", rows))).sources["spikes"]
    assert len(spikes["left"]) == model.MAX_EPISODES
    assert set(spikes["kind"]) == {"spike"}
    assert min(spikes["top"]) == 10 + 20 + (2000 - 2 * model.MAX_EPISODES) // 2
    assert np.all(np.diff(spikes["left"]) > 0)


def test_snapshots_without_detail_fill_counts_alive_and_the_table(sess: Session) -> None:
    t = sess.launch("example:leakyservice", args=["-rate", "40", "-slow", "1"])  # no --detail
    series = sess.snapshot(t.name, every=0.7, count=3)
    series.wait()
    assert len(t.snapshots) == 3, series.error
    data = model.build(Recording.of(t))
    g = t.goroutines
    counts = data.sources["counts"]
    assert counts["total"].tolist() == g.groupby("snapshot").size().astype(float).tolist()
    assert counts["waiting"].sum() == (g["status"] == "waiting").sum()
    assert any("come from the snapshots" in n for n in data.notes)
    assert data.creation_source == "snapshots" and not data.has["rate"]
    file, line = go_statement("leakyservice", r"^\tgo func\(\) \{$")
    sites = data.sources["sites"]
    assert sites["site"][0] == f"main.handler {file}:{line}"  # the leak ranks first
    assert sites["wait_reason"][0] == "chan send"
    agg = data.sources["agg"]
    leak = agg["site"] == 0
    first_seen = analysis.goroutine_sites(g.drop_duplicates("goid")).fillna(analysis.NO_SITE)
    assert agg["created"][leak].sum() == (first_seen == sites["site"][0]).sum()
    fig = layout.build(data, "t")
    assert fig.panels == ["counts", "sched", "alive", "heat"]
