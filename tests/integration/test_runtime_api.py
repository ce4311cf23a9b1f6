"""The image entrypoint (``python -m awslambdaric <handler>``) against the local Runtime API.

Each test writes a tiny handler module into ``tmp_path`` and runs the real awslambdaric
runtime (with its native client) as a subprocess polling :class:`LocalRuntimeApi`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediavault_local.runtime_api import (
    InvocationResult,
    LocalRuntimeApi,
    RuntimeExitedError,
    RuntimeInitError,
    run_entrypoint,
    stop_entrypoint,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FUNCTION_TIMEOUT_S = 30.0
INVOKE_TIMEOUT_S = 10.0
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:mediavault-test-echo"

Starter = Callable[[str], "subprocess.Popen[bytes]"]

HANDLERS = {
    "echo.py": """
        import os

        INVOCATIONS = 0

        def handler(event, context):
            global INVOCATIONS
            INVOCATIONS += 1
            return {
                "seen": event,
                "invocation": INVOCATIONS,
                "pid": os.getpid(),
                "remaining_ms": context.get_remaining_time_in_millis(),
                "request_id": context.aws_request_id,
                "function_arn": context.invoked_function_arn,
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
                "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
                "region": os.environ.get("AWS_REGION"),
            }
    """,
    "boom.py": """
        import os

        class MediaFetchError(Exception):
            pass

        def handler(event, context):
            if event.get("fail"):
                raise MediaFetchError("cannot fetch " + event["fail"])
            if event.get("exit"):
                os._exit(event["exit"])
            return {"ok": True}
    """,
    "broken.py": """
        raise ImportError("the layer is missing")
    """,
}


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    for name, source in HANDLERS.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    return tmp_path


@pytest.fixture
def runtime() -> Iterator[LocalRuntimeApi]:
    with LocalRuntimeApi(timeout_seconds=FUNCTION_TIMEOUT_S, function_arn=FUNCTION_ARN) as api:
        yield api


@pytest.fixture
def start(task_root: Path, runtime: LocalRuntimeApi) -> Iterator[Starter]:
    """Start ``python -m awslambdaric <handler>`` in ``task_root``; stopped at teardown."""
    processes: list[subprocess.Popen[bytes]] = []

    def _start(handler: str) -> subprocess.Popen[bytes]:
        process = run_entrypoint(handler, cwd=task_root, env={"PYTHONDONTWRITEBYTECODE": "1"}, runtime=runtime)
        processes.append(process)
        return process

    yield _start
    for process in processes:
        stop_entrypoint(process, grace_seconds=2)


def _wait_for_pending(runtime: LocalRuntimeApi, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while runtime.pending_count != count:
        assert time.monotonic() < deadline, f"never saw {count} queued events"
        time.sleep(0.01)


def _ok(result: InvocationResult) -> dict[str, Any]:
    assert result.error is None, result.error
    assert isinstance(result.payload, dict)
    return result.payload


def test_sequential_invocations_reuse_the_warm_process(start: Starter, runtime: LocalRuntimeApi) -> None:
    start("echo.handler")

    first = runtime.invoke({"n": 1, "nested": {"k": [1, 2]}}, timeout=INVOKE_TIMEOUT_S)
    second = runtime.invoke({"n": 2}, timeout=INVOKE_TIMEOUT_S)

    one, two = _ok(first), _ok(second)
    assert one["seen"] == {"n": 1, "nested": {"k": [1, 2]}}
    assert two["seen"] == {"n": 2}
    assert (one["invocation"], two["invocation"]) == (1, 2)
    assert one["pid"] == two["pid"]
    assert first.request_id != second.request_id
    assert first.duration_s >= 0


def test_context_carries_request_id_deadline_and_function_identity(
    start: Starter, runtime: LocalRuntimeApi, task_root: Path
) -> None:
    start("echo.handler")

    result = runtime.invoke({"hello": "world"}, timeout=INVOKE_TIMEOUT_S)

    payload = _ok(result)
    assert payload["request_id"] == result.request_id
    assert 0 < payload["remaining_ms"] <= FUNCTION_TIMEOUT_S * 1000
    assert payload["remaining_ms"] > (FUNCTION_TIMEOUT_S - INVOKE_TIMEOUT_S) * 1000
    assert payload["function_arn"] == FUNCTION_ARN
    assert payload["function_name"] == "mediavault-test-echo"
    assert payload["memory_limit_in_mb"] == "1024"
    assert payload["region"] == "eu-west-1"
    assert payload["trace_id"].startswith("Root=1-")
    assert Path(payload["task_root"]) == task_root.resolve()


def test_queued_events_are_served_in_order(start: Starter, runtime: LocalRuntimeApi) -> None:
    # Queue three events before any runtime exists; they wait for its first /next.
    results: dict[int, InvocationResult] = {}

    def invoke(i: int) -> None:
        results[i] = runtime.invoke({"i": i}, timeout=INVOKE_TIMEOUT_S)

    threads = []
    for i in range(3):
        thread = threading.Thread(target=invoke, args=(i,))
        thread.start()
        threads.append(thread)
        _wait_for_pending(runtime, i + 1)

    start("echo.handler")
    for thread in threads:
        thread.join(timeout=INVOKE_TIMEOUT_S + 2)

    assert [_ok(results[i])["invocation"] for i in range(3)] == [1, 2, 3]
    assert [_ok(results[i])["seen"] for i in range(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_handler_exception_surfaces_as_error(start: Starter, runtime: LocalRuntimeApi) -> None:
    start("boom.handler")

    failed = runtime.invoke({"fail": "https://example.test/v.mp4"}, timeout=INVOKE_TIMEOUT_S)

    assert failed.payload is None
    assert failed.error is not None
    assert failed.error["errorType"] == "MediaFetchError"
    assert failed.error_type == "MediaFetchError"
    assert failed.error["errorMessage"] == "cannot fetch https://example.test/v.mp4"
    assert failed.error["requestId"] == failed.request_id
    assert any("boom.py" in frame for frame in failed.error["stackTrace"])
    # The same warm process keeps serving after an unhandled exception.
    assert _ok(runtime.invoke({}, timeout=INVOKE_TIMEOUT_S)) == {"ok": True}


def test_import_failure_is_reported_as_init_error(start: Starter, runtime: LocalRuntimeApi) -> None:
    process = start("broken.handler")

    with pytest.raises(RuntimeInitError) as excinfo:
        runtime.invoke({}, timeout=INVOKE_TIMEOUT_S)

    assert excinfo.value.error["errorType"] == "Runtime.ImportModuleError"
    assert "the layer is missing" in excinfo.value.error["errorMessage"]
    assert runtime.init_error == excinfo.value.error
    assert process.wait(timeout=5) == 1
    assert runtime.pending_count == 0


def test_process_exits_on_stop_while_long_polling(start: Starter, runtime: LocalRuntimeApi) -> None:
    process = start("echo.handler")
    _ok(runtime.invoke({"warm": True}, timeout=INVOKE_TIMEOUT_S))
    time.sleep(0.3)  # parked in GET /next again
    assert process.poll() is None

    started = time.monotonic()
    returncode = stop_entrypoint(process, grace_seconds=5)

    # awslambdaric installs no SIGTERM handler: the default action ends it immediately.
    assert returncode == -signal.SIGTERM
    assert time.monotonic() - started < 2


def test_a_replacement_process_gets_the_next_event(start: Starter, runtime: LocalRuntimeApi) -> None:
    first = start("echo.handler")
    before = _ok(runtime.invoke({"n": 1}, timeout=INVOKE_TIMEOUT_S))
    time.sleep(0.3)  # the first process is parked in GET /next when it dies
    stop_entrypoint(first)

    start("echo.handler")
    after = _ok(runtime.invoke({"n": 2}, timeout=INVOKE_TIMEOUT_S))

    assert after["seen"] == {"n": 2}
    assert after["invocation"] == 1  # cold start
    assert after["pid"] != before["pid"]


def test_a_process_dying_mid_invocation_fails_fast(start: Starter, runtime: LocalRuntimeApi) -> None:
    start("boom.handler")
    started = time.monotonic()

    with pytest.raises(RuntimeExitedError) as excinfo:
        runtime.invoke({"exit": 3}, timeout=INVOKE_TIMEOUT_S)

    assert excinfo.value.returncode == 3
    assert excinfo.value.delivered
    assert time.monotonic() - started < 5


def test_invocation_round_trips_are_fast(start: Starter, runtime: LocalRuntimeApi) -> None:
    """Guards against per-request Nagle/delayed-ACK stalls (~90 ms per invocation)."""
    start("echo.handler")
    _ok(runtime.invoke({}, timeout=INVOKE_TIMEOUT_S))  # cold start

    started = time.monotonic()
    for i in range(50):
        assert _ok(runtime.invoke({"i": i}, timeout=INVOKE_TIMEOUT_S))["seen"] == {"i": i}

    assert time.monotonic() - started < 3


def test_stopping_the_api_releases_a_parked_runtime(task_root: Path) -> None:
    api = LocalRuntimeApi(timeout_seconds=FUNCTION_TIMEOUT_S).start()
    process = run_entrypoint("echo.handler", cwd=task_root, runtime=api)
    try:
        _ok(api.invoke({}, timeout=INVOKE_TIMEOUT_S))
        time.sleep(0.3)
        started = time.monotonic()
        api.stop()
        # The native client gets a 503 on /next, raises "Failed to get next" and exits 1.
        assert process.wait(timeout=5) == 1
        assert time.monotonic() - started < 3
    finally:
        stop_entrypoint(process, grace_seconds=2)
        api.stop()


def test_invoke_times_out_and_withdraws_an_unclaimed_event(runtime: LocalRuntimeApi) -> None:
    with pytest.raises(TimeoutError, match="never picked up"):
        runtime.invoke({"nobody": "listening"}, timeout=0.3)
    assert runtime.pending_count == 0


def test_protocol_edges_without_a_runtime(runtime: LocalRuntimeApi) -> None:
    base = f"http://{runtime.address}/2018-06-01/runtime"

    def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(
            base + path, data=json.dumps(body).encode(), method="POST", headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post("/invocation/no-such-id/response", {}) == 400
    assert post("/nope", {}) == 404
    assert (
        post(
            "/init/error",
            {"errorMessage": "bad", "stackTrace": []},
            {"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"},
        )
        == 202
    )
    assert runtime.init_error == {"errorMessage": "bad", "errorType": "Runtime.Custom", "stackTrace": []}
