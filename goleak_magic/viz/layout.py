"""The bokeh layout: panels on one wall-clock x axis, and the linked table below.

Every panel draws from a named ColumnDataSource filled from ``model.TimelineData``.
Selecting a window (box select on any panel) or tapping a spike runs ``js/window.js``
in the page, which sums the per-(bin, site) counts into the table: no kernel needed,
so the exported HTML keeps the interaction.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import pandas as pd
from bokeh.events import SelectionGeometry
from bokeh.layouts import column
from bokeh.models import (
    BoxSelectTool,
    CategoricalColorMapper,
    ColorBar,
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    DataTable,
    DatetimeTickFormatter,
    Div,
    FactorRange,
    HoverTool,
    Legend,
    LegendItem,
    LogColorMapper,
    NumberFormatter,
    PreText,
    PrintfTickFormatter,
    StringFormatter,
    TableColumn,
    TapTool,
    WheelZoomTool,
)
from bokeh.palettes import Blues256
from bokeh.plotting import figure

from ..analysis import short_loc
from .model import (
    SCHED_LINES,
    STATES,
    TimelineData,
    describe_ms,
    heat_high,
)

# Colour-blind-safe (Okabe-Ito) for the top sites; grey for the rest.
COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#F0E442")
OTHER_COLOR = "#9E9E9E"
STATE_COLORS = ("#8FB4DC", "#59A14F", "#F28E2B", "#B07AA1", "#E15759", "#BAB0AC")
SCHED_COLORS = ("#4E79A7", "#A0CBE8", "#E15759", "#F28E2B")
SCHED_LABELS = ("threads", "idle threads", "global run queue", "local run queues (sum)")
SPIKE_COLORS = {"climb": "#E15759", "spike": "#F28E2B"}
TIME_FMT = "%H:%M:%S.%3N"
TIP_STACK_LINES = 10
LEFT = 170  # px for every panel's y axis, so the plot frames line up on the time axis
HINT = "Click a row to see the full creation stack of that site."
TABLE_HINT = (
    "Drag on any panel to select a time window, or click a red climb / orange spike: "
    "this table then lists where the goroutines created in it were created."
)


def panel_title(panel: str, data: TimelineData) -> str:
    """A panel's title; an empty one says what would fill it."""
    name = data.name or "NAME"
    base = {
        "counts": "goroutines by state; ◆ = snapshot",
        "sched": "scheduler",
        "rate": f"creations per site (per second, {describe_ms(data.bin_ms)} bins)",
        "alive": "alive per creation site (snapshots)",
        "heat": "wait reasons (colour: goroutines in that state, log scale; peak within each cell)",
        "instances": "go_goroutines per instance (Prometheus); red = climbing",
    }[panel]
    hint = {
        "counts": "none yet: launch with --detail or take a snapshot",
        "sched": "no schedtrace yet",
        "rate": f"none yet: Start trace, or %dlvtrace {name}",
        "alive": f"none yet: Take snapshot, or %schedsnap {name}",
        "heat": "none yet: launch with --detail or take a snapshot",
        "instances": "a fleet's only: %goleak fleet --prometheus URL --match SELECTOR",
    }[panel]
    return base if data.has[panel] else f"{base} — {hint}"


@functools.cache  # read once per process, not once per callback of every figure
def _js(name: str) -> str:
    return (files(__package__) / "js" / name).read_text()


@dataclass
class TimelineFigure:
    """The layout and the handles the live updater needs."""

    root: Any
    sources: dict[str, ColumnDataSource]
    notes: Div
    titles: dict[str, Any]
    legend_items: dict[str, list[LegendItem]]
    slot_hovers: dict[str, list[HoverTool]]
    reasons: FactorRange | None
    heat_mapper: LogColorMapper | None
    callbacks: dict[str, CustomJS] = field(default_factory=dict)
    panels: list[str] = field(default_factory=list)


