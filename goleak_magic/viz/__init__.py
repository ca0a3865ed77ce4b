"""Interactive timelines: goroutine spikes linked to the stacks that created them.

``timeline(target)`` draws what a target has recorded (``model`` aggregates, ``layout``
draws, ``live`` streams, ``export`` writes standalone HTML).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import export, layout, model
from .live import Controls, LiveTimeline
from .notebook import load_bokehjs

if TYPE_CHECKING:
    from ..record import Record

__all__ = ["Controls", "LiveTimeline", "StaticTimeline", "timeline"]


@dataclass(repr=False)
class StaticTimeline:
    """A timeline drawn once; displays with bokeh's ``show`` in a notebook."""

    figure: layout.TimelineFigure
    data: model.TimelineData
    html: Path | None = None

    @property
    def root(self) -> Any:
        return self.figure.root

    def __repr__(self) -> str:
        where = f", written to {self.html}" if self.html else ""
        return f"<StaticTimeline: {', '.join(self.figure.panels)}{where}>"

    def _ipython_display_(self) -> None:
        from bokeh.io import show

        load_bokehjs()
        show(self.root)
        if self.html is not None:
            print(f"wrote {self.html} ({self.html.stat().st_size / 1e6:.1f} MB)")


def timeline(
    target: Record,
    *,
    live: bool = False,
    html: str | Path | None = None,
    controls: Controls | None = None,
) -> StaticTimeline | LiveTimeline:
    """The timeline of ``target``; ``live`` follows it, ``html`` also writes a file."""
    if live:
        tl = LiveTimeline(target, controls)
        if html is not None:
            export.save_html(tl.figure.root, html, tl.title)
        return tl
    data = model.build(model.Recording.of(target))
    title = model.title_of(target)
    fig = layout.build(data, title)
    path = export.save_html(fig.root, html, title) if html is not None else None
    return StaticTimeline(fig, data, path)
