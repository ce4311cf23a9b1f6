"""The recovery sweep (EventBridge schedule): nothing stays stuck, nothing is lost.

- running jobs whose lease expired -> queued again with a new message (attempts left) or ``failed``
  with ``RECOVERED_FROM_RESTART``;
- queued jobs no worker claimed for too long (a lost message) -> their message is sent again;
- messages in the dead-letter queue -> their jobs ``failed`` with ``DEAD_LETTERED``, the DLQ drained;
- incomplete multipart uploads older than the grace period -> aborted.

Every change goes through the same conditional writes as the worker, so a sweep racing a worker
changes nothing the worker still owns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mediavault.clock import Clock, iso
from mediavault.config import Settings
from mediavault.errors import DeadLettered, RecoveredFromRestart
from mediavault.jobs.model import Job, JobError, JobStatus
from mediavault.jobs.repository import JobRepository
from mediavault.jobs.service import enqueue, job_id_for_message
from mediavault.observability import logger
from mediavault.queue import JobQueue, parse_body
from mediavault.storage import S3MediaStore

_DLQ_BATCHES = 20
_JOB_ID_IN_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class RecoveryReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    dropped_messages: int = 0
    aborted_uploads: list[str] = field(default_factory=list)
    removed_objects: list[str] = field(default_factory=list)
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "requeued": len(self.requeued),
            "failed": len(self.failed),
            "resent": len(self.resent),
            "deadLettered": len(self.dead_lettered),
            "droppedMessages": self.dropped_messages,
            "abortedUploads": len(self.aborted_uploads),
            "removedObjects": len(self.removed_objects),
        }


def recover(
    *,
    repo: JobRepository,
    queue: JobQueue,
    dlq: JobQueue | None,
    store: S3MediaStore | None,
    settings: Settings,
    clock: Clock,
    dry_run: bool = False,
) -> RecoveryReport:
    report = RecoveryReport(dry_run=dry_run)
    _expired_leases(repo, queue, clock, report)
    _unclaimed(repo, queue, settings, clock, report)
    if dlq is not None:
        _dead_letters(repo, dlq, clock, report)
    if store is not None:
        _incomplete_uploads(store, repo, settings, clock, report)
        _orphaned_objects(store, repo, settings, clock, report)
    return report


def _expired_leases(repo: JobRepository, queue: JobQueue, clock: Clock, report: RecoveryReport) -> None:
    now = clock.now()
    for job in repo.by_status(JobStatus.RUNNING):
        if job.lease_expires_at is None or job.lease_expires_at >= now:
            continue
        if report.dry_run:
            report.requeued.append(job.job_id)
            continue
        if job.attempt < job.max_attempts:
            error = JobError(code="LEASE_EXPIRED", message="the worker stopped mid-job; retrying", retryable=True)
            requeued = repo.requeue_expired(job, now=now, error=error)
            if requeued is not None:
                enqueue(requeued, queue=queue, repo=repo, clock=clock)
                report.requeued.append(job.job_id)
                logger.info("recovery: lease expired, job requeued", extra={"job_id": job.job_id})
        else:
            cause = RecoveredFromRestart(f"the worker stopped mid-job on its last attempt ({job.attempt})")
            if repo.fail_expired(job, now=now, error=JobError(**cause.to_dict())) is not None:
                report.failed.append(job.job_id)
                logger.info("recovery: lease expired, no attempts left", extra={"job_id": job.job_id})


def _unclaimed(repo: JobRepository, queue: JobQueue, settings: Settings, clock: Clock, report: RecoveryReport) -> None:
    now = clock.now()
    cutoff = iso(now - settings.queued_stale_seconds)
    for job in repo.by_status(JobStatus.QUEUED, updated_before=cutoff):
        if job.message_sent_at is not None and job.message_sent_at >= cutoff:
            continue
        report.resent.append(job.job_id)
        if not report.dry_run:
            enqueue(job, queue=queue, repo=repo, clock=clock)
            logger.info("recovery: queued job never claimed, message sent again", extra={"job_id": job.job_id})


def _dead_letters(repo: JobRepository, dlq: JobQueue, clock: Clock, report: RecoveryReport) -> None:
    if report.dry_run:
        return
    for _ in range(_DLQ_BATCHES):
        messages = dlq.receive(max_messages=10)
        if not messages:
            return
        for message in messages:
            _dead_letter(message, repo, clock, report)
            dlq.delete(message["ReceiptHandle"])


def _dead_letter(message: dict[str, Any], repo: JobRepository, clock: Clock, report: RecoveryReport) -> None:
    raw = str(message.get("Body", ""))
    try:
        body = parse_body(raw)
        job_id: str | None = body.job_id or job_id_for_message(message["MessageId"])
    except (ValueError, ValidationError):
        job_id = _named_job(raw)
    if job_id is None:
        report.dropped_messages += 1
        logger.error(
            "recovery: dead-lettered message names no job; drained",
            extra={"message_id": message.get("MessageId"), "body": raw[:4096]},
        )
        return
    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "too many")
    cause = DeadLettered(f"the job's message was received {receives} times without success")
    if repo.fail_dead_lettered(job_id, now=clock.now(), error=JobError(**cause.to_dict())) is not None:
        report.dead_lettered.append(job_id)
        logger.info("recovery: job dead-lettered", extra={"job_id": job_id})
    else:
        logger.info("recovery: dead-lettered message's job already settled", extra={"job_id": job_id})


def _named_job(raw: str) -> str | None:
    """The ``jobId`` a message names even when the rest of it is unusable (a poison message)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    job_id = data.get("jobId") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and 0 < len(job_id) <= 128 else None


