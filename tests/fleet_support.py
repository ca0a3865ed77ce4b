"""A fleet on this machine for the fleet tests and bench: instances of the shipped
fleetservice example, a garbage-answering HTTP server, and a real Prometheus (Debian's
binary) scraping them every second. Everything listens on 127.0.0.1."""

from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from goleak_magic import build, process
from goleak_magic.tools import find_go

LEAK_ENV = {"GOEXPERIMENT": build.LEAK_EXPERIMENT}  # Go 1.26 serves goroutineleak with it


def build_fleetservice(out_dir: Path) -> Path:
    """The fleetservice example, built as %golaunch would (leak profile on)."""
    built = build.build("example:fleetservice", out_dir, go=find_go(), env=LEAK_ENV)
    return built.binary


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
        raise RuntimeError(f"{proc.args} printed nothing in {timeout} s")
    return line


class Garbage:
    """An HTTP server that Prometheus can scrape (a valid go_goroutines) but whose pprof
    path answers nonsense; under /login/ an HTML login page (401), under /error/ a 500,
    under /slow/ nothing for 3 s. It remembers the headers of each request it got."""

    def __init__(self) -> None:
        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(dict(self.headers))
                code, ctype = 200, "text/plain"
                if self.path == "/metrics":
                    body = b"# TYPE go_goroutines gauge\ngo_goroutines 7\n"
                elif self.path.startswith("/login/"):
                    code, ctype = 401, "text/html; charset=utf-8"
                    body = b"<!doctype html><html><form>Sign in</form></html>"
                elif self.path.startswith("/error/"):
                    code, body = 500, b"internal error\n"
                else:
                    if self.path.startswith("/slow/"):
                        time.sleep(3)
                    body = b"\x00\xffthis is not a goroutine dump {[}\n" * 50
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """Debian's prometheus on 127.0.0.1:<random>, scraping ``targets`` (job "fleet")
    every second; its config and storage live in ``workdir``."""

    def __init__(self, targets: Iterable[str], workdir: Path) -> None:
        exe = shutil.which("prometheus")
        if exe is None:
            raise RuntimeError("prometheus is not installed; run scripts/setup.sh --test")
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
            "scrape_configs:\n  - job_name: fleet\n    static_configs:\n"
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
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus did not become ready on {self.url}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, object]]:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            return list(json.load(r)["data"]["result"])

    def wait_samples(self, n_targets: int, seconds: int, timeout: float) -> None:
        """Until each of ``n_targets`` has ``seconds`` samples of go_goroutines."""
        promql = f"count(count_over_time(go_goroutines[{seconds + 10}s]) >= {seconds})"
        deadline = time.monotonic() + timeout
        while True:
            got = self.query(promql)
            if got and int(float(got[0]["value"][1])) >= n_targets:  # type: ignore[index]
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus has not {seconds} s of samples for all targets")
            time.sleep(1)

    def stop(self) -> None:
        process.terminate(self.proc)
