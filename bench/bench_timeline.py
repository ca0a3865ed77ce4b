"""Timeline at scale: build + export time, HTML size, first render and panning in Chromium.

Synthetic recordings (said so in the results): N creation events generated with the
``creations`` schema over 30 minutes at 60 sites (Zipf-weighted; site 0 leaks 10% of
what it creates), 100 snapshots of the goroutines still alive, a 500 ms schedtrace with
--detail counts and wait reasons. Real recordings of this size would take hours of
%dlvtrace (~2 ms per creation, FACTS.md).

For N in 10k / 100k / 1M: model build, layout build, export (``file_html``, INLINE), the
HTML size, time to first render in headless Chromium (navigation until the bokeh document
is idle: every panel drawn) and the time per pan step (move the shared x range, wait for
the next two frames; then again with every glyph hidden, which isolates what a frame
costs whatever the data). Anchors from the same run: the same five panels with no data
(bokeh's own fixed cost: its inlined JS, drawing and panning empty panels) and the size
of the raw events as JSON (what shipping every point would weigh). Targets: 1M events ->
HTML <= 20 MB, first render <= 3 s.

Usage: python bench/bench_timeline.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.viz_support

from goleak_magic import tables
from goleak_magic.viz import export, layout, model
from tests.viz_support import chromium_page

T0 = pd.Timestamp("2026-01-01 12:00", tz="UTC").value
SPAN_NS = 30 * 60 * 10**9
N_SITES = 60
N_SNAPS = 100


def synthetic(n: int, seed: int = 1) -> model.Recording:
    rng = np.random.default_rng(seed)
    w = 1 / np.arange(1, N_SITES + 1) ** 1.1
    site_i = rng.choice(N_SITES, n, p=w / w.sum())
    t = np.sort(rng.integers(0, SPAN_NS, n)) + T0
    funcs = [f"main.worker{i}" for i in range(N_SITES)]
    files = [f"/src/svc/worker{i % 7}.go:{40 + i}" for i in range(N_SITES)]
    sites = np.array([f"{f} {a}" for f, a in zip(funcs, files, strict=True)], object)
    variant = rng.integers(0, 2, n)
    stack_id = site_i * 2 + variant
    stacks = [
        (sites[i // 2], f"main.handle{i % 2} /src/svc/handler.go:{10 + i}",
         "net/http.HandlerFunc.ServeHTTP /go/src/net/http/server.go:2294", "runtime.goexit")
        for i in range(2 * N_SITES)
    ]  # fmt: skip
    goid = np.arange(n, dtype=np.int64) + 100
    creations = tables.conform(
        "creations",
        pd.DataFrame(
            {"time": t, "seq": np.arange(n), "goid": 1, "new_goid": goid, "site": sites[site_i],
             "site_func": np.array(funcs, object)[site_i], "site_line": 40 + site_i,
             "stack": np.array([*stacks, ()], object)[:-1][stack_id], "stack_id": stack_id}
        ),
    )  # fmt: skip
    leaked = (site_i == 0) & (rng.random(n) < 0.1)
    snap_t = T0 + np.linspace(SPAN_NS / N_SNAPS, SPAN_NS, N_SNAPS).astype(np.int64)
    parts = []
    for k, ts in enumerate(snap_t):
        alive = leaked & (t <= ts)
        m = int(alive.sum())
        parts.append(
            pd.DataFrame(
                {"snapshot": k + 1, "time": ts, "goid": goid[alive], "status": "waiting",
                 "wait_reason": "chan send", "top": "runtime.gopark /go/src/runtime/proc.go:460",
                 "user_top": "main.worker0.func1 /src/svc/worker0.go:44",
                 "created_by": funcs[0], "created_at": files[0], "leaked": np.ones(m, bool)}
            )
        )  # fmt: skip
    goroutines = tables.conform("goroutines", pd.concat(parts, ignore_index=True))
    ticks = T0 + np.arange(0, SPAN_NS, 500 * 10**6)
    live = np.searchsorted(t[leaked], ticks) + 40 + rng.integers(0, 30, len(ticks))
    sched = tables.conform(
        "sched",
        pd.DataFrame(
            {"time": ticks, "t_ms": (ticks - T0) // 10**6, "threads": 9, "idlethreads": 3,
             "runqueue": 0, "local_runq": rng.integers(0, 4, len(ticks)), "goroutines": live,
             "g_waiting": live - 2, "g_running": 1, "g_runnable": 1, "g_syscall": 0,
             "g_leaked": 0, "g_other": 0}
        ),
    )  # fmt: skip
    reasons = ["chan send", "select", "IO wait", "sleep", "GC worker (idle)"]
    waits = tables.conform(
        "waits",
        pd.DataFrame(
            {"time": np.repeat(ticks, 5), "t_ms": np.repeat((ticks - T0) // 10**6, 5),
             "wait_reason": reasons * len(ticks),
             "count": np.column_stack([live - 30, *[rng.integers(1, 9, len(ticks))] * 4]).ravel()}
        ),
    )  # fmt: skip
    return model.Recording(sched, waits, creations, goroutines, name="synthetic")


def export_one(rec: model.Recording, out: Path, all_panels: bool = False) -> dict[str, float]:
    t0 = time.perf_counter()
    data = model.build(rec)
    t1 = time.perf_counter()
    fig = layout.build(data, "synthetic", live=all_panels)  # live: every panel, even empty
    t2 = time.perf_counter()
    export.save_html(fig.root, out, "synthetic")
    t3 = time.perf_counter()
    return {"model_s": t1 - t0, "layout_s": t2 - t1, "export_s": t3 - t2,
            "html_mb": out.stat().st_size / 1e6}  # fmt: skip


PAN_JS = """async () => {
  const figs = [...Bokeh.index.roots[0].owner.query((v) => v.model.type === "Figure")]
  const xr = figs[0].model.x_range
  const frame = () => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)))
  await frame()
  const step = (xr.end - xr.start) / 50
  const t0 = performance.now()
  for (let i = 0; i < 30; i++) {
    xr.setv({start: xr.start + step, end: xr.end + step})
    await frame()
  }
  return (performance.now() - t0) / 30
}"""


HIDE_GLYPHS_JS = """() => {
  for (const v of Bokeh.index.roots[0].owner.query((v) => v.model.type === "GlyphRenderer"))
    v.model.visible = false
}"""


def render(page: Any, html: Path) -> dict[str, float]:
    """First render; a pan step with everything drawn, then with no glyph drawn (what the
    page costs per frame whatever the data: axes, labels, layout)."""
    t0 = time.perf_counter()
    page.goto(html.resolve().as_uri())
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle",
        timeout=60_000,
        polling=10,
    )
    first = time.perf_counter() - t0
    pan = page.evaluate(PAN_JS)
    page.evaluate(HIDE_GLYPHS_JS)
    return {"first_render_s": first, "pan_step_ms": pan, "pan_no_glyphs_ms": page.evaluate(PAN_JS)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    sizes = [int(s) for s in ap.parse_args().sizes.split(",")]
    out = Path(tempfile.mkdtemp(prefix="bench_timeline-"))
    rows = {}
    anchor = export_one(model.Recording(name="empty"), out / "empty.html", all_panels=True)
    for n in sizes:
        t0 = time.perf_counter()
        rec = synthetic(n)
        gen = time.perf_counter() - t0
        r = export_one(rec, out / f"n{n}.html")
        t = model.ms(rec.creations["time"])
        codes = pd.factorize(rec.creations["site"])[0]
        r["raw_json_mb"] = len(json.dumps({"t": t.tolist(), "site": codes.tolist()})) / 1e6
        r["gen_s"] = gen
        r["snapshot_rows"] = len(rec.goroutines)
        rows[n] = r
        print(f"n={n:,}: generated in {gen:.1f}s, {r}", flush=True)
    with chromium_page() as (page, errors):
        anchor.update(render(page, out / "empty.html"))
        for n in sizes:
            rows[n].update(render(page, out / f"n{n}.html"))
        assert errors == [], errors
    print(f"\nanchor (no data): {anchor}")
    head = (
        "| events | model + layout s | export s | HTML MB (x empty) | raw events JSON MB | "
        "first render s (x empty) | pan step ms (x empty) | pan step, no glyphs drawn, ms |"
    )
    print(head)
    print("|" + "---|" * 8)
    for n, r in rows.items():
        print(
            f"| {n:,} | {r['model_s']:.2f} + {r['layout_s']:.2f} | {r['export_s']:.2f} | "
            f"{r['html_mb']:.2f} ({r['html_mb'] / anchor['html_mb']:.2f}x) | "
            f"{r['raw_json_mb']:.1f} | {r['first_render_s']:.2f} "
            f"({r['first_render_s'] / anchor['first_render_s']:.2f}x) | "
            f"{r['pan_step_ms']:.1f} ({r['pan_step_ms'] / anchor['pan_step_ms']:.2f}x) | "
            f"{r['pan_no_glyphs_ms']:.1f} |"
        )
    big = rows[max(rows)]
    print(
        f"\ntargets at {max(rows):,} events: HTML {big['html_mb']:.1f} MB (<= 20), "
        f"first render {big['first_render_s']:.2f} s (<= 3)"
    )


if __name__ == "__main__":
    main()
