"""A local AWS Lambda Runtime API (2018-06-01) for exercising container-image entrypoints.

The worker function ships as a container image whose entrypoint is
``python -m awslambdaric app.lambda_handler``. There is no Docker engine (and no Lambda
Runtime Interface Emulator) on a developer machine or in CI, so this module provides the
other half of that contract: :class:`LocalRuntimeApi` is a small threaded HTTP server that
speaks the Runtime API that ``awslambdaric`` polls, and :func:`run_entrypoint` starts the
real ``awslambdaric`` entrypoint against it with the environment Lambda would set.

Typical use (e.g. running the worker handler with one SQS event)::

    import json
    from pathlib import Path

    from mediavault_local.runtime_api import LocalRuntimeApi, run_entrypoint, stop_entrypoint

    repo = Path(__file__).resolve().parents[2]
    event = {"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEB...",
        "body": json.dumps({...}),                    # the job message the worker consumes
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:mediavault-jobs",
        "awsRegion": "us-east-1",
    }]}

    with LocalRuntimeApi(timeout_seconds=120) as runtime:
        proc = run_entrypoint(
            "app.lambda_handler",                     # the image's CMD
            cwd=repo / "functions" / "worker",        # becomes LAMBDA_TASK_ROOT (/var/task)
            env={
                # The image copies the mediavault package into /var/task; point at the source.
                "PYTHONPATH": str(repo / "layers" / "mediavault"),
                "POWERTOOLS_TRACE_DISABLED": "true",
                # ... the function's own variables (table/bucket names, endpoint URLs) ...
            },
            runtime=runtime,
        )
        try:
            result = runtime.invoke(event, timeout=120)
        finally:
            stop_entrypoint(proc)
    assert result.error is None, result.error
    assert result.payload == {"batchItemFailures": []}

Or, equivalently, with the :func:`entrypoint` context manager::

    with LocalRuntimeApi() as runtime, entrypoint("app.lambda_handler", cwd=..., env=..., runtime=runtime):
        result = runtime.invoke(event, timeout=120)

Behaviour worth knowing (verified against awslambdaric 4.2 and its native ``runtime_client``
extension, which is built on aws-lambda-cpp and does the ``/next``, ``/response`` and
``/error`` calls with libcurl over one keep-alive connection):

* Every ``/next`` answer carries ``Content-Type``: the native client dereferences it and
  segfaults (exit code 139) when it is missing, on success *and* on error answers.
* Invocation errors are posted by the native client *without* the
  ``Lambda-Runtime-Function-Error-Type`` header; only ``Lambda-Runtime-Function-XRay-Error-Cause``
  is sent. The error type lives in the JSON body (``errorType``). The init-error path
  (pure Python ``http.client``) does send the header.
* A non-2xx answer (or a dropped connection) on ``/next`` makes the runtime raise
  ``RuntimeError: Failed to get next`` and exit with status 1; that is how :meth:`LocalRuntimeApi.stop`
  releases a runtime that is still long-polling.
* The process installs no SIGTERM handler, so SIGTERM ends it at once (exit status -15), even
  while it is blocked inside the native ``next()`` call. If handler code installs a Python
  SIGTERM handler, it cannot run while the runtime is parked in ``next()`` (the C call does not
  return to the interpreter), so :func:`stop_entrypoint` falls back to SIGKILL after the grace period.
* :meth:`LocalRuntimeApi.invoke` fails fast with :class:`RuntimeExitedError` when the processes
  started by :func:`run_entrypoint` have all exited, so a crashing handler does not cost the
  whole invoke timeout; an init failure raises :class:`RuntimeInitError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DEFAULT_FUNCTION_ARN",
    "InvocationResult",
    "LocalRuntimeApi",
    "RuntimeExitedError",
    "RuntimeInitError",
    "entrypoint",
    "run_entrypoint",
    "stop_entrypoint",
]

log = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
DEFAULT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:local"
#: Lambda's synchronous response payload limit (6 MB).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024

HEADER_REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
HEADER_DEADLINE_MS = "Lambda-Runtime-Deadline-Ms"
HEADER_FUNCTION_ARN = "Lambda-Runtime-Invoked-Function-Arn"
HEADER_TRACE_ID = "Lambda-Runtime-Trace-Id"
HEADER_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
HEADER_XRAY_ERROR_CAUSE = "Lambda-Runtime-Function-XRay-Error-Cause"

#: How often a parked ``/next`` long-poll checks whether its client went away.
_POLL_INTERVAL_S = 0.2


class RuntimeInitError(RuntimeError):
    """The runtime reported an init error (``POST /runtime/init/error``) while an invoke waited."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(f"runtime init failed: {error.get('errorType')}: {error.get('errorMessage')}")


