"""What every loopback fixture site shares: a threaded server with a lifecycle and a request log,
and responses that honour ``Range`` (media), ``HEAD`` and an optional byte-rate throttle.

A site subclasses :class:`LoopbackSite` and implements :meth:`LoopbackSite.handle`, which receives a
:class:`Exchange` (the request, and the ways to answer it).
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, BinaryIO, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["Exchange", "LoopbackSite", "RequestRecord", "html_document", "meta_tag", "parse_range"]

log = logging.getLogger(__name__)

#: (method, path including any query string, request headers)
RequestRecord = tuple[str, str, dict[str, str]]

_CHUNK = 64 * 1024


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """Parse a single ``bytes=`` range against ``size``: ``(first, last)`` inclusive, ``False`` when
    unsatisfiable (416), ``None`` when it should be ignored (malformed or multi-range)."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    start_s, dash, end_s = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if start_s == "":
            suffix = int(end_s)
            if suffix < 0:
                return None
            if suffix == 0 or size == 0:
                return False
            return max(0, size - suffix), size - 1
        first = int(start_s)
        last = int(end_s) if end_s else size - 1
    except ValueError:
        return None
    if first < 0:
        return None
    if first >= size:
        return False
    if last < first:
        return None
    return first, min(last, size - 1)


def html_document(title: str, head: list[str], body: str, *, style: str = "", before: str = "", after: str = "") -> str:
    """A complete HTML5 document: ``head`` lines in the head, ``body`` inside ``<main>`` when the site
    adds chrome (``before`` / ``after``), else as it is."""
    head_html = "\n    ".join(head)
    style_html = f"\n    <style>\n{style}    </style>" if style else ""
    inner = f"    {before}\n    <main>\n{body}\n    </main>\n    {after}" if before or after else body
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{html.escape(title)}</title>
    {head_html}{style_html}
  </head>
  <body>
{inner}
  </body>
</html>
"""


def meta_tag(attr: str, key: str, value: str | int) -> str:
    """``<meta property="og:video" content="...">`` (``attr``: property or name), escaped."""
    return f'<meta {attr}="{html.escape(key)}" content="{html.escape(str(value))}">'


@dataclass
class Exchange:
    """One request and the ways to answer it."""

    handler: BaseHTTPRequestHandler
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    head: bool

    @property
    def headers(self) -> Mapping[str, str]:
        return self.handler.headers  # type: ignore[return-value]

    @property
    def origin(self) -> str:
        """``http://<Host header>``: URLs built from it work on whatever port the site is bound to."""
        host = self.handler.headers.get("Host") or "{}:{}".format(*self.handler.server.server_address[:2])
        return f"http://{host}"

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def cookie(self, name: str) -> str | None:
        for part in (self.handler.headers.get("Cookie") or "").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value
        return None

    def send_bytes(
        self, status: int, body: bytes, content_type: str, *, extra: Mapping[str, str] | None = None
    ) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        h.end_headers()
        if not self.head:
            h.wfile.write(body)

    def send_html(self, status: int, page: str, *, extra: Mapping[str, str] | None = None) -> None:
        self.send_bytes(status, page.encode(), "text/html; charset=utf-8", extra=extra)

    def send_json(self, status: int, data: Any, *, extra: Mapping[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(data).encode(), "application/json; charset=utf-8", extra=extra)

    def send_stream(
        self,
        stream: BinaryIO,
        size: int,
        content_type: str,
        *,
        etag: str | None = None,
        throttle_bps: int | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Send ``size`` bytes of ``stream`` honouring a single ``Range`` header, in chunks."""
        h = self.handler
        first, last, status = 0, size - 1, HTTPStatus.OK
        range_header = h.headers.get("Range")
        if range_header:
            parsed = parse_range(range_header, size)
            if parsed is False:
                h.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                h.send_header("Content-Range", f"bytes */{size}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            if isinstance(parsed, tuple):
                first, last = parsed
                status = HTTPStatus.PARTIAL_CONTENT
        length = max(0, last - first + 1)
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(length))
        h.send_header("Accept-Ranges", "bytes")
        if etag:
            h.send_header("ETag", etag)
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        if status == HTTPStatus.PARTIAL_CONTENT:
            h.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        h.end_headers()
        if self.head or length == 0:
            return
        chunk = _CHUNK if not throttle_bps else max(1, min(_CHUNK, throttle_bps // 10))
        stream.seek(first)
        remaining, sent, started = length, 0, time.monotonic()
        while remaining > 0:
            data = stream.read(min(chunk, remaining))
            if not data:
                h.close_connection = True
                return
            h.wfile.write(data)
            remaining -= len(data)
            sent += len(data)
            if throttle_bps:
                ahead = sent / throttle_bps - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], site: LoopbackSite) -> None:
        self.site = site
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response (a cancelled download) is not an error of the site.
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_POST(self) -> None:
        self._dispatch(head=False)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.site.verbose:
            log.info("%s - %s", self.address_string(), format % args)

    def _dispatch(self, *, head: bool) -> None:
        site = self.server.site
        site._record(self.command, self.path, dict(self.headers.items()))
        parts = urlsplit(self.path)
        exchange = Exchange(self, self.command, parts.path, parse_qs(parts.query), head)
        try:
            site.handle(exchange)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class LoopbackSite:
    """A fixture site on ``host:port`` (port 0: any free port), served from daemon threads."""

    name = "site"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, exchange: Exchange) -> None:  # pragma: no cover - subclasses answer
        raise NotImplementedError

    def prepare(self) -> None:
        """Called by :meth:`start` before binding (generate fixture files here)."""

    def start(self) -> Self:
        if self._server is not None:
            return self
        self.prepare()
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        """``host:port``, as ``MEDIAVAULT_PLATFORM_HOSTS`` and ``MEDIAVAULT_EGRESS_ALLOW`` name it."""
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def paths_requested(self, method: str | None = None) -> list[str]:
        return [urlsplit(p).path for m, p, _ in self.requests if method is None or m == method]

    def _record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self._requests.append((method, path, headers))
