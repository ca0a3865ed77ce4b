"""The pprof agent: a Go file added to the program's package at build time.

``overlay()`` writes a ``go build -overlay`` file that makes the agent appear in the
package directory without writing there (for a test build, with the TestMain of
``testmain``); ``ENV`` is the variable that tells the running program which unix socket
to serve on. ``AgentClient`` talks HTTP to that socket.
"""

from __future__ import annotations

import http.client
import json
import re
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


def source_names(go_minor: int | None = None) -> list[str]:
    """The agent's Go files (``goleak_magic_agent*.go``; the TestMain's are injected by
    ``testmain``, into tests only), and with
    ``go_minor`` only those whose ``//go:build go1.N`` / ``!go1.N`` line admits Go
    1.``go_minor`` (a build that lists its files, ``go build a.go b.go``, ignores build
    constraints)."""
    names = (f.name for f in resources.files(__name__).iterdir())
    found = sorted(n for n in names if n.startswith("goleak_magic_agent") and n.endswith(".go"))
    return [n for n in found if go_minor is None or _admits(n, go_minor)]


def _admits(name: str, go_minor: int) -> bool:
    m = re.search(r"^//go:build (!?)go1\.(\d+)$", source("main", name), re.MULTILINE)
    return m is None or (go_minor >= int(m.group(2))) != bool(m.group(1))


def source(package: str = "main", name: str = SOURCE_NAME) -> str:
    """One agent Go file's source, for a package named ``package``."""
    text = (resources.files(__name__) / name).read_text()
    return text.replace("\npackage main\n", f"\npackage {package}\n", 1)


def overlay(
    pkg_dir: Path,
    out_dir: Path,
    package: str = "main",
    go_minor: int | None = None,
    tests: TestPackage | None = None,
) -> tuple[Path, list[str]]:
    """Write the agent and an overlay that places its files (those for Go 1.``go_minor``;
    None: all) in ``pkg_dir``; with ``tests``, our TestMain too (see ``testmain``).

    Returns (overlay JSON path, the agent's file names the build sees in ``pkg_dir``).
    The names are ones that do not exist there, so no user file is shadowed.
    """
    sources = source_names(go_minor)
    stems = ["zz_" + n.removesuffix(".go") for n in sources]  # zz_: FILE_STEM
    suffix, i = "", 2
    while any((pkg_dir / f"{stem}{suffix}.go").exists() for stem in stems):
        suffix, i = str(i), i + 1
    replace, names = {}, []
    for src, stem in zip(sources, stems, strict=True):
        backing = out_dir / f"agent-{package}-{src}"
        backing.write_text(source(package, src))
        names.append(f"{stem}{suffix}.go")
        replace[str(pkg_dir / names[-1])] = str(backing)
    if tests is not None:
        test_names = (
            _free_name(pkg_dir, testmain.FILE_STEM, "_test.go"),
            _free_name(pkg_dir, testmain.FILE_STEM, "_linux_test.go"),
        )
        replace.update(overlay_files(tests, pkg_dir, out_dir, test_names))
    spec = out_dir / f"overlay-{abs(hash(str(pkg_dir)))}.json"
    spec.write_text(json.dumps({"Replace": replace}))
    return spec, names


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

    def stream(
        self, url_path: str, timeout: float
    ) -> tuple[http.client.HTTPResponse, socket.socket]:
        """GET ``url_path`` for a reply that streams; also the socket, whose write side the
        caller shuts to tell the agent to end the stream."""
        conn = _UnixConnection(self.path, timeout)
        conn.request("GET", url_path)
        sock = conn.sock  # the response keeps it open after the connection lets go
        return conn.getresponse(), sock  # type: ignore[return-value]

    def info(self, timeout: float = 5.0) -> dict[str, Any]:
        resp = self.open("/", timeout)
        with resp:
            return json.loads(resp.read())