def notes_html(title: str, notes: list[str]) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"<b>{html.escape(title)}</b>" + (
        f"<ul style='margin:4px 0;padding-left:18px'>{items}</ul>" if items else ""
    )


def _figure(title: str, x_range: DataRange1d, height: int, **kw: Any) -> Any:
    p = figure(
        title=title,
        x_axis_type="datetime",
        x_range=x_range,
        height=height,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,reset,save",
        min_border_left=LEFT,
        **kw,
    )
    select = BoxSelectTool(dimensions="width", renderers=[])
    p.add_tools(select)
    p.toolbar.active_drag = select
    p.toolbar.active_scroll = p.select_one(WheelZoomTool)
    p.xaxis.axis_label = "wall clock (UTC)"
    p.xaxis.formatter = DatetimeTickFormatter(
        milliseconds="%H:%M:%S.%3N",
        seconds="%H:%M:%S",
        minsec="%H:%M:%S",
        minutes="%H:%M",
        hourmin="%H:%M",
        hours="%H:%M",
    )
    p.title.text_font_size = "12px"
    return p


LEGEND = {  # above the plot (covering no data, not changing the frame's width), compact
    "location": "top_left",
    "click_policy": "hide",
    "label_text_font_size": "9px",
    "label_height": 12,
    "glyph_height": 12,
    "spacing": 0,
    "padding": 4,
    "background_fill_alpha": 0.6,
}


def _legend(p: Any, ncols: int) -> None:
    legend = p.legend[0]
    legend.update(**LEGEND, ncols=ncols)
    p.center.remove(legend)
    p.add_layout(legend, "above")


@dataclass
class _Parts:
    """What the panel builders share, and what they hand back for the live updater."""

    data: TimelineData
    src: dict[str, ColumnDataSource]
    x_range: DataRange1d
    callbacks: dict[str, CustomJS]
    titles: dict[str, Any] = field(default_factory=dict)
    items: dict[str, list[LegendItem]] = field(default_factory=dict)
    hovers: dict[str, list[HoverTool]] = field(default_factory=dict)
    reasons: FactorRange | None = None
    mapper: LogColorMapper | None = None

    def figure(self, panel: str, height: int, **kw: Any) -> Any:
        p = _figure(panel_title(panel, self.data), self.x_range, height, **kw)
        self.titles[panel] = p.title
        return p


TIME_HOVER = {"@x": "datetime", "@left": "datetime", "@right": "datetime"}


def build(data: TimelineData, title: str, *, live: bool = False) -> TimelineFigure:
    """Every panel that has data (all of them when ``live``), then the linked table."""
    src = {k: ColumnDataSource(v, name=k) for k, v in data.sources.items()}
    # A live target shows every panel it may fill; the per-instance one is a fleet's only.
    want = {k for k, v in data.has.items() if v or (live and k != "instances")}
    want = want or {"counts", "sched"}
    head = Div(text=TABLE_HINT, render_as_text=True, sizing_mode="stretch_width", name="head")
    table = _table(src["table"])
    callbacks = {m: _window_js(src, head, table, data, m) for m in ("box", "spike", "refresh")}
    parts = _Parts(data, src, DataRange1d(range_padding=0.02), callbacks)
    builders = {"instances": _instances_panel, "counts": _counts_panel, "sched": _sched_panel,
                "rate": _rate_panel, "alive": _alive_panel, "heat": _heat_panel}  # fmt: skip
    panels = [k for k in builders if k in want]
    figs = [builders[k](parts) for k in panels]
    for p in figs:
        p.vstrip(x0="x0", x1="x1", source=src["window"], fill_color="#FFD54F", fill_alpha=0.15,
                 line_color="#C79100", line_alpha=0.9, line_width=2)  # fmt: skip
        p.js_on_event(SelectionGeometry, callbacks["box"])
    for p in figs[:-1]:
        p.xaxis.visible = False  # one time axis, at the bottom
    for event in ("data", "streaming", "patching"):  # live updates refresh the table
        src["agg"].js_on_change(event, callbacks["refresh"])

    pre = PreText(text=HINT, sizing_mode="stretch_width", name="stack")
    src["table"].selected.js_on_change(
        "indices",
        CustomJS(args={"table": src["table"], "pre": pre, "hint": HINT}, code=_js("stack.js")),
    )
    notes = Div(text=notes_html(title, data.notes), sizing_mode="stretch_width", name="notes")
    root = column(notes, *figs, head, table, pre, sizing_mode="stretch_width", name="timeline")
    return TimelineFigure(
        root=root,
        sources=src,
        notes=notes,
        titles=parts.titles,
        legend_items=parts.items,
        slot_hovers=parts.hovers,
        reasons=parts.reasons,
        heat_mapper=parts.mapper,
        callbacks=callbacks,
        panels=panels,
    )


