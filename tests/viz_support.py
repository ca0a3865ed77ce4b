"""Helpers for the timeline tests (model, browser, JupyterLab): real recordings, Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from goleak_magic import tables
from goleak_magic.build import examples_dir
from goleak_magic.target import Target

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def go_statement(example: str, pattern: str) -> tuple[str, int]:
    """(file, line) of the ``go`` statement in a shipped example whose line matches."""
    path = examples_dir() / example / "main.go"
    lines = path.read_text().splitlines()
    [n] = [i for i, line in enumerate(lines, 1) if re.search(pattern, line)]
    return str(path), n


def creations_from_counts(target: Target, site: str, stack: tuple[str, ...]) -> pd.DataFrame:
    """Creation rows implied by a real run of ``spawn`` (one go statement, nothing exits).

    Each schedtrace tick's rise in the live count is that many creations at ``site``,
    spread evenly over the tick. Used where the assertion is about aggregation, not about
    Delve (the browser "done when" test uses a real %dlvtrace recording).
    """
    s = target.sched.dropna(subset=["goroutines"])
    t = s["time"].astype("int64").to_numpy()
    rise = np.diff(s["goroutines"].astype(int).to_numpy(), prepend=s["goroutines"].iloc[0])
    rows = []
    goid = 100
    for i in range(1, len(s)):
        for k in range(max(0, rise[i])):
            when = t[i - 1] + (t[i] - t[i - 1]) * (k + 0.5) / rise[i]
            rows.append(
                {"time": int(when), "seq": len(rows), "goid": 1, "new_goid": goid, "site": site,
                 "site_func": site.split()[0], "site_file": site.split()[1].rsplit(":", 1)[0],
                 "site_line": int(site.rsplit(":", 1)[1]), "stack": stack, "stack_id": 0}
            )  # fmt: skip
            goid += 1
    return tables.frame("creations", rows)


@contextmanager
def chromium_page(width: int = 1400, height: int = 1700) -> Iterator[tuple[Any, list[str]]]:
    """A headless Chromium page and the list its console errors / page errors land in."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            yield page, errors
        finally:
            browser.close()


def open_timeline(page: Any, html: Path) -> None:
    page.goto(html.resolve().as_uri())
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.index.roots.length > 0",
        timeout=15_000,
    )
    page.wait_for_selector(".bk-Canvas", state="attached", timeout=15_000)


def model_data(page: Any, name: str) -> dict[str, list[Any]]:
    """A named ColumnDataSource's columns as the page sees them."""
    return page.evaluate(
        """(name) => {
          const m = Bokeh.documents[0].get_model_by_name(name)
          const out = {}
          for (const [k, v] of Object.entries(m.data)) out[k] = Array.from(v)
          return out
        }""",
        name,
    )


def panel_point(page: Any, title_prefix: str, x_ms: float) -> tuple[float, float]:
    """Page pixel coordinates of time ``x_ms`` low in the panel (below its legend)."""
    return tuple(
        page.evaluate(
            """([prefix, x]) => {
              for (const root of Bokeh.index.roots) {
                for (const v of root.owner.query((v) => v.model.type === "Figure")) {
                  if (!v.model.title.text.startsWith(prefix)) continue
                  const r = v.canvas_view.el.getBoundingClientRect()
                  const f = v.frame.bbox
                  return [r.left + v.frame.x_scale.compute(x), r.top + f.top + f.height * 0.85]
                }
              }
              throw new Error("no panel " + prefix)
            }""",
            [title_prefix, x_ms],
        )
    )


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, start[1], steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()


def table_rows(page: Any) -> list[list[str]]:
    """The linked table's rows as the user sees them (cell text; pierces shadow DOM)."""
    rows = page.locator(".slick-row")
    rows.first.wait_for(timeout=5_000)
    return [r.locator(".slick-cell").all_text_contents() for r in rows.all()]


def head_text(page: Any) -> str:
    return page.evaluate("() => Bokeh.documents[0].get_model_by_name('head').text")


def ms_of(ts: pd.Timestamp) -> float:
    return (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(1, "ms")
