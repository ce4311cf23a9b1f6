"""Fault injection for the local stack: a reverse proxy in front of moto that can fail on command.

Point one service at it with boto3's per-service endpoint variables (``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL_DYNAMODB``) and switch modes while jobs run:

- ``pass``: forward every request to moto;
- ``down``: accept and immediately close connections (what an unreachable endpoint looks like to botocore);
- ``throttle``: answer DynamoDB's ``ThrottlingException`` (HTTP 400) to a fraction of requests.

Counters tell a test what was injected.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MODES = ("pass", "down", "throttle")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class FaultProxy:
    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, seed: int = 7) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.mode = "pass"
        self.throttle_ratio = 0.5
        self.counts = {"forwarded": 0, "dropped": 0, "throttled": 0}
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # a fault schedule, not security
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_mode(self, mode: str, *, ratio: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        if ratio is not None:
            self.throttle_ratio = ratio

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        if self.mode == "down":
            self._count("dropped")
            request.close_connection = True
            request.connection.close()
            return
        if self.mode == "throttle" and self._random.random() < self.throttle_ratio:
            self._count("throttled")
            payload = json.dumps(
                {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}
            ).encode()
            request.send_response(400)
            request.send_header("Content-Type", "application/x-amz-json-1.0")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        self._count("forwarded")
        upstream = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("connection", "keep-alive")}
            upstream.request(request.command, request.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        request.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in (
                "connection",
                "keep-alive",
                "transfer-encoding",
                "content-length",
                "server",
                "date",
            ):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)
