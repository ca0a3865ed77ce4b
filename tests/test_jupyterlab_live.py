"""``%goleak timeline N --live`` in a real JupyterLab, driven by headless Chromium."""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from goleak_magic import process

from .conftest import pid_alive, wait_for
from .viz_support import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.live]

CELLS = [
    "%load_ext goleak_magic\n"
    "t = %golaunch example:leakyservice --detail --schedtrace 200 -- -rate 50",
    "%goleak timeline leakyservice --live",
    "%goleak timeline leakyservice --html leak.html",  # the plain show() figure, and a file
]
LIVE, STATIC = 0, 1  # the page's bokeh documents, in cell order
JS_LENGTHS = """([name, doc]) => {
  const d = (window.Bokeh ? Bokeh.documents : [])[doc]
  for (const m of (d ? d.all_models : []))
    if (m.name === name) return Object.values(m.data).map((c) => c.length)
  return null
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab on 127.0.0.1 (random port, token), with its own config and notebooks."""
    root = tmp_path / "notebooks"
    root.mkdir()
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR"):  # fmt: skip
        (tmp_path / var).mkdir()
        env[var] = str(tmp_path / var)
    # no news or update checks: nothing leaves the machine, no pop-up over the figure
    settings = tmp_path / "JUPYTERLAB_SETTINGS_DIR" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    port, token = free_port(), secrets.token_hex(16)
    argv = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]  # fmt: skip
    log = tmp_path / "jupyter.log"
    with log.open("wb") as out:
        proc = process.spawn(argv, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, f"jupyter lab exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, what="jupyter lab to listen")
        yield f"{url}/lab/tree/live.ipynb?token={token}", root
    finally:
        process.terminate(proc, 10)  # shuts its kernels down; their targets die with them


def test_live_timeline_renders_and_grows_in_jupyterlab(
    jupyter_lab: tuple[str, Path], artifacts: Path
) -> None:
    url, root = jupyter_lab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, root / "live.ipynb")
    with chromium_page(1400, 1300) as (page, errors):
        warnings: list[str] = []
        page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
        page.goto(url)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        page.locator(".jp-OutputArea-output .bk-Canvas").first.wait_for(
            state="attached", timeout=90_000
        )
        n0 = wait_for(lambda: (page.evaluate(JS_LENGTHS, ["counts", LIVE]) or [0])[0], 30, "points")
        wait_for(
            lambda: page.evaluate(JS_LENGTHS, ["counts", LIVE])[0] >= n0 + 10,
            timeout=30,
            what="the figure's goroutine line to grow in the page",
        )
        wait_for(lambda: (root / "leak.html").is_file(), 30, "the exported file")
        assert (page.evaluate(JS_LENGTHS, ["counts", STATIC]) or [0])[0] >= 1  # plain figure
        for name in ("counts", "sched", "heat", "spikes"):
            assert len(set(page.evaluate(JS_LENGTHS, [name, LIVE]))) == 1, name  # columns agree
        status = page.get_by_text(re.compile(r"leakyservice running · \d+ sched ticks"))
        assert status.count() == 1
        notes = page.get_by_text(
            re.compile(r"goroutines of leakyservice \(pid \d+, running\)")
        ).first
        pid = int(re.search(r"pid (\d+)", notes.inner_text()).group(1))
        # the control bar: a snapshot fills "alive per site", a trace "creations per site"
        page.get_by_role("button", name="Take snapshot").click()
        wait_for(lambda: page.evaluate(JS_LENGTHS, ["snaps", LIVE])[0] >= 1, 30, "the snapshot")
        page.get_by_role("button", name="Start trace").click()
        page.get_by_role("button", name="Stop trace").wait_for(timeout=30_000)
        wait_for(lambda: page.evaluate(JS_LENGTHS, ["rate", LIVE])[0] >= 3, 30, "traced creations")
        page.get_by_role("button", name="Stop trace").click()
        page.get_by_role("button", name="Start trace").wait_for(timeout=30_000)
        page.mouse.move(800, 700)
        page.mouse.wheel(0, 330)  # the panels the control bar filled into view
        page.wait_for_timeout(500)  # let the notebook finish scrolling before the screenshot
        page.screenshot(path=artifacts / "jupyterlab_live.png")

        page.get_by_role("button", name="Stop target").click()
        done = page.get_by_text(re.compile(r"leakyservice stopped · .*done: the target has ended"))
        done.wait_for(timeout=20_000)
        assert not pid_alive(pid)
        ticks = int(re.search(r"([\d,]+) sched ticks", done.inner_text()).group(1).replace(",", ""))
        # every tick recorded is a point of the line, once (no lost or doubled stream)
        points = lambda: page.evaluate(JS_LENGTHS, ["counts", LIVE])[0]  # noqa: E731
        wait_for(
            lambda: points() == ticks,
            30,
            f"the last ticks ({ticks} in the status)",
            show=lambda: (points(), done.inner_text()),
        )
        page.screenshot(path=artifacts / "jupyterlab_live_stopped.png")
        assert [e for e in errors if "bokeh" in e.lower() or "view" in e.lower()] == []
        assert [w for w in warnings if "inconsistent lengths" in w] == []
