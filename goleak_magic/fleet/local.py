"""A small fleet on this machine, for the tutorial, the tests and the bench.

``local_fleet(leaking=2, healthy=4)`` builds the shipped ``fleetservice`` example (with
the leak profile on), starts that many instances on 127.0.0.1 (the leaking ones leak a
few goroutines a second at one ``go`` statement; all of them have noisy bursts) and a
Prometheus (Debian's ``prometheus`` binary) on 127.0.0.1 scraping them every second
as job "fleet". Every process dies with the notebook (parent-death signal) or on
``stop()``.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import build, process
from ..errors import GoleakError
from ..tools import find_go

LEAK_ENV = {"GOEXPERIMENT": build.LEAK_EXPERIMENT}  # Go 1.26 serves goroutineleak with it
JOB = "fleet"
LEAK_ARGS = ("-leak", "3", "-jitter", "15")  # 3 leaked goroutines/s, noisy bursts
HEALTHY_ARGS = ("-jitter", "15")  # the same handler, never past its deadline
READY_TIMEOUT_S = 60.0


def build_fleetservice(out_dir: Path) -> Path:
    """The fleetservice example, built as %golaunch would (leak profile on)."""
    return build.build("example:fleetservice", out_dir, go=find_go(), env=LEAK_ENV).binary


class Instance:
    """One running fleetservice; ``addr`` is its host:port."""

    def __init__(self, binary: Path, *args: str, addr: str = "127.0.0.1:0") -> None:
        self.proc = process.spawn([str(binary), "-addr", addr, *args], stderr=subprocess.DEVNULL)
        self.addr = _first_line(self.proc, 30).removeprefix("listening on ").strip()

    def stop(self) -> None:
        process.terminate(self.proc)


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if ready else ""
    if not line:
        process.kill(proc)
        raise GoleakError(
            f"{proc.args[0]} printed nothing in {timeout} s; run it by hand to see why."
        )
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """Debian's prometheus on 127.0.0.1:<random>, scraping ``targets`` (job "fleet",
    label team="goleak") every second; its config and storage live in ``workdir``."""

    def __init__(self, targets: Iterable[str], workdir: Path) -> None:
        exe = shutil.which("prometheus")
        if exe is None:
            raise GoleakError(
                "prometheus is not installed; install it (apt-get install prometheus, or "
                "scripts/setup.sh --test) to run a local fleet."
            )
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
            f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
            f"      - targets: {json.dumps(sorted(targets))}\n"
            "        labels:\n          team: goleak\n"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = process.spawn(
            [
                exe,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={workdir / 'data'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise GoleakError(f"prometheus did not become ready on {self.url}; run it by "
                                  f"hand with --config.file={config} to see why.")  # fmt: skip
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            return list(json.load(r)["data"]["result"])

    def wait_samples(self, n_targets: int, seconds: float, timeout: float) -> None:
        """Until each of ``n_targets`` has ``seconds`` samples of go_goroutines (one a
        second)."""
        s = int(seconds)
        promql = f"count(count_over_time(go_goroutines[{s + 10}s]) >= {s})"
        deadline = time.monotonic() + timeout
        while True:
            got = self.query(promql)
            if got and int(float(got[0]["value"][1])) >= n_targets:
                return
            if time.monotonic() > deadline:
                raise GoleakError(
                    f"prometheus has not {s} s of samples for all {n_targets} targets after "
                    f"{timeout:g} s; check its targets page at {self.url}/targets."
                )
            time.sleep(1)

    def stop(self) -> None:
        process.terminate(self.proc)


@dataclass
class LocalFleet:
    """A running local fleet: ``url`` and ``match`` are what ``%goleak fleet`` takes."""

    prometheus: PrometheusServer
    instances: list[Instance]  # the leaking ones first
    leaking: list[str]  # their addresses (the instance label)
    healthy: list[str]
    binary: Path
    workdir: Path
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    match: str = f'job="{JOB}"'

    @property
    def url(self) -> str:
        return self.prometheus.url

    def wait(self, seconds: float = 30, extra_targets: int = 0) -> LocalFleet:
        """Until Prometheus holds ``seconds`` of samples of every instance (returns self)."""
        n = len(self.instances) + extra_targets
        self.prometheus.wait_samples(n, seconds, timeout=seconds + READY_TIMEOUT_S)
        return self

    def stop(self) -> None:
        """Stop every instance and Prometheus; remove the work directory if it made one."""
        for inst in self.instances:
            inst.stop()
        self.prometheus.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"<LocalFleet: Prometheus at {self.url}, {len(self.leaking)} leaking "
            f"({', '.join(self.leaking)}) and {len(self.healthy)} healthy instances>"
        )


def local_fleet(
    leaking: int = 2,
    healthy: int = 4,
    *,
    workdir: str | Path | None = None,
    extra_targets: Sequence[str] = (),
) -> LocalFleet:
    """Start ``leaking`` + ``healthy`` fleetservice instances and a Prometheus scraping
    them (and ``extra_targets``, host:port) on 127.0.0.1. Call ``.wait(seconds)`` before
    asking Prometheus about a window of that length, and ``.stop()`` when done."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="goleak_magic-fleet-")
        workdir = tmp.name
    work = Path(workdir)
    started: list[Instance] = []
    try:
        binary = build_fleetservice(work)
        started += [Instance(binary, *LEAK_ARGS) for _ in range(leaking)]
        started += [Instance(binary, *HEALTHY_ARGS) for _ in range(healthy)]
        prom = PrometheusServer([i.addr for i in started] + list(extra_targets), work)
    except BaseException:
        for inst in started:
            inst.stop()
        if tmp is not None:
            tmp.cleanup()
        raise
    addrs = [i.addr for i in started]
    return LocalFleet(prom, started, addrs[:leaking], addrs[leaking:], binary, work, tmp)
