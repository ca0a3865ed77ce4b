"""The pprof agent: a Go file added to the program's package at build time.

``overlay()`` writes a ``go build -overlay`` file that makes the agent appear in the
package directory without writing there (for a test build, with the TestMain of
``testmain``); ``ENV`` is the variable that tells the running program which unix socket
to serve on. ``AgentClient`` talks HTTP to that socket.
"""

from __future__ import annotations

import http.client
import json
import socket
from importlib import resources
from pathlib import Path
from typing import Any

from . import testmain
from .testmain import TestPackage, overlay_files

ENV = "GOLEAK_MAGIC_AGENT"
LABEL = ("goleak_magic", "agent")  # the pprof label on the agent's own goroutines
SOURCE_NAME = "goleak_magic_agent.go"
# The file name the build sees; frames in a file named so are the agent's.
FILE_STEM = "zz_goleak_magic_agent"


def source(package: str = "main") -> str:
    """The agent's Go source, for a package named ``package``."""
    text = (resources.files(__name__) / SOURCE_NAME).read_text()
    return text.replace("\npackage main\n", f"\npackage {package}\n", 1)


def overlay(
    pkg_dir: Path, out_dir: Path, package: str = "main", tests: TestPackage | None = None
) -> tuple[Path, str]:
    """Write the agent and an overlay that places it in ``pkg_dir``; with ``tests``, our
    TestMain too (see ``testmain``).

    Returns (overlay JSON path, the file name the build sees in ``pkg_dir``). The names
    are ones that do not exist there, so no user file is shadowed.
    """
    name = _free_name(pkg_dir, FILE_STEM, ".go")
    backing = out_dir / f"agent-{package}.go"
    backing.write_text(source(package))
    replace = {str(pkg_dir / name): str(backing)}
    if tests is not None:
        names = (
            _free_name(pkg_dir, testmain.FILE_STEM, "_test.go"),
            _free_name(pkg_dir, testmain.FILE_STEM, "_linux_test.go"),
        )
        replace.update(overlay_files(tests, pkg_dir, out_dir, names))
    spec = out_dir / f"overlay-{abs(hash(str(pkg_dir)))}.json"
    spec.write_text(json.dumps({"Replace": replace}))
    return spec, name


def _free_name(pkg_dir: Path, stem: str, suffix: str) -> str:
    name, i = f"{stem}{suffix}", 2
    while (pkg_dir / name).exists():
        name, i = f"{stem}{i}{suffix}", i + 1
    return name


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class AgentClient:
    """HTTP over the agent's unix socket."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def open(self, url_path: str, timeout: float) -> http.client.HTTPResponse:
        """GET ``url_path``; the caller reads (streams) and closes the response."""
        conn = _UnixConnection(self.path, timeout)
        conn.request("GET", url_path)
        return conn.getresponse()

    def info(self, timeout: float = 5.0) -> dict[str, Any]:
        resp = self.open("/", timeout)
        with resp:
            return json.loads(resp.read())
