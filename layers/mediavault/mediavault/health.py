"""What ``GET /health`` reports: the queue, the dead letters and the jobs, with figures."""

from __future__ import annotations

from typing import Any

from mediavault.errors import MediaVaultError
from mediavault.jobs.model import JobStatus
from mediavault.jobs.repository import JobRepository
from mediavault.queue import JobQueue


def health_report(*, repo: JobRepository, queue: JobQueue, dlq: JobQueue | None) -> dict[str, Any]:
    """``healthy`` is false, with reasons, when storage is unreachable or messages are dead-lettered."""
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
        report["jobs"] = {s.value: repo.count_by_status(s) for s in (JobStatus.QUEUED, JobStatus.RUNNING)}
    except MediaVaultError as exc:
        reasons.append(f"jobs table unreachable: {exc.message}")
    return {"healthy": not reasons, "status": "ok" if not reasons else "degraded", "reasons": reasons, **report}
