"""Run the template's functions in this process, one isolated module per function instance.

Each instance is like one warm Lambda container: its own copy of the handler module (module-level
state such as the batch processor is not shared), one invocation at a time, a Lambda context whose
remaining time counts down from the function's timeout.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from mediavault_local.template import ACCOUNT, REGION, FunctionSpec

_instances = itertools.count(1)


class Invocable(Protocol):
    """One warm instance of a function (in-process module or container process)."""

    def invoke(self, event: dict[str, Any], *, timeout: float | None = None) -> Any: ...


class LocalContext:
    """The parts of ``LambdaContext`` the handlers and Powertools use."""

    def __init__(self, spec: FunctionSpec, *, timeout: float | None = None, request_id: str | None = None) -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{spec.logical_id}"
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + (timeout if timeout is not None else spec.timeout)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionInstance:
    """One warm container of a function: a private module copy and a lock (one invocation at a time)."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None
        self.invocations = 0

    def _load(self) -> Callable[[dict[str, Any], Any], Any]:
        if self._handler is None:
            module_name = f"_mediavault_fn_{self.spec.logical_id}_{next(_instances)}"
            loader = importlib.util.spec_from_file_location(module_name, self.spec.module_path)
            if loader is None or loader.loader is None:
                raise ImportError(f"cannot load {self.spec.module_path}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[module_name] = module
            loader.loader.exec_module(module)
            self._handler = getattr(module, self.spec.function_name)
        return self._handler

    def invoke(self, event: dict[str, Any], *, timeout: float | None = None) -> Any:
        with self._lock:
            handler = self._load()
            self.invocations += 1
            return handler(event, LocalContext(self.spec, timeout=timeout))


class FunctionError(RuntimeError):
    """The function's invocation ended in an error (what Lambda reports as ``FunctionError``)."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}")


class ContainerInstance:
    """One warm container of an image function: ``python -m awslambdaric`` in its own process,
    fed through a local Runtime API. A container that died is replaced on the next invocation,
    as Lambda would start a new one."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        env: dict[str, str],
        pythonpath: list[str],
        log_path: Any = None,
    ) -> None:
        self.spec = spec
        self._env = {**env, "PYTHONPATH": os.pathsep.join(pythonpath)}
        self._log_path = log_path
        self._lock = threading.Lock()
        self._runtime: Any = None
        self._process: Any = None
        self._log_file: Any = None
        self.invocations = 0
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _ensure_started(self) -> Any:
        from mediavault_local.runtime_api import LocalRuntimeApi, run_entrypoint

        if self._process is not None and self._process.poll() is None:
            return self._runtime
        self._shutdown()
        self._runtime = LocalRuntimeApi(timeout_seconds=self.spec.timeout).start()
        if self._log_path is not None and self._log_file is None:
            self._log_file = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = run_entrypoint(
            self.spec.handler,
            cwd=self.spec.code_dir,
            env=self._env,
            runtime=self._runtime,
            memory_mb=self.spec.memory,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        self.starts += 1
        return self._runtime

    def invoke(self, event: dict[str, Any], *, timeout: float | None = None) -> Any:
        with self._lock:
            runtime = self._ensure_started()
            self.invocations += 1
            result = runtime.invoke(event, timeout=(timeout or self.spec.timeout) + 5)
            if result.error is not None:
                raise FunctionError(result.error)
            return result.payload

    def kill(self) -> None:
        """SIGKILL the container (fault injection: what a Lambda timeout or crash does)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def _shutdown(self) -> None:
        from mediavault_local.runtime_api import stop_entrypoint

        if self._process is not None:
            stop_entrypoint(self._process, grace_seconds=5.0)
            self._process = None
        if self._runtime is not None:
            self._runtime.stop()
            self._runtime = None

    def stop(self) -> None:
        self._shutdown()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
