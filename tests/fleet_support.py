"""The fleet tests' own pieces beside goleak_magic.fleet.local (the one way to start a
local fleet): a garbage-answering HTTP server on 127.0.0.1."""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
