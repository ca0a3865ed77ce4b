"""Shared fixtures. Every test here runs real go, real processes and (where needed) real dlv:
a missing tool fails the test instead of skipping it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp

import goleak_magic
from goleak_magic.session import Session

GO127 = "go1.27.3"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [tool for tool in ("go",) if shutil.which(tool) is None]
    if missing:
        raise pytest.UsageError(f"required tools missing: {missing}; run scripts/setup.sh --test")


@pytest.fixture
def sess() -> Iterator[Session]:
    """A private Session (its own workdir) that stops every target it started."""
    s = Session()
    s.settings.schedtrace_ms = 100
    yield s
    s.close()


def wait_for(cond: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    """Poll ``cond`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    """The test IPython shell with the extension loaded, as in a notebook.

    Magics use the process-wide ``goleak_magic.session()``; every target is dropped after.
    """
    globalipapp.start_ipython()  # once per process; later calls return None
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "goleak_magic")
    shell.run_line_magic("config", "GoleakMagics.schedtrace_ms = 100")
    yield shell
    s = goleak_magic.session()
    for name in list(s.targets):
        s.forget(name)
    shell.run_line_magic("config", "GoleakMagics.schedtrace_ms = 500")


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(params=["go1.26", GO127])
def toolchain(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with the system Go (1.26) and once with Go 1.27."""
    if request.param == GO127:
        monkeypatch.setenv("GOTOOLCHAIN", GO127)
    else:
        monkeypatch.setenv("GOTOOLCHAIN", "local")
    return request.param


os.environ.setdefault("GOFLAGS", "-buildvcs=false")
