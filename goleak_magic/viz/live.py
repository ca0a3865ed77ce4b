"""Live mode: the same figure, fed while the target runs.

A ``jupyter_bokeh.BokehModel`` shows the layout in JupyterLab. A task on the kernel's
event loop (so every document change happens on the kernel's own thread) rebuilds the
timeline data at a bounded rate and sends only what changed: new rows with
``ColumnDataSource.stream``, a changed tail (the bin still filling) with ``patch``, and
a full replacement only when earlier rows changed (re-binning, re-ranked sites).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from bokeh.core.properties import value
from jupyter_bokeh import BokehModel

from ..analysis import short_loc
from . import model
from .layout import TimelineFigure, notes_html, panel_title, slot_tooltips, window_args
from .model import Recording, TimelineData, heat_high

if TYPE_CHECKING:
    from ..record import Record

MIN_INTERVAL_S = 1.0  # at most one update a second...
MAX_BUSY = 0.2  # ...and never more than a fifth of the kernel's time
MAX_PATCH = 64  # rows patched in place before a full replace is cheaper
LIVE_MIN_BIN_MS = 100


def delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, Any]:
    """How to turn source data ``old`` into ``new``.

    ("same", None) | ("stream", rows) | ("patch", (patches, rows)) | ("replace", new).
    """
    if set(old) != set(new):
        return "replace", new
    n_old = len(next(iter(old.values()), ()))
    n_new = len(next(iter(new.values()), ()))
    if n_new < n_old:
        return "replace", new
    first = n_old  # first row (below n_old) that differs in any column
    for k in new:
        a, b = np.asarray(old[k]), np.asarray(new[k])[:n_old]
        same = a == b
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            same |= np.isnan(a) & np.isnan(b)
        bad = np.flatnonzero(~np.asarray(same, bool))
        if len(bad):
            first = min(first, int(bad[0]))
    rows = {k: _tail(v, n_old) for k, v in new.items()}
    if first == n_old:
        return ("stream", rows) if n_new > n_old else ("same", None)
    if n_old - first > MAX_PATCH:
        return "replace", new
    patches = {k: [(slice(first, n_old), _tail(v, first)[: n_old - first])] for k, v in new.items()}
    return "patch", (patches, rows)


def _tail(v: Any, start: int) -> Any:
    return v[start:] if isinstance(v, np.ndarray) else list(v[start:])


def apply(fig: TimelineFigure, data: TimelineData, title: str) -> dict[str, str]:
    """Bring ``fig`` up to ``data``; returns what was done to each source (for tests)."""
    done = {}
    consts = window_args(data)
    for cb in fig.callbacks.values():
        if any(cb.args.get(k) != v for k, v in consts.items()):
            cb.args = {**cb.args, **consts}
    # sites before agg: the table refresh that agg's change triggers reads both
    for name in ("sites", *[k for k in data.sources if k not in ("sites", "table", "window")]):
        source = fig.sources[name]
        how, payload = delta(source.data, data.sources[name])
        done[name] = how
        if how == "stream":
            source.stream(payload)
        elif how == "patch":
            patches, rows = payload
            source.patch(patches)
            if len(next(iter(rows.values()))):
                source.stream(rows)
        elif how == "replace":
            source.data = dict(payload)
    for panel, items in fig.legend_items.items():
        for i, (item, label) in enumerate(zip(items, data.groups, strict=True)):
            if getattr(item.label, "value", item.label) != short_loc(label):
                item.label = value(short_loc(label))  # a bare string would name a column
                item.visible = bool(label)
            tips = slot_tooltips(panel, i, data)
            if fig.slot_hovers[panel][i].tooltips != tips:
                fig.slot_hovers[panel][i].tooltips = tips
    if fig.reasons is not None and list(fig.reasons.factors) != data.reasons[::-1]:
        fig.reasons.factors = data.reasons[::-1]
    if fig.heat_mapper is not None:
        fig.heat_mapper.high = heat_high(data)
    for panel, t in fig.titles.items():
        if t.text != panel_title(panel, data):
            t.text = panel_title(panel, data)
    text = notes_html(title, data.notes)
    if fig.notes.text != text:
        fig.notes.text = text
    return done


class OneWayBokehModel(BokehModel):
    """A ``jupyter_bokeh.BokehModel`` that only sends, kernel to page.

    The page sends every change it applies back to the kernel, our own ``stream`` and
    ``patch`` included, and BokehModel applies them again: streams doubled the kernel's
    copy of the data, and a late echo of an older ``data`` could overwrite a newer one
    (seen with jupyter_bokeh 4.1 in JupyterLab 4). The kernel needs nothing from the page
    (selection and the table run in the page), so nothing is taken back.
    """

    def _sync_model(self, model: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        return


@dataclass
class Controls:
    """What the control bar's buttons do; a missing action leaves its button disabled."""

    stop_target: Callable[[], Any] | None = None
    start_trace: Callable[[], Any] | None = None
    stop_trace: Callable[[], Any] | None = None
    tracing: Callable[[], bool] | None = None
    snapshot: Callable[[], Any] | None = None