def _counts_panel(parts: _Parts) -> Any:
    """Goroutines by state, their total, snapshot markers, and the climbs and spikes."""
    src = parts.src
    p = parts.figure("counts", 270, y_range=DataRange1d(start=0))
    p.varea_stack(list(STATES), x="x", source=src["counts"], color=list(STATE_COLORS),
                  alpha=0.8, legend_label=list(STATES))  # fmt: skip
    total = p.line("x", "total", source=src["counts"], color="black", width=1.5)
    snaps = p.scatter("x", "total", source=src["snaps"], marker="diamond", size=11, color="#333")
    kind_colors = {"field": "kind", "transform": _kind_colors()}
    spikes = p.quad(
        left="left", right="right", top="top", bottom="bottom", source=src["spikes"],
        fill_alpha=0.06, hatch_pattern="/", hatch_alpha=0.35, hatch_scale=10, line_alpha=0.7,
        line_dash="dashed", color=kind_colors, selection_fill_alpha=0.2,
        nonselection_fill_alpha=0.06, level="underlay",
    )  # fmt: skip
    p.text(  # climbs are few and wide enough to label; spikes show on hover
        x="mid", y="top", text="tag", source=src["spikes"], text_font_size="11px",
        text_font_style="bold", text_baseline="bottom", text_align="center",
        text_color=kind_colors,
    )  # fmt: skip
    p.add_tools(
        HoverTool(
            renderers=[total],
            tooltips=[("time", f"@x{{{TIME_FMT}}}"), ("goroutines", "@total{0,0}")]
            + [(s, f"@{s}{{0,0}}") for s in STATES],
            formatters=TIME_HOVER,
            mode="vline",
        ),
        HoverTool(
            renderers=[snaps],
            tooltips=[
                ("snapshot", "@snapshot"),
                ("goroutines", "@total{0,0}"),
                ("proven leaked", "@leaked{0,0}"),
                ("time", f"@x{{{TIME_FMT}}}"),
            ],
            formatters=TIME_HOVER,
        ),
        HoverTool(
            renderers=[spikes],
            tooltips=[("", "@label"), ("rate", "@per_s{0,0.0}/s"), ("", "click: list sites")],
        ),
        TapTool(renderers=[spikes]),
    )
    _legend(p, 6)
    p.yaxis.axis_label = "goroutines"
    src["spikes"].selected.js_on_change("indices", parts.callbacks["spike"])
    return p


def _instances_panel(parts: _Parts) -> Any:
    """A fleet: one go_goroutines line per instance, the climbing ones in red. Dragging a
    window here fills the same site table as on the other panels."""
    p = parts.figure("instances", 220, y_range=DataRange1d(start=0))
    colors = CategoricalColorMapper(
        factors=["climbing", "steady"], palette=[COLORS[0], OTHER_COLOR]
    )
    lines = p.multi_line(
        "xs", "ys", source=parts.src["instances"], line_width=1.5, line_alpha=0.8,
        color={"field": "climbing", "transform": colors}, legend_field="climbing",
    )  # fmt: skip
    p.add_tools(
        HoverTool(
            renderers=[lines],
            tooltips=[
                ("instance", "@instance"),
                ("", "@climbing"),
                ("latest", "@last{0,0} goroutines"),
            ],
        )
    )
    _legend(p, 2)
    p.yaxis.axis_label = "goroutines"
    return p


