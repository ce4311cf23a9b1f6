"""What ``GET /health`` reports, with figures: heartbeats, the queue, dead letters, jobs by status.

``healthy`` is false (the API answers 503), with the reasons, when storage cannot be read, messages are
dead-lettered, the worker's heartbeat is older than the stale limit while work is pending, or the
recovery sweep has not run for too long.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediavault.clock import Clock
from mediavault.config import Settings
from mediavault.errors import MediaVaultError
from mediavault.heartbeat import HeartbeatStore
from mediavault.jobs.model import JobStatus
from mediavault.jobs.repository import JobRepository
from mediavault.queue import JobQueue


def health_report(
    *,
    repo: JobRepository,
    queue: JobQueue,
    dlq: JobQueue | None,
    heartbeats: HeartbeatStore | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    reasons: list[str] = []
    report: dict[str, Any] = {}
    try:
        attrs = queue.attributes()
        report["queueDepth"] = attrs.get("ApproximateNumberOfMessages", 0)
        report["inFlight"] = attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
    except MediaVaultError as exc:
        reasons.append(f"jobs queue unreachable: {exc.message}")
    if dlq is not None:
        try:
            report["deadLetters"] = dlq.attributes().get("ApproximateNumberOfMessages", 0)
            if report["deadLetters"]:
                reasons.append(f"{report['deadLetters']} message(s) in the dead-letter queue")
        except MediaVaultError as exc:
            reasons.append(f"dead-letter queue unreachable: {exc.message}")
    try:
        report["jobs"] = {s.value: repo.count_by_status(s) for s in JobStatus}
    except MediaVaultError as exc:
        reasons.append(f"jobs table unreachable: {exc.message}")
    if heartbeats is not None and settings is not None and clock is not None:
        _heartbeats(report, reasons, heartbeats, settings, clock.now())
    return {"healthy": not reasons, "status": "ok" if not reasons else "degraded", "reasons": reasons, **report}


def _heartbeats(
    report: dict[str, Any], reasons: list[str], store: HeartbeatStore, settings: Settings, now: float
) -> None:
    try:
        worker, recovery = store.last("worker"), store.last("recovery")
    except (ClientError, BotoCoreError) as exc:
        reasons.append(f"heartbeats unreadable: {type(exc).__name__}")
        return
    worker_age = None if worker is None else round(now - worker, 1)
    recovery_age = None if recovery is None else round(now - recovery, 1)
    report["workerHeartbeatAgeSeconds"] = worker_age
    report["recoveryRunAgeSeconds"] = recovery_age
    pending = report.get("queueDepth", 0) + report.get("jobs", {}).get("running", 0)
    if pending and (worker_age is None or worker_age > settings.heartbeat_stale_seconds):
        seen = "never" if worker_age is None else f"{worker_age:.0f}s ago"
        reasons.append(f"work is pending but the worker's last heartbeat was {seen}"
                       f" (stale after {settings.heartbeat_stale_seconds:.0f}s)")  # fmt: skip
    if recovery_age is not None and recovery_age > settings.recovery_stale_seconds:
        reasons.append(f"the recovery sweep last ran {recovery_age:.0f}s ago"
                       f" (stale after {settings.recovery_stale_seconds:.0f}s)")  # fmt: skip
