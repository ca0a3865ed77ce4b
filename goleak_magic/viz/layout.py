"""The bokeh layout: panels on one wall-clock x axis, and the linked table below.

Every panel draws from a named ColumnDataSource filled from ``model.TimelineData``.
Selecting a window (box select on any panel) or tapping a spike runs ``js/window.js``
in the page, which sums the per-(bin, site) counts into the table: no kernel needed,
so the exported HTML keeps the interaction.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import pandas as pd
from bokeh.events import SelectionGeometry
from bokeh.layouts import column
from bokeh.models import (
    BoxSelectTool,
    ColorBar,
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    DataTable,
    DatetimeTickFormatter,
    Div,
    FactorRange,
    HoverTool,
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

from .model import (
    COLORS,
    OTHER_COLOR,
    SCHED_LINES,
    STATES,
    TimelineData,
    describe_ms,
    short_site,
)

STATE_COLORS = ("#8FB4DC", "#59A14F", "#F28E2B", "#B07AA1", "#E15759", "#BAB0AC")
SCHED_COLORS = ("#4E79A7", "#A0CBE8", "#E15759", "#F28E2B")
SCHED_LABELS = ("threads", "idle threads", "global run queue", "local run queues (sum)")
SPIKE_COLORS = {"climb": "#E15759", "spike": "#F28E2B"}
TIME_FMT = "%H:%M:%S.%3N"
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
    }[panel]
    hint = {
        "counts": "none yet: launch with --detail or take a snapshot",
        "sched": "no schedtrace yet",
        "rate": f"none yet: Start trace, or %dlvtrace {name}",
        "alive": f"none yet: Take snapshot, or %schedsnap {name}",
        "heat": "none yet: launch with --detail or take a snapshot",
    }[panel]
    return base if data.has[panel] else f"{base} — {hint}"


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
    bin_ms: int
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


def build(data: TimelineData, title: str, *, live: bool = False) -> TimelineFigure:
    """Every panel that has data (all of them when ``live``), then the linked table."""
    src = {k: ColumnDataSource(v, name=k) for k, v in data.sources.items()}
    has = data.has
    want = {k for k, v in has.items() if v or live} or {"counts", "sched"}
    x_range = DataRange1d(range_padding=0.02)
    figs: list[Any] = []
    titles: dict[str, Any] = {}
    items: dict[str, list[LegendItem]] = {}
    hovers: dict[str, list[HoverTool]] = {}
    reasons = mapper = None
    time_hover = {"@x": "datetime", "@left": "datetime", "@right": "datetime"}
    head = Div(text=TABLE_HINT, render_as_text=True, sizing_mode="stretch_width", name="head")
    table = _table(src["table"])
    callbacks = {m: _window_js(src, head, table, data, m) for m in ("box", "spike", "refresh")}

    if "counts" in want:
        p = _figure(panel_title("counts", data), x_range, 270, y_range=DataRange1d(start=0))
        p.varea_stack(
            list(STATES),
            x="x",
            source=src["counts"],
            color=list(STATE_COLORS),
            alpha=0.8,
            legend_label=list(STATES),
        )
        total = p.line("x", "total", source=src["counts"], color="black", width=1.5)
        total.name = "total"
        snaps = p.scatter(
            "x", "total", source=src["snaps"], marker="diamond", size=11, color="#333333"
        )
        spikes = p.quad(
            left="left",
            right="right",
            top="top",
            bottom="bottom",
            source=src["spikes"],
            fill_alpha=0.06,
            hatch_pattern="/",
            hatch_alpha=0.35,
            hatch_scale=10,
            line_alpha=0.7,
            line_dash="dashed",
            color={"field": "kind", "transform": _kind_colors()},
            selection_fill_alpha=0.2,
            nonselection_fill_alpha=0.06,
            level="underlay",
        )
        p.text(  # climbs are few and wide enough to label; spikes show on hover
            x="mid",
            y="top",
            text="tag",
            source=src["spikes"],
            text_font_size="11px",
            text_font_style="bold",
            text_baseline="bottom",
            text_align="center",
            text_color={"field": "kind", "transform": _kind_colors()},
        )
        p.add_tools(
            HoverTool(
                renderers=[total],
                tooltips=[("time", f"@x{{{TIME_FMT}}}"), ("goroutines", "@total{0,0}")]
                + [(s, f"@{s}{{0,0}}") for s in STATES],
                formatters=time_hover,
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
                formatters=time_hover,
            ),
            HoverTool(
                renderers=[spikes],
                tooltips=[("", "@label"), ("rate", "@per_s{0,0.0}/s"), ("", "click: list sites")],
            ),
            TapTool(renderers=[spikes]),
        )
        _legend(p, 6)
        p.yaxis.axis_label = "goroutines"
        figs.append(p)
        titles["counts"] = p.title
        src["spikes"].selected.js_on_change("indices", callbacks["spike"])

    if "sched" in want:
        p = _figure(panel_title("sched", data), x_range, 170)
        for c, color, label in zip(SCHED_LINES, SCHED_COLORS, SCHED_LABELS, strict=True):
            p.line("x", c, source=src["sched"], color=color, width=1.5, legend_label=label)
        p.add_tools(
            HoverTool(
                tooltips=[("time", f"@x{{{TIME_FMT}}}")]
                + [(lab, f"@{c}") for c, lab in zip(SCHED_LINES, SCHED_LABELS, strict=True)],
                formatters=time_hover,
                mode="vline",
                renderers=p.renderers[:1],
            )
        )
        _legend(p, 4)
        p.yaxis.axis_label = "threads / queued"
        figs.append(p)
        titles["sched"] = p.title

    n_slots = len(data.groups)
    if "rate" in want:
        p = _figure(
            panel_title("rate", data),
            x_range,
            250,
            y_range=DataRange1d(start=0),
        )
        rs = p.vbar_stack(
            [f"r{i}" for i in range(n_slots)],
            x="x",
            width="w",
            source=src["rate"],
            color=[*COLORS[: n_slots - 1], OTHER_COLOR],
            line_width=0,
        )
        items["rate"], hovers["rate"] = _slot_legend(
            p, [(r,) for r in rs], data.groups, "rate", "r"
        )
        p.yaxis.axis_label = "goroutines created / s"
        figs.append(p)
        titles["rate"] = p.title

    if "alive" in want:
        p = _figure(panel_title("alive", data), x_range, 250, y_range=DataRange1d(start=0))
        colors = [*COLORS[: n_slots - 1], OTHER_COLOR]
        areas = p.varea_stack(
            [f"a{i}" for i in range(n_slots)], x="x", source=src["alive"], color=colors, alpha=0.7
        )
        tops = [
            p.scatter("x", f"c{i}", source=src["alive"], color=c, size=7, line_color="white")
            for i, c in enumerate(colors)
        ]
        items["alive"], hovers["alive"] = _slot_legend(
            p, list(zip(areas, tops, strict=True)), data.groups, "alive", "a"
        )
        p.yaxis.axis_label = "goroutines alive"
        figs.append(p)
        titles["alive"] = p.title

    if "heat" in want:
        reasons = FactorRange(factors=list(reversed(data.reasons)))
        high = max(2.0, float(max(data.sources["heat"]["count"], default=2)))
        mapper = LogColorMapper(palette=Blues256[::-1][40:], low=1, high=high)
        p = _figure(
            panel_title("heat", data),
            x_range,
            max(170, 90 + 18 * len(data.reasons)),
            y_range=reasons,
        )
        cells = p.rect(
            "x",
            "reason",
            width="w",
            height=0.95,
            source=src["heat"],
            fill_color={"field": "count", "transform": mapper},
            line_color=None,
        )
        p.add_tools(
            HoverTool(
                renderers=[cells],
                tooltips=[
                    ("reason", "@reason"),
                    ("goroutines", "@count{0,0}"),
                    ("time", f"@x{{{TIME_FMT}}}"),
                ],
                formatters=time_hover,
            )
        )
        bar = ColorBar(
            color_mapper=mapper,
            orientation="horizontal",
            height=8,
            width=240,
            formatter=PrintfTickFormatter(format="%d"),
        )
        p.add_layout(bar, "above")
        p.ygrid.grid_line_color = None
        figs.append(p)
        titles["heat"] = p.title

    for p in figs:
        p.vstrip(
            x0="x0",
            x1="x1",
            source=src["window"],
            fill_color="#FFD54F",
            fill_alpha=0.15,
            line_color="#C79100",
            line_alpha=0.9,
            line_width=2,
        )
        p.js_on_event(SelectionGeometry, callbacks["box"])
    for p in figs[:-1]:
        p.xaxis.visible = False  # one time axis, at the bottom
    src["agg"].js_on_change("data", callbacks["refresh"])
    src["agg"].js_on_change("streaming", callbacks["refresh"])

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
        titles=titles,
        legend_items=items,
        slot_hovers=hovers,
        reasons=reasons,
        heat_mapper=mapper,
        bin_ms=data.bin_ms,
        callbacks=callbacks,
        panels=[k for k in ("counts", "sched", "rate", "alive", "heat") if k in want],
    )


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
        ],
        index_position=None,
        reorderable=False,
        height=240,
        sizing_mode="stretch_width",
        name="sites_table",
    )


def _kind_colors() -> Any:
    from bokeh.models import CategoricalColorMapper

    return CategoricalColorMapper(
        factors=list(SPIKE_COLORS), palette=list(SPIKE_COLORS.values()), nan_color="#999999"
    )


def _slot_legend(
    p: Any, renderers: list[tuple[Any, ...]], groups: list[str], what: str, prefix: str
) -> tuple[list[LegendItem], list[HoverTool]]:
    """One legend entry and one hover (on the slot's last renderer) per colour slot;
    labels change in live mode."""
    items, hovers = [], []
    unit = "{0,0.0}/s" if what == "rate" else "{0,0}"
    for i, rs in enumerate(renderers):
        items.append(
            LegendItem(label=short_site(groups[i]), renderers=list(rs), visible=bool(groups[i]))
        )
        h = HoverTool(
            renderers=[rs[-1]],
            tooltips=slot_tooltips(groups[i], f"{prefix}{i}", unit),
            formatters={"@x": "datetime"},
        )
        hovers.append(h)
        p.add_tools(h)
    from bokeh.models import Legend

    p.add_layout(Legend(items=items, **LEGEND, ncols=3), "above")
    return items, hovers


def slot_tooltips(label: str, col: str, unit: str) -> str:
    """Hover HTML for one colour slot; the site name is escaped (it is data, not markup)."""
    return (
        f"<div style='max-width:520px'><b>{html.escape(label)}</b><br>"
        f"@x{{{TIME_FMT}}} UTC: @{col}{unit}</div>"
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