def _sched_panel(parts: _Parts) -> Any:
    """Threads and run queues."""
    p = parts.figure("sched", 170)
    for c, color, label in zip(SCHED_LINES, SCHED_COLORS, SCHED_LABELS, strict=True):
        p.line("x", c, source=parts.src["sched"], color=color, width=1.5, legend_label=label)
    p.add_tools(
        HoverTool(
            tooltips=[("time", f"@x{{{TIME_FMT}}}")]
            + [(lab, f"@{c}") for c, lab in zip(SCHED_LINES, SCHED_LABELS, strict=True)],
            formatters=TIME_HOVER,
            mode="vline",
            renderers=p.renderers[:1],
        )
    )
    _legend(p, 4)
    p.yaxis.axis_label = "threads / queued"
    return p


def _slot_colors(parts: _Parts) -> list[str]:
    return [*COLORS[: len(parts.data.groups) - 1], OTHER_COLOR]


def _rate_panel(parts: _Parts) -> Any:
    """Creations per second per site, stacked, top sites coloured."""
    p = parts.figure("rate", 250, y_range=DataRange1d(start=0))
    rs = p.vbar_stack(
        [f"r{i}" for i in range(len(parts.data.groups))], x="x", width="w",
        source=parts.src["rate"], color=_slot_colors(parts), line_width=0,
    )  # fmt: skip
    _slot_legend(parts, p, "rate", [(r,) for r in rs])
    p.yaxis.axis_label = "goroutines created / s"
    return p


def _alive_panel(parts: _Parts) -> Any:
    """Goroutines alive per site at each snapshot, stacked; a marker on each band's top."""
    p = parts.figure("alive", 250, y_range=DataRange1d(start=0))
    colors = _slot_colors(parts)
    source = parts.src["alive"]
    areas = p.varea_stack(
        [f"a{i}" for i in range(len(colors))], x="x", source=source, color=colors, alpha=0.7
    )
    tops = [
        p.scatter("x", f"c{i}", source=source, color=c, size=7, line_color="white")
        for i, c in enumerate(colors)
    ]
    _slot_legend(parts, p, "alive", list(zip(areas, tops, strict=True)))
    p.yaxis.axis_label = "goroutines alive"
    return p


def _heat_panel(parts: _Parts) -> Any:
    """Time x wait reason, colour = goroutines in that state (log scale)."""
    data = parts.data
    parts.reasons = FactorRange(factors=list(reversed(data.reasons)))
    high = heat_high(data)
    parts.mapper = LogColorMapper(palette=Blues256[::-1][40:], low=1, high=high)
    p = parts.figure("heat", max(170, 90 + 18 * len(data.reasons)), y_range=parts.reasons)
    fill = {"field": "count", "transform": parts.mapper}
    cells = p.rect(
        "x", "reason", width="w", height=0.95, source=parts.src["heat"], fill_color=fill,
        line_color=None,
    )  # fmt: skip
    p.add_tools(
        HoverTool(
            renderers=[cells],
            tooltips=[
                ("reason", "@reason"),
                ("goroutines", "@count{0,0}"),
                ("time", f"@x{{{TIME_FMT}}}"),
            ],
            formatters=TIME_HOVER,
        )
    )
    bar = ColorBar(color_mapper=parts.mapper, orientation="horizontal", height=8, width=240,
                   formatter=PrintfTickFormatter(format="%d"))  # fmt: skip
    p.add_layout(bar, "above")
    p.ygrid.grid_line_color = None
    return p