class LiveTimeline:
    """The live figure and its control bar; display it in a notebook cell."""

    def __repr__(self) -> str:
        return f"<LiveTimeline of {self.target.name}: {self.status_text()}>"

    def __init__(self, target: Record, controls: Controls | None = None) -> None:
        from .layout import build

        self.target = target
        self.controls = controls or Controls()
        self.data = self._build(0)
        self.figure = build(self.data, self.title, live=True)
        self.updates = 0
        self.last_cost = 0.0
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._widget: Any = None

    @property
    def title(self) -> str:
        return model.title_of(self.target)

    def _build(self, min_bin: int) -> TimelineData:
        rec = Recording.of(self.target)
        return model.build(rec, min_bin_ms=max(LIVE_MIN_BIN_MS, min_bin))

    def update(self) -> dict[str, str]:
        """Rebuild from the target's tables and send the changes to the figure."""
        t0 = time.perf_counter()
        self.data = self._build(self.data.bin_ms)
        done = apply(self.figure, self.data, self.title)
        self.updates += 1
        self.last_cost = time.perf_counter() - t0
        self._refresh_bar()
        return done

    @property
    def interval(self) -> float:
        return max(MIN_INTERVAL_S, self.last_cost / MAX_BUSY)

    # ---- scheduling ---------------------------------------------------------------
    def start(self) -> None:
        """Update in the background on the running event loop (the kernel's)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._refresh_bar()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            try:
                self.update()
            except Exception as e:  # keep the figure; say why it stopped following
                self.error = f"live updates stopped: {e}"
                self._refresh_bar()
                return
            if not self.target.alive:
                self.update()  # the last rows after exit
                self._refresh_bar()
                return
            await asyncio.sleep(self.interval)

    # ---- widgets --------------------------------------------------------------------
    def widget(self) -> Any:
        if self._widget is None:
            self._widget = self._make_widget()
        return self._widget

    def _make_widget(self) -> Any:
        import ipywidgets as w

        c = self.controls
        self._buttons = {
            "stop": w.Button(
                description="Stop target", icon="stop", disabled=c.stop_target is None
            ),
            "trace": w.Button(
                description="Start trace", icon="play", disabled=c.start_trace is None
            ),
            "snap": w.Button(
                description="Take snapshot", icon="camera", disabled=c.snapshot is None
            ),
        }
        self._status = w.HTML()
        self._buttons["stop"].on_click(lambda _b: self._act(c.stop_target, "stopped"))
        self._buttons["trace"].on_click(lambda _b: self._toggle_trace())
        self._buttons["snap"].on_click(lambda _b: self._act(c.snapshot, "snapshot taken"))
        bar = w.HBox([*self._buttons.values(), self._status])
        self._refresh_bar()
        return w.VBox([bar, OneWayBokehModel(self.figure.root)])

    def _toggle_trace(self) -> None:
        c = self.controls
        on = self._tracing()
        self._act(c.stop_trace if on else c.start_trace, "trace stopped" if on else "tracing")

    def _tracing(self) -> bool:
        return self.controls.tracing is not None and self.controls.tracing()

    def _act(self, fn: Callable[[], Any] | None, what: str) -> None:
        if fn is None:
            return
        try:
            fn()
            self.error = None
            self.update()
        except Exception as e:  # a button must not raise into the widget machinery
            self.error = f"{what} failed: {e}"
        self._refresh_bar()

    def _status_parts(self) -> list[str]:
        t = self.target
        n = {k: len(v) for k, v in t.tables.items()}
        if not t.alive:
            every = "done: the target has ended"
        else:
            every = f"every {self.interval:.1f} s" if self.running else "paused"
        return [
            f"{n['sched']:,} sched ticks",
            f"{n['creations']:,} creations",
            f"{self.data.sources['snaps']['x'].size:,} snapshots",
            f"update {self.updates} ({every})",
        ]

    def status_text(self) -> str:
        t = self.target
        error = [self.error] if self.error else []
        return " · ".join([f"{t.name} {t.state}", *self._status_parts(), *error])

    def status(self) -> str:
        """The control bar's status line (HTML; every piece of text escaped)."""
        t = self.target
        line = f"<b>{html.escape(t.name)}</b> {html.escape(t.state)} · "
        line += html.escape(" · ".join(self._status_parts()))
        if self.error:
            line += f" · <span style='color:#C62828'>{html.escape(self.error)}</span>"
        return line

    def _refresh_bar(self) -> None:
        if not hasattr(self, "_status"):
            return
        c = self.controls
        self._status.value = self.status()
        self._buttons["stop"].disabled = c.stop_target is None or not self.target.alive
        tracing = self._tracing()
        self._buttons["trace"].description = "Stop trace" if tracing else "Start trace"
        self._buttons["trace"].disabled = c.start_trace is None or not self.target.alive
        self._buttons["snap"].disabled = c.snapshot is None or not self.target.alive

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from .notebook import load_bokehjs

        load_bokehjs()
        display(self.widget())
        with contextlib.suppress(RuntimeError):  # no running loop: update() by hand
            self.start()
