"""One standalone HTML file: bokeh's JS inlined, so it opens offline without a kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bokeh.embed import file_html
from bokeh.resources import INLINE

from ..errors import GoleakError


def save_html(root: Any, path: str | Path, title: str) -> Path:
    """Write ``root`` to ``path`` with inline resources; returns the path written."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise GoleakError(f"--html {path} is a directory; give a file name such as leak.html.")
    if not out.parent.is_dir():
        raise GoleakError(f"--html {path}: directory {out.parent} does not exist; create it first.")
    adopted = root.document is None
    text = file_html(root, INLINE, title=title)
    if adopted and root.document is not None:
        # file_html keeps a free model in the Document it made for it; let go, so the same
        # figure can still be shown in the notebook (a model lives in one Document only).
        root.document.remove_root(root)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise GoleakError(f"could not write {path}: {e.strerror}; pick a writable path.") from e
    return out