class RuntimeExitedError(RuntimeError):
    """The runtime process exited, so the invocation can no longer be answered."""

    def __init__(self, request_id: str, delivered: bool, returncode: int | None) -> None:
        self.request_id = request_id
        self.delivered = delivered
        self.returncode = returncode
        where = "while handling" if delivered else "before picking up"
        super().__init__(f"the runtime process exited (status {returncode}) {where} invocation {request_id}")


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of one invocation, as posted back by the runtime.

    Attributes:
        request_id: The ``Lambda-Runtime-Aws-Request-Id`` the event was delivered with.
        payload: The parsed JSON response, or ``None`` when the invocation failed (or the
            response was not JSON; see ``raw_payload``).
        error: The error document (``errorMessage``, ``errorType``, ``stackTrace``, ...) or ``None``.
        duration_s: Seconds from handing the event to the runtime until its answer arrived.
        raw_payload: The response body as received.
        error_type: ``errorType`` of the error, taken from the ``Lambda-Runtime-Function-Error-Type``
            header when sent, else from the body.
        headers: The headers of the runtime's ``/response`` or ``/error`` request.
    """

    request_id: str
    payload: Any
    error: dict[str, Any] | None
    duration_s: float
    raw_payload: bytes = b""
    error_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the handler returned without raising."""
        return self.error is None


@dataclass
class _Invocation:
    """Book-keeping for one queued or in-flight event."""

    request_id: str
    body: bytes
    trace_id: str | None
    delivered_at: float | None = None
    result: InvocationResult | None = None


