"""BokehJS in the notebook page, once per kernel: ``show()`` output and jupyter_bokeh's
``BokehModel`` both render with the page's ``window.Bokeh``."""

from __future__ import annotations

_loaded = False


def load_bokehjs() -> None:
    """Inline (works offline, e.g. on Binder without a CDN), without the banner."""
    global _loaded
    if not _loaded:
        from bokeh.io import output_notebook
        from bokeh.resources import INLINE

        output_notebook(INLINE, hide_banner=True)
        _loaded = True
