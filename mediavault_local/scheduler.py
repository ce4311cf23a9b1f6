"""EventBridge schedules, locally: a timer that invokes the function with a ``Scheduled Event``."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from mediavault_local.lambda_runtime import FunctionInstance
from mediavault_local.template import ACCOUNT, REGION

_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_seconds(expression: str) -> float:
    """Seconds between runs of a ``rate(...)`` expression; ``cron(...)`` runs every minute locally."""
    match = _RATE.fullmatch(expression.strip())
    if match:
        return int(match.group(1)) * _UNITS[match.group(2).rstrip("s")]
    if expression.strip().startswith("cron("):
        return 60.0
    raise ValueError(f"unsupported schedule expression {expression!r}")


def scheduled_event(rule_name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule_name}"],
        "detail": {},
    }


class Schedule:
    def __init__(
        self, instance: FunctionInstance, *, rule_name: str, every: float, log: Callable[[str], None] = print
    ) -> None:
        self._instance = instance
        self._rule = rule_name
        self.every = every
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{rule_name}", daemon=True)
        self.runs = 0
        self.last_result: Any = None

    def start(self) -> Schedule:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.last_result = self._instance.invoke(scheduled_event(self._rule))
                self.runs += 1
            except Exception as exc:
                self._log(f"schedule {self._rule}: invocation failed ({type(exc).__name__}: {exc})")