def _table(source: ColumnDataSource) -> DataTable:
    return DataTable(
        source=source,
        columns=[
            TableColumn(
                field="site",
                title="creation site (go statement)",
                width=420,
                formatter=StringFormatter(font_style="bold"),
            ),
            TableColumn(
                field="created", title="created", width=70, formatter=NumberFormatter(format="0,0")
            ),
            TableColumn(
                field="alive",
                title="alive",
                width=70,
                formatter=NumberFormatter(format="0,0", nan_format="?"),
            ),
            TableColumn(field="blocked_at", title="blocked at", width=300),
            TableColumn(field="wait_reason", title="wait reason", width=110),
            TableColumn(field="blocked_for", title="blocked for (trace)", width=220),
        ],
        index_position=None,
        reorderable=False,
        height=240,
        sizing_mode="stretch_width",
        name="sites_table",
    )


def _kind_colors() -> CategoricalColorMapper:
    return CategoricalColorMapper(
        factors=list(SPIKE_COLORS), palette=list(SPIKE_COLORS.values()), nan_color="#999999"
    )


def _slot_legend(parts: _Parts, p: Any, panel: str, renderers: list[tuple[Any, ...]]) -> None:
    """One legend entry and one hover (on the slot's last renderer) per colour slot;
    labels change in live mode."""
    groups = parts.data.groups
    items, hovers = [], []
    for i, rs in enumerate(renderers):
        items.append(
            LegendItem(label=short_loc(groups[i]), renderers=list(rs), visible=bool(groups[i]))
        )
        hovers.append(
            HoverTool(
                renderers=[rs[-1]],
                tooltips=slot_tooltips(panel, i, parts.data),
                formatters={"@x": "datetime"},
            )
        )
    p.add_tools(*hovers)
    p.add_layout(Legend(items=items, **LEGEND, ncols=3), "above")
    parts.items[panel], parts.hovers[panel] = items, hovers


def _tip_text(text: str) -> str:
    """Data shown in a hover: escaped, and with bokeh's field markers (@, $) defused."""
    return html.escape(text).replace("@", "&#64;").replace("$", "&#36;")


def slot_tooltips(panel: str, i: int, data: TimelineData) -> str:
    """Hover HTML for colour slot ``i`` of a panel: the site, its value, the top of its
    creation stack."""
    col, unit = (f"r{i}", "{0,0.0}/s") if panel == "rate" else (f"a{i}", "{0,0}")
    stack = "\n".join(data.group_stacks[i].splitlines()[:TIP_STACK_LINES])
    pre = f"<pre style='margin:2px 0;font-size:10px'>{_tip_text(stack)}</pre>" if stack else ""
    return (
        f"<div style='max-width:560px'><b>{_tip_text(data.groups[i])}</b><br>"
        f"@x{{{TIME_FMT}}} UTC: @{col}{unit}{pre}</div>"
    )


def _hms(t_ms: float) -> str:
    return pd.Timestamp(t_ms, unit="ms", tz="UTC").strftime("%H:%M:%S.%f")[:-3]


def window_args(data: TimelineData) -> dict[str, Any]:
    """The per-build constants of the window callback (they change when live re-bins)."""
    return {
        "bin_ms": data.bin_ms,
        "verb": "created" if data.creation_source != "snapshots" else "first seen in a snapshot",
        "tail": f"Alive: in the newest goroutine listing ({_hms(data.alive_at)} UTC)."
        if data.alive_at is not None
        else "Alive '?': no goroutine listing yet (%schedsnap, or the end of a %dlvtrace).",
    }


def _window_js(
    src: dict[str, ColumnDataSource], head: Div, grid: DataTable, data: TimelineData, mode: str
) -> CustomJS:
    args = {"mode": mode, "head": head, "grid": grid, **window_args(data)}
    for name, key in (
        ("agg", "agg"),
        ("sites", "sites"),
        ("table", "table"),
        ("win", "window"),
        ("spikes", "spikes"),
    ):
        args[name] = src[key]
    return CustomJS(args=args, code=_js("window.js"))
