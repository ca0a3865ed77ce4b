"""Shared fixtures.

A ``live`` test runs real go, real processes and (where needed) real dlv: a missing tool
fails it instead of skipping it. A test is live when it uses a fixture that starts
programs (``LIVE_FIXTURES``) or is marked ``@pytest.mark.live``; the rest (parsers on
captured fixtures, analysis, the model) run on a machine without go.

``tests/fixtures/`` holds captured runtime output and the programs that capture it;
``tests/programs/`` (``PROGRAMS``) the Go programs the tests build and run.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp

import goleak_magic
from goleak_magic import build, process
from goleak_magic.errors import GoleakError
from goleak_magic.session import Session
from goleak_magic.tools import find_dlv, find_go

GO127 = "go1.27.3"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PROGRAMS = Path(__file__).resolve().parent / "programs"
LIVE_FIXTURES = frozenset({"sess", "ip", "headless_dlv", "toolchain"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: runs real go/dlv; fails (never skips) without them")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


@functools.cache
def _missing_tools() -> str | None:
    """Why live tests cannot run here (None: go and dlv are both found)."""
    try:
        find_go()
        find_dlv()
    except GoleakError as e:
        return str(e)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Fail each live test loudly (an error, not a skip); pure tests run on regardless.
    if item.get_closest_marker("live") and (why := _missing_tools()):
        pytest.fail(f"this test runs real Go programs: {why} (scripts/setup.sh --test)",
                    pytrace=False)  # fmt: skip


@pytest.fixture
def sess() -> Iterator[Session]:
    """A private Session (its own workdir) that stops every target it started."""
    s = Session()
    s.settings.schedtrace_ms = 100
    yield s
    s.close()


def wait_for(
    cond: Callable[[], object],
    timeout: float = 20.0,
    what: str = "condition",
    show: Callable[[], object] | None = None,
) -> object:
    """Poll ``cond`` until it is truthy; fail with ``what`` (and what ``show`` returns
    then) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; found {show()!r}" if show is not None else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{seen}")
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


class HeadlessDlv(NamedTuple):
    addr: str
    proc: subprocess.Popen[bytes]


@pytest.fixture
def headless_dlv(tmp_path: Path) -> Iterator[Callable[..., HeadlessDlv]]:
    """Start ``dlv exec --headless`` of the spawn example with the given program args, as
    someone runs it on a remote host. Afterwards every such dlv and its program are killed
    (the program outlives a SIGKILLed dlv)."""
    binary = build.build("example:spawn", tmp_path, go=find_go()).binary
    started: list[subprocess.Popen[bytes]] = []
    programs: list[int] = []

    def start(*args: str) -> HeadlessDlv:
        remote = process.spawn(
            [find_dlv(), "exec", str(binary), "--headless", "--api-version=2",
             "--listen=127.0.0.1:0", "--accept-multiclient", "--", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(remote)
        assert remote.stdout is not None
        addr = re.search(r"listening at: (\S+)", remote.stdout.readline().decode()).group(1)
        # The program is a child of one of dlv's threads (the one that ptraces).
        tasks = Path(f"/proc/{remote.pid}/task")
        programs.extend(
            int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()
        )
        return HeadlessDlv(addr, remote)

    yield start
    for remote in started:
        process.kill(remote)
    for pid in programs:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


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