class LocalRuntimeApi:
    """An in-process Lambda Runtime API server on ``127.0.0.1``.

    Events passed to :meth:`invoke` are queued and handed out in order to whatever runtime
    long-polls ``GET /2018-06-01/runtime/invocation/next``; :meth:`invoke` then blocks until
    the runtime posts the response or error for that request id.

    Args:
        timeout_seconds: The function timeout; each event's deadline is delivery time plus this.
        function_arn: Sent as ``Lambda-Runtime-Invoked-Function-Arn``.
        port: The port to bind; 0 (the default) picks a free one.
    """

    def __init__(
        self,
        timeout_seconds: float = 900,
        function_arn: str = DEFAULT_FUNCTION_ARN,
        *,
        port: int = 0,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.function_arn = function_arn
        self._port = port
        self._cond = threading.Condition()
        self._pending: deque[_Invocation] = deque()
        self._inflight: dict[str, _Invocation] = {}
        self._init_error: dict[str, Any] | None = None
        self._init_error_count = 0
        self._stopping = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._processes: list[subprocess.Popen[Any]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalRuntimeApi:
        """Bind the socket and serve in a background thread. Returns ``self``."""
        if self._server is not None:
            raise RuntimeError("LocalRuntimeApi is already started")
        with self._cond:
            self._stopping = False
        self._server = _Server(("127.0.0.1", self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"local-runtime-api:{self._server.server_port}",
            daemon=True,
        )
        self._thread.start()
        log.debug("local Runtime API listening on %s", self.address)
        return self

    def stop(self) -> None:
        """Stop serving; parked ``/next`` long-polls are answered with an error and released."""
        server = self._server
        if server is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        server.shutdown()
        # Give parked long-polls a moment to answer, then cut every remaining connection.
        deadline = time.monotonic() + 1.0
        while server.busy_requests() and time.monotonic() < deadline:
            time.sleep(0.02)
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalRuntimeApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: the value for ``AWS_LAMBDA_RUNTIME_API``."""
        if self._server is None:
            raise RuntimeError("LocalRuntimeApi is not started")
        return f"127.0.0.1:{self._server.server_port}"

    @property
    def init_error(self) -> dict[str, Any] | None:
        """The last error posted to ``/runtime/init/error``, or ``None``."""
        with self._cond:
            return self._init_error

    # -- invoking --------------------------------------------------------------------------

    def invoke(self, event: Any, timeout: float = 30.0, *, trace_id: str | None = None) -> InvocationResult:
        """Queue ``event`` for the runtime and wait for its response or error.

        Args:
            event: A JSON-serialisable event (normally a dict, e.g. an SQS event).
            timeout: Seconds to wait for the runtime to pick up *and* answer the event.
            trace_id: ``Lambda-Runtime-Trace-Id`` to send; by default an unsampled X-Ray id.

        Raises:
            TimeoutError: No answer within ``timeout``. An event that was not picked up is
                withdrawn from the queue; a late answer for a delivered one is discarded.
            RuntimeInitError: The runtime posted an init error while this call waited.
            RuntimeExitedError: Every process started by :func:`run_entrypoint` (see
                :meth:`watch_process`) exited while this event was in flight, or while it
                waited in the queue after one of them had been running.
            RuntimeError: The server is not running, or was stopped while this call waited.
        """
        invocation = _Invocation(
            request_id=str(uuid.uuid4()),
            body=json.dumps(event).encode(),
            trace_id=trace_id or _new_trace_id(),
        )
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._server is None or self._stopping:
                raise RuntimeError("LocalRuntimeApi is not running")
            init_errors_before = self._init_error_count
            had_live_process = any(p.poll() is None for p in self._processes)
            self._pending.append(invocation)
            self._cond.notify_all()
            try:
                while invocation.result is None:
                    if self._init_error_count != init_errors_before and self._init_error is not None:
                        raise RuntimeInitError(self._init_error)
                    if self._stopping:
                        raise RuntimeError(f"LocalRuntimeApi stopped while invocation {invocation.request_id} waited")
                    delivered = invocation.delivered_at is not None
                    if (delivered or had_live_process) and self._processes:
                        codes = [p.poll() for p in self._processes]
                        if all(code is not None for code in codes):
                            raise RuntimeExitedError(invocation.request_id, delivered, codes[-1])
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        state = "was delivered but not answered" if delivered else "was never picked up by a runtime"
                        raise TimeoutError(f"invocation {invocation.request_id} {state} within {timeout}s")
                    self._cond.wait(timeout=min(remaining, _POLL_INTERVAL_S))
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._pending.remove(invocation)
                self._inflight.pop(invocation.request_id, None)
                raise
            return invocation.result

    def watch_process(self, process: subprocess.Popen[Any]) -> None:
        """Let :meth:`invoke` fail fast once ``process`` (and every other watched one) has exited.

        :func:`run_entrypoint` calls this for the processes it starts.
        """
        with self._cond:
            self._processes = [p for p in self._processes if p.poll() is None]
            self._processes.append(process)

    @property
    def pending_count(self) -> int:
        """Events queued but not yet handed to a runtime."""
        with self._cond:
            return len(self._pending)

    # -- called from request handler threads -------------------------------------------------

    def _next_invocation(self, client_gone: Any) -> tuple[_Invocation, int] | None:
        """Block until an event is queued; ``None`` if stopping or the client disconnected."""
        with self._cond:
            while not self._pending:
                if self._stopping or client_gone():
                    return None
                self._cond.wait(timeout=_POLL_INTERVAL_S)
            if self._stopping:
                return None
            invocation = self._pending.popleft()
            invocation.delivered_at = time.monotonic()
            self._inflight[invocation.request_id] = invocation
        deadline_ms = int((time.time() + self.timeout_seconds) * 1000)
        return invocation, deadline_ms

    def _requeue(self, invocation: _Invocation) -> None:
        """Put back an event whose delivery failed (the runtime went away mid-answer)."""
        with self._cond:
            if self._inflight.pop(invocation.request_id, None) is not None:
                invocation.delivered_at = None
                self._pending.appendleft(invocation)
                self._cond.notify_all()

    def _complete(
        self,
        request_id: str,
        *,
        body: bytes,
        headers: Mapping[str, str],
        is_error: bool,
        error_override: dict[str, Any] | None = None,
    ) -> bool:
        """Record the runtime's answer for ``request_id``; ``False`` if the id is unknown."""
        with self._cond:
            invocation = self._inflight.pop(request_id, None)
            if invocation is None:
                return False
            started = invocation.delivered_at or time.monotonic()
            duration = time.monotonic() - started
            header_type = _header(headers, HEADER_ERROR_TYPE)
            if is_error or error_override is not None:
                error = error_override or _parse_error(body, header_type)
                result = InvocationResult(
                    request_id=request_id,
                    payload=None,
                    error=error,
                    duration_s=duration,
                    raw_payload=body,
                    error_type=header_type or error.get("errorType"),
                    headers=dict(headers),
                )
            else:
                result = InvocationResult(
                    request_id=request_id,
                    payload=_parse_json(body),
                    error=None,
                    duration_s=duration,
                    raw_payload=body,
                    headers=dict(headers),
                )
            invocation.result = result
            self._cond.notify_all()
            return True

    def _record_init_error(self, body: bytes, headers: Mapping[str, str]) -> None:
        with self._cond:
            self._init_error = _parse_error(body, _header(headers, HEADER_ERROR_TYPE))
            self._init_error_count += 1
            self._cond.notify_all()


# -- HTTP plumbing ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that knows its :class:`LocalRuntimeApi` and tracks connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], api: LocalRuntimeApi):
        self.api = api
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._busy = 0
        super().__init__(address, handler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def mark_busy(self, delta: int) -> None:
        with self._conn_lock:
            self._busy += delta

    def busy_requests(self) -> int:
        with self._conn_lock:
            return self._busy

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alives block handler threads)."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes the Runtime API paths to the owning :class:`LocalRuntimeApi`."""

    # libcurl (inside awslambdaric's native client) keeps one connection alive across calls.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each answer would wait
    # for the client's delayed ACK (~40 ms per request, ~90 ms per invocation).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("runtime api %s: " + format, self.address_string(), *args)

    # -- routing ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.server.mark_busy(1)
        try:
            if self.path.split("?", 1)[0] == f"{API_PREFIX}/invocation/next":
                self._handle_next()
            else:
                self._send_error_json(HTTPStatus.NOT_FOUND, "NotFound", f"unknown path {self.path}")
        except OSError:
            self.close_connection = True
        finally:
            self.server.mark_busy(-1)

    def do_POST(self) -> None:
        self.server.mark_busy(1)
        try:
            self._route_post()
        except OSError:
            self.close_connection = True
        finally:
            self.server.mark_busy(-1)

    def _route_post(self) -> None:
        api = self.server.api
        try:
            body = self._read_body()
        except ValueError as exc:
            self._send_error_json(HTTPStatus.BAD_REQUEST, "InvalidRequest", str(exc))
            return
        path = self.path.split("?", 1)[0]
        if path == f"{API_PREFIX}/init/error":
            api._record_init_error(body, dict(self.headers.items()))
            self._send_json(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        prefix = f"{API_PREFIX}/invocation/"
        if path.startswith(prefix):
            request_id, _, action = path[len(prefix) :].partition("/")
            if request_id and action in ("response", "error"):
                self._handle_answer(request_id, action, body)
                return
        self._send_error_json(HTTPStatus.NOT_FOUND, "NotFound", f"unknown path {self.path}")

    # -- endpoints --------------------------------------------------------------------------

    def _handle_next(self) -> None:
        api = self.server.api
        claimed = api._next_invocation(self._client_gone)
        if claimed is None:
            # Stopping (or the runtime already hung up). The native client turns any non-2xx
            # into "Failed to get next" and exits 1; Content-Type must be present or it crashes.
            self.close_connection = True
            self._send_error_json(
                HTTPStatus.SERVICE_UNAVAILABLE, "Runtime.ApiStopped", "the local Runtime API is stopping"
            )
            return
        invocation, deadline_ms = claimed
        headers = {
            HEADER_REQUEST_ID: invocation.request_id,
            HEADER_DEADLINE_MS: str(deadline_ms),
            HEADER_FUNCTION_ARN: api.function_arn,
        }
        if invocation.trace_id:
            headers[HEADER_TRACE_ID] = invocation.trace_id
        try:
            self._send(HTTPStatus.OK, invocation.body, headers)
        except OSError:
            api._requeue(invocation)
            raise

    def _handle_answer(self, request_id: str, action: str, body: bytes) -> None:
        api = self.server.api
        headers = dict(self.headers.items())
        if action == "response" and len(body) > MAX_RESPONSE_BYTES:
            message = f"Response payload size ({len(body)} bytes) exceeded maximum allowed ({MAX_RESPONSE_BYTES})"
            too_large = {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}
            api._complete(request_id, body=body, headers=headers, is_error=True, error_override=too_large)
            self._send_error_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "RequestEntityTooLarge", message)
            return
        if not api._complete(request_id, body=body, headers=headers, is_error=action == "error"):
            self._send_error_json(
                HTTPStatus.BAD_REQUEST, "InvalidRequestID", f"unknown or already answered request id {request_id}"
            )
            return
        self._send_json(HTTPStatus.ACCEPTED, {"status": "OK"})

    # -- helpers ----------------------------------------------------------------------------

    def _client_gone(self) -> bool:
        """Whether the client closed its end while its ``/next`` request was parked."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            raise ValueError(f"bad Content-Length {length!r}")
        return self.rfile.read(int(length))

    def _send(self, status: HTTPStatus, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: HTTPStatus, document: Any) -> None:
        self._send(status, json.dumps(document).encode())

    def _send_error_json(self, status: HTTPStatus, error_type: str, message: str) -> None:
        self._send_json(status, {"errorType": error_type, "errorMessage": message})


# -- launching the entrypoint ----------------------------------------------------------------


def run_entrypoint(
    handler: str,
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    runtime: LocalRuntimeApi,
    memory_mb: int = 1024,
    inherit_env: bool = True,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``python -m awslambdaric <handler>`` (the image's entrypoint) against ``runtime``.

    The child gets the variables Lambda sets in an execution environment (function name,
    version, memory size, log group/stream, region derived from the ARN), then ``env`` on
    top, then ``AWS_LAMBDA_RUNTIME_API``, ``_HANDLER`` and ``LAMBDA_TASK_ROOT=cwd``, which
    are always set. ``cwd`` is the working directory, so ``handler``'s module is importable
    from it just as from ``/var/task`` in the image.

    Args:
        handler: ``module.function``, e.g. ``"app.lambda_handler"``.
        cwd: The task root holding the handler module.
        env: Extra/overriding environment variables.
        runtime: A started :class:`LocalRuntimeApi`.
        memory_mb: Reported as ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``.
        inherit_env: Start from a copy of ``os.environ`` (PATH, venv, ...) when true.
        stdout: Passed to :class:`subprocess.Popen`; by default the child inherits the stream.
        stderr: Likewise.

    Returns:
        The running process; end it with :func:`stop_entrypoint`.
    """
    task_root = str(Path(cwd).resolve())
    arn_parts = runtime.function_arn.split(":")
    function_name = arn_parts[6] if len(arn_parts) > 6 else "local"
    region = arn_parts[3] if len(arn_parts) > 3 and arn_parts[3] else "us-east-1"
    version = arn_parts[7] if len(arn_parts) > 7 else "$LATEST"
    today = time.strftime("%Y/%m/%d", time.gmtime())

    child_env: dict[str, str] = dict(os.environ) if inherit_env else {}
    child_env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[{version}]{uuid.uuid4().hex}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "TZ": ":UTC",
        }
    )
    child_env.update(env or {})
    child_env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": runtime.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": task_root,
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", handler],
        cwd=task_root,
        env=child_env,
        stdout=stdout,
        stderr=stderr,
    )
    runtime.watch_process(process)
    return process


