"""HTTP for the fleet: request headers (auth) and one GET that fails in one sentence.

Headers come from the ``headers`` argument (a dict, or ``"Name: value"`` lines), else
from ``$GOLEAK_HEADERS`` (the same lines, newline-separated). They are sent with every
request and never kept in a result or put in a message: errors name the URL only.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from ..errors import GoleakError

HEADERS_ENV = "GOLEAK_HEADERS"
Headers = Mapping[str, str] | str | None


def resolve_headers(headers: Headers) -> dict[str, str]:
    """``headers`` as a dict; None: ``$GOLEAK_HEADERS``; none at all: {}."""
    if headers is None:
        headers = os.environ.get(HEADERS_ENV, "")
    if isinstance(headers, Mapping):
        return {str(k): str(v) for k, v in headers.items()}
    out = {}
    for line in headers.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise GoleakError(
                "a header must read 'Name: value' (e.g. 'Authorization: Bearer ...'); one "
                f"of the headers given (or in ${HEADERS_ENV}) has no 'Name:' part."
            )
        out[name.strip()] = value.strip()
    return out


def http_url(url: str, what: str) -> str:
    """``url`` with a scheme, or one sentence on why it is not an http(s) URL."""
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parts.username or parts.password:  # said without the URL: it holds them
        raise GoleakError(
            f"{what} carries credentials; pass them as a header (e.g. 'Authorization: "
            f"Basic ...') or in ${HEADERS_ENV}, which are never shown or stored."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GoleakError(f"{what} {url!r} is not an http(s) URL; give e.g. http://127.0.0.1:9090.")
    return urllib.parse.urlunsplit(parts)


class HTTPStatus(Exception):
    """A non-2xx answer: code, reason and the start of the body (never the headers sent)."""

    def __init__(self, code: int, reason: str, body: bytes, content_type: str) -> None:
        super().__init__(f"HTTP {code} {reason}")
        self.code, self.reason, self.body, self.content_type = code, reason, body, content_type


class Unreachable(Exception):
    """No HTTP answer at all: refused, timed out, reset, not HTTP."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Requests go only where the caller asked: a redirect is an answer, not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def get(url: str, headers: Mapping[str, str], timeout: float) -> Any:
    """Open ``url``; the response (a context manager). Raises HTTPStatus or Unreachable.

    ``timeout`` bounds the connect and each read; redirects are not followed.
    """
    req = urllib.request.Request(url, headers=dict(headers))
    try:
        return _OPENER.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        with e:
            body = e.read(4096)
        raise HTTPStatus(e.code, str(e.reason), body, e.headers.get("Content-Type", "")) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise Unreachable(str(reason) or type(reason).__name__) from None


def is_html(content_type: str, body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))
