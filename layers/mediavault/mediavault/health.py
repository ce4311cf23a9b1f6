"""What ``GET /health`` reports, with figures: heartbeats, the queue, the age of its oldest message, dead
letters, jobs by status.

``healthy`` is false (the API answers 503), with the reasons, when storage cannot be read, messages are
dead-lettered, the worker's heartbeat is older than the stale limit while work is pending, the recovery
sweep has not run for too long, or the oldest job message has waited longer than its limit.

SQS has no API for the age of its oldest message: it is the CloudWatch metric
``AWS/SQS ApproximateAgeOfOldestMessage`` (:class:`CloudWatchQueueAge`). Where CloudWatch has no figure
(an idle queue, which SQS stops reporting; moto, which has no SQS metrics), the jobs table gives one: the
oldest ``queued`` job whose message was sent (``messageSentAt``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mediavault import aws
from mediavault.clock import Clock, parse_iso
from mediavault.config import Settings
from mediavault.errors import MediaVaultError
from mediavault.heartbeat import HeartbeatStore
from mediavault.jobs.model import JobStatus
from mediavault.jobs.repository import JobRepository
from mediavault.observability import logger
from mediavault.queue import JobQueue

SOURCE_CLOUDWATCH = "cloudwatch"
SOURCE_JOBS_TABLE = "jobs-table"
_METRIC_WINDOW_SECONDS = 300


class QueueAge(Protocol):
    """The age of the oldest message of the jobs queue, as a metrics service reports it."""

    def oldest_message_age(self, *, now: float) -> float | None:
        """Seconds, or ``None`` when the service has no figure for the last few minutes."""
        ...


class CloudWatchQueueAge:
    """``AWS/SQS ApproximateAgeOfOldestMessage`` of the jobs queue: the maximum over the last 5 minutes
    (``GetMetricData``, 1-minute periods), as the template's alarm reads it."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]

    def oldest_message_age(self, *, now: float) -> float | None:
        response = aws.call(
            "CloudWatch",
            self._client.get_metric_data,
            MetricDataQueries=[
                {
                    "Id": "oldest",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": self.queue_name}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                    "ReturnData": True,
                }
            ],
            StartTime=datetime.fromtimestamp(now - _METRIC_WINDOW_SECONDS, tz=UTC),
            EndTime=datetime.fromtimestamp(now, tz=UTC),
        )
        values = [float(v) for result in response.get("MetricDataResults", []) for v in result.get("Values", [])]
        return max(values) if values else None


def health_report(
    *,
    repo: JobRepository,
    queue: JobQueue,
    dlq: JobQueue | None,
    heartbeats: HeartbeatStore | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
    queue_age: QueueAge | None = None,
) -> dict[str, Any]:
    """The report. ``queue_age`` defaults to the deployment's CloudWatch metric (when ``settings`` and
    ``clock`` are given, as the API passes them)."""
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
    if settings is not None and clock is not None:
        if queue_age is None:
            from mediavault import deps

            queue_age = deps.queue_age()
        _oldest_message(report, reasons, repo, queue_age, settings, clock.now())
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


def _oldest_message(
    report: dict[str, Any], reasons: list[str], repo: JobRepository, metric: QueueAge, settings: Settings, now: float
) -> None:
    """``oldestMessageAgeSeconds`` and where it comes from (``oldestMessageAgeSource``); a reason when it
    is over ``MEDIAVAULT_OLDEST_MESSAGE_MAX_SECONDS`` (the template's alarm threshold)."""
    age: float | None = None
    source: str | None = None
    try:
        age = metric.oldest_message_age(now=now)
        source = SOURCE_CLOUDWATCH if age is not None else None
    except MediaVaultError as exc:
        logger.warning(
            "oldest message age not read from CloudWatch; using the jobs table", extra={"error": exc.message}
        )
    if age is None:
        try:
            age = _oldest_sent_queued_job(repo, now, waiting=report.get("queueDepth"))
            source = SOURCE_JOBS_TABLE
        except MediaVaultError as exc:
            if "jobs" in report:  # else "jobs table unreachable" says it already
                reasons.append(f"oldest message age unknown: {exc.message}")
    report["oldestMessageAgeSeconds"] = None if age is None else round(max(age, 0.0), 1)
    report["oldestMessageAgeSource"] = source if age is not None else None
    limit = settings.oldest_message_max_seconds
    if age is not None and age > limit:
        reasons.append(f"the oldest job message has waited {age:.0f}s (too old after {limit:.0f}s; from {source})")


def _oldest_sent_queued_job(repo: JobRepository, now: float, *, waiting: int | None) -> float | None:
    """Age of the oldest ``queued`` job's message (``messageSentAt``). Jobs whose message was never sent
    have no message to count; messages sent straight to the queue (``{"url"}``, no job yet) are not known
    here: with none known and messages waiting (or a depth that could not be read), the figure is unknown
    (``None``); with none waiting, 0."""
    sent = [parse_iso(job.message_sent_at) for job in repo.by_status(JobStatus.QUEUED) if job.message_sent_at]
    if sent:
        return now - min(sent)
    return 0.0 if waiting == 0 else None