def stop_entrypoint(process: subprocess.Popen[Any], *, grace_seconds: float = 5.0) -> int:
    """Terminate a process from :func:`run_entrypoint`: SIGTERM, then SIGKILL after ``grace_seconds``.

    Returns:
        The exit status (negative signal number when killed by a signal, e.g. ``-15``).
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            log.warning("runtime process %s ignored SIGTERM for %ss; killing it", process.pid, grace_seconds)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
    return process.returncode


@contextlib.contextmanager
def entrypoint(
    handler: str,
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    runtime: LocalRuntimeApi,
    grace_seconds: float = 5.0,
    **kwargs: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """Context manager pairing :func:`run_entrypoint` with :func:`stop_entrypoint`."""
    process = run_entrypoint(handler, cwd=cwd, env=env, runtime=runtime, **kwargs)
    try:
        yield process
    finally:
        stop_entrypoint(process, grace_seconds=grace_seconds)


# -- small helpers -----------------------------------------------------------------------------


def _new_trace_id() -> str:
    """An X-Ray trace header as Lambda passes it, marked not sampled so nothing is emitted."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on plain dicts."""
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _parse_error(body: bytes, header_type: str | None) -> dict[str, Any]:
    """Normalise an error body into a dict with at least ``errorMessage`` and ``errorType``."""
    parsed = _parse_json(body)
    error: dict[str, Any] = (
        dict(parsed) if isinstance(parsed, dict) else {"errorMessage": body.decode("utf-8", "replace")}
    )
    error.setdefault("errorMessage", "")
    if not error.get("errorType"):
        error["errorType"] = header_type or "Unknown"
    error.setdefault("stackTrace", [])
    return error