def _incomplete_uploads(
    store: S3MediaStore, repo: JobRepository, settings: Settings, clock: Clock, report: RecoveryReport
) -> None:
    """Abort uploads older than the grace period, unless the job they belong to is still running."""
    cutoff = clock.now() - settings.recovery_grace_seconds
    for upload in store.incomplete_uploads():
        if upload.initiated >= cutoff:
            continue
        owner = _JOB_ID_IN_KEY.search(upload.key.rsplit("/", 1)[-1])
        if owner is not None:
            job = repo.get(owner.group(0))
            if job is not None and job.status == JobStatus.RUNNING:
                continue
        report.aborted_uploads.append(upload.key)
        if not report.dry_run:
            store.abort_upload(upload)
            logger.info("recovery: incomplete upload aborted", extra={"key": upload.key})


def _orphaned_objects(
    store: S3MediaStore, repo: JobRepository, settings: Settings, clock: Clock, report: RecoveryReport
) -> None:
    """Remove objects older than the grace period that no completed job lists (a failed or cancelled job's,
    a variant an earlier attempt wrote under another extension). Jobs still queued or running keep theirs;
    objects whose key names no job are not ours to judge."""
    cutoff = clock.now() - settings.recovery_grace_seconds
    jobs: dict[str, Job | None] = {}
    for obj in store.objects():
        if obj.modified >= cutoff:
            continue
        named = _JOB_ID_IN_KEY.search(obj.key.rsplit("/", 1)[-1])
        if named is None:
            continue
        job_id = named.group(0)
        if job_id not in jobs:
            jobs[job_id] = repo.get(job_id)
        job = jobs[job_id]
        if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            continue
        if job is not None and job.status == JobStatus.COMPLETED and obj.key in _keys_of(job):
            continue
        report.removed_objects.append(obj.key)
        if not report.dry_run:
            store.delete(obj.key)
            logger.info("recovery: object of no completed job removed", extra={"job_id": job_id, "key": obj.key})


def _keys_of(job: Job) -> set[str]:
    keys = {m.key for m in job.media} | {m.thumbnail_key for m in job.media if m.thumbnail_key}
    return keys | ({job.info_key} if job.info_key else set())
