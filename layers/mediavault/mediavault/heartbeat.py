"""Heartbeats: proof that the worker and the recovery sweep are alive, readable by ``GET /health``.

Each component writes one small item into the jobs table (``jobId = "heartbeat#<component>"``). The
item has no ``status`` or ``tenantId``, so it appears in no index and in no job listing. The worker
beats when an invocation starts and every ``heartbeat_seconds`` while it works; the recovery
function beats once per run. Both also publish an EMF metric, which the template's alarms watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mediavault.clock import Clock, iso
from mediavault.observability import logger

_PREFIX = "heartbeat#"


class HeartbeatStore(Protocol):
    def beat(self, component: str, *, now: float) -> None: ...
    def last(self, component: str) -> float | None: ...


class DynamoHeartbeatStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def beat(self, component: str, *, now: float) -> None:
        self._table.put_item(Item={"jobId": _PREFIX + component, "beatAt": iso(now), "beatEpoch": int(now)})

    def last(self, component: str) -> float | None:
        item = self._table.get_item(Key={"jobId": _PREFIX + component}).get("Item")
        return float(item["beatEpoch"]) if item else None


class Heartbeat:
    """Beats at once, then every ``every`` seconds on a daemon thread, until the block ends.

    A failed beat is logged and never fails the work it accompanies.
    """

    def __init__(self, store: HeartbeatStore, component: str, *, every: float, clock: Clock,
                 on_beat: Callable[[], None] | None = None) -> None:  # fmt: skip
        self._store, self._component, self._every, self._clock = store, component, every, clock
        self._on_beat = on_beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def _beat(self) -> None:
        try:
            self._store.beat(self._component, now=self._clock.now())
            self.beats += 1
            if self._on_beat is not None:
                self._on_beat()
        except (ClientError, BotoCoreError) as exc:
            logger.warning("heartbeat not recorded", extra={"component": self._component, "error": str(exc)})

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self._component}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
