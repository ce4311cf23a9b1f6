"""A local API Gateway (REST): HTTP requests become proxy events for the API function.

Routes, methods and which of them require an API key come from the ``Api`` events of the function in
``template.yaml``. Like API Gateway: an unknown route answers 403 ``Missing Authentication Token``,
a missing or wrong ``x-api-key`` answers 403 ``Forbidden``, and a request with a known key carries that
key's id in ``requestContext.identity.apiKeyId`` (the tenant). Several keys can be served at once
(``api_keys``: key value -> key id), like keys of a usage plan.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mediavault_local.lambda_runtime import FunctionInstance

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's limit


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    pattern: re.Pattern[str]
    key_required: bool


def routes_from_events(events: dict[str, dict[str, Any]], *, default_key_required: bool) -> list[Route]:
    routes = []
    for event in events.values():
        if event.get("Type") != "Api":
            continue
        props = event.get("Properties") or {}
        path = str(props["Path"])
        auth = props.get("Auth") or {}
        regex = "^" + re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "/?$"
        routes.append(
            Route(
                method=str(props["Method"]).upper(),
                resource=path,
                pattern=re.compile(regex),
                key_required=bool(auth.get("ApiKeyRequired", default_key_required)),
            )
        )
    return routes


class LocalApi:
    def __init__(
        self,
        function: FunctionInstance,
        routes: list[Route],
        *,
        api_key: str,
        api_key_id: str = "local-key",
        api_keys: dict[str, str] | None = None,
        stage: str = "v1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._function = function
        self._routes = routes
        self.api_key = api_key
        self.api_key_id = api_key_id
        # key value -> key id, as a usage plan's keys; the first key is the stack's default one
        self.keys: dict[str, str] = {api_key: api_key_id, **(api_keys or {})}
        self.stage = stage
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                api._handle(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{self.stage}"

    def start(self) -> LocalApi:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- request handling -------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        path = parts.path
        if path == f"/{self.stage}" or path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1 :] or "/"
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD:
            self._send(request, 413, {"message": "Request Too Long"})
            return
        body = request.rfile.read(length) if length else b""
        method = request.command.upper()
        route, params = self._match(method, path)
        if route is None:
            self._send(request, 403, {"message": "Missing Authentication Token"})
            return
        key = request.headers.get("x-api-key")
        if route.key_required and key not in self.keys:
            self._send(request, 403, {"message": "Forbidden"})
            return
        event = self._event(request, route, path, params, parts.query, body, key)
        try:
            result = self._function.invoke(event)
        except Exception as exc:
            self._send(request, 502, {"message": "Internal server error", "detail": type(exc).__name__})
            return
        status = int(result.get("statusCode", 200))
        payload = result.get("body") or ""
        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send_raw(request, status, raw, headers)

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes:
            match = route.pattern.match(path)
            if match and route.method in (method, "ANY"):
                return route, match.groupdict()
        return None, {}

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        route: Route,
        path: str,
        params: dict[str, str],
        query: str,
        body: bytes,
        key: str | None,
    ) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True)
        headers = {k: v for k, v in request.headers.items()}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            multi_headers.setdefault(name, []).append(value)
        try:
            text = body.decode()
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        request_id = str(uuid.uuid4())
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": request.command.upper(),
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.resource,
                "httpMethod": request.command.upper(),
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                "requestTimeEpoch": int(time.time() * 1000),
                "accountId": "123456789012",
                "apiId": "local",
                "protocol": request.request_version,
                "domainName": request.headers.get("host", "localhost"),
                "identity": {
                    "apiKey": key if route.key_required else None,
                    "apiKeyId": self.keys.get(key or "") if route.key_required else None,
                    "sourceIp": request.client_address[0],
                    "userAgent": request.headers.get("user-agent"),
                },
            },
            "body": text or None,
            "isBase64Encoded": encoded,
        }

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        self._send_raw(request, status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _send_raw(self, request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
