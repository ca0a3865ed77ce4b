"""The few Prometheus HTTP API calls the fleet needs, each failing in one sentence.

``/api/v1/status/buildinfo`` tells Prometheus from anything else at the URL;
``/api/v1/query_range`` gives the ``go_goroutines`` series; ``/api/v1/targets`` the
address Prometheus scrapes each instance at (for its ``process_start_time_seconds``).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..errors import GoleakError
from . import web

TIMEOUT_S = 30.0


class Prometheus:
    """A Prometheus server at ``url`` (its base, e.g. ``http://127.0.0.1:9090``)."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float = TIMEOUT_S) -> None:
        self.url = web.http_url(url, "the Prometheus URL").rstrip("/")
        self._headers = headers
        self.timeout = timeout
        self.version = str(self._api("/api/v1/status/buildinfo").get("version", "?"))

    def query_range(self, query: str, start: float, end: float, step: float) -> list[Any]:
        """The ``matrix`` result: [{"metric": {...}, "values": [[t, "v"], ...]}, ...]."""
        args = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._api("/api/v1/query_range", args, query=query)
        return list(data.get("result") or [])

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (labels, scrapeUrl, health)."""
        return list(self._api("/api/v1/targets", {"state": "active"}).get("activeTargets") or [])

    def _api(self, path: str, args: Mapping[str, str] | None = None, query: str = "") -> Any:
        url = self.url + path + ("?" + urllib.parse.urlencode(args) if args else "")
        try:
            with web.get(url, self._headers, self.timeout) as resp:
                ctype, body = resp.headers.get("Content-Type", ""), resp.read()
        except web.Unreachable as e:
            raise GoleakError(
                f"cannot reach Prometheus at {self.url} ({e}); check the URL and that the "
                "server is up."
            ) from None
        except web.HTTPStatus as e:
            raise self._status_error(path, e, query) from None
        doc = _json(body)
        if doc is None or doc.get("status") != "success" or "data" not in doc:
            raise self._not_prometheus(path, "HTML" if web.is_html(ctype, body) else "not its JSON")
        return doc["data"]

    def _status_error(self, path: str, e: web.HTTPStatus, query: str) -> GoleakError:
        doc = _json(e.body)
        if e.code in (401, 403):
            return GoleakError(
                f"Prometheus at {self.url} answered HTTP {e.code} (not authorised); pass "
                f"headers (e.g. 'Authorization: Bearer ...') or set ${web.HEADERS_ENV}."
            )
        if doc is not None and doc.get("status") == "error" and query:
            return GoleakError(
                f"Prometheus rejects the query {query} ({doc.get('error')}); write the "
                'selector as PromQL label matchers, e.g. job="api".'
            )
        return self._not_prometheus(path, f"HTTP {e.code}")

    def _not_prometheus(self, path: str, what: str) -> GoleakError:
        return GoleakError(
            f"{self.url} does not look like Prometheus ({path} answered {what}); give the "
            "base URL of the Prometheus server, e.g. http://127.0.0.1:9090."
        )


def _json(body: bytes) -> Any:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
