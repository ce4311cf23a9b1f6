"""Job services: submit, read, list, retry, cancel. No HTTP, no event shapes, no boto3 here:
collaborators come in as arguments so tests can pass in-memory fakes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from mediavault.clock import Clock, iso
from mediavault.errors import JobConflict, JobNotFound, StorageUnavailable
from mediavault.jobs.model import Job, JobError, JobStatus
from mediavault.jobs.repository import JobRepository
from mediavault.observability import logger, metrics
from mediavault.platforms import GENERIC, Platforms, PostRef
from mediavault.queue import JobMessage, JobQueue
from mediavault.safety.egress import EgressPolicy
from mediavault.safety.urls import normalize_url

_JOB_NAMESPACE = uuid.UUID("6f1b8a52-3c1e-4c55-9a57-64a7f7c0b8a1")


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    created: bool  # False: an existing job for the same post was returned


def dedupe_key(tenant_id: str, url: str, post: PostRef | None = None) -> str:
    """What makes two submissions the same job: the tenant and the post (platform and post id, so
    ``x.com/a/status/1`` and ``twitter.com/i/status/1`` are one post), or the canonical URL where the
    URL does not name a post a platform module knows."""
    if post is not None and post.archive_key:
        return f"{tenant_id}|post|{post.archive_key}"
    return f"{tenant_id}|{url}"


def job_id_for(key: str) -> str:
    return str(uuid.uuid5(_JOB_NAMESPACE, key))


def job_id_for_message(message_id: str) -> str:
    """The job of an SQS message that named none: the same message always maps to the same job."""
    return str(uuid.uuid5(_JOB_NAMESPACE, f"sqs-message|{message_id}"))


def new_job(
    *, job_id: str, url: str, tenant_id: str, now: float, max_attempts: int, correlation_id: str | None,
    dedupe: str | None = None, status: JobStatus = JobStatus.QUEUED, error: JobError | None = None,
    post: PostRef | None = None, include_quoted: bool = False,
) -> Job:  # fmt: skip
    stamp = iso(now)
    return Job(
        job_id=job_id,
        tenant_id=tenant_id,
        url=url,
        dedupe_key=dedupe,
        status=status,
        max_attempts=max_attempts,
        created_at=stamp,
        updated_at=stamp,
        platform=post.platform if post is not None else GENERIC,
        post_key=post.archive_key if post is not None else None,
        correlation_id=correlation_id,
        error=error,
        include_quoted=include_quoted,
    )


def submit_job(
    raw_url: str,
    *,
    force: bool,
    tenant_id: str,
    correlation_id: str | None,
    repo: JobRepository,
    queue: JobQueue,
    policy: EgressPolicy,
    clock: Clock,
    max_attempts: int,
    platforms: Platforms | None = None,
    include_quoted: bool = False,
) -> Submitted:
    """Validate, dedupe, store and enqueue a job.

    The same post submitted again (by any URL naming the same platform and post id, or the same URL)
    returns the existing job (queued, running or completed) unless ``force``; a failed or cancelled
    one is queued again. The record is stored before the message is
    sent: if sending fails the job stays ``queued`` and the recovery schedule sends it.
    """
    url = normalize_url(raw_url)
    policy.check_literal(url)
    now = clock.now()
    post = (platforms or Platforms()).recognise(url)
    key = dedupe_key(tenant_id, url, post)
    job_id = str(uuid.uuid4()) if force else job_id_for(key)
    job = new_job(
        job_id=job_id, url=url, tenant_id=tenant_id, now=now, max_attempts=max_attempts,
        correlation_id=correlation_id, dedupe=key, post=post, include_quoted=include_quoted,
    )  # fmt: skip
    if not repo.create(job):
        existing = repo.get(job_id)
        if existing is None:  # deleted between the two calls
            raise StorageUnavailable("job vanished while it was being submitted; try again")
        if existing.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            logger.info("duplicate submission", extra={"job_id": job_id, "status": existing.status.value})
            return Submitted(existing, created=False)
        reopened = repo.reopen(job_id, now=now)
        if reopened is None:  # someone else reopened it first: theirs is the job
            return Submitted(repo.get(job_id) or existing, created=False)
        job = reopened
    enqueue(job, queue=queue, repo=repo, clock=clock)
    metrics.add_metric(name="JobsSubmitted", unit="Count", value=1)
    return Submitted(job, created=True)


def enqueue(job: Job, *, queue: JobQueue, repo: JobRepository, clock: Clock) -> None:
    """Send the job's message. A failure is logged, not raised: the job is durable and the
    recovery schedule sends messages for queued jobs that no worker claimed."""
    message = JobMessage(
        url=job.url, jobId=job.job_id, tenantId=job.tenant_id, correlationId=job.correlation_id,
        includeQuoted=job.include_quoted,
    )  # fmt: skip
    try:
        queue.send(message)
        repo.mark_message_sent(job.job_id, now=clock.now())
    except StorageUnavailable as exc:
        logger.error("job stored but its message was not sent; recovery will send it",
                     extra={"job_id": job.job_id, "error": str(exc)})  # fmt: skip
        metrics.add_metric(name="EnqueueFailures", unit="Count", value=1)


def get_job(job_id: str, *, tenant_id: str, repo: JobRepository) -> Job:
    """The tenant's job. Another tenant's job is "not found" too, never "forbidden": an answer that
    differed would tell a caller which job ids exist elsewhere. Every service below reads through here."""
    job = repo.get(job_id)
    if job is None or job.tenant_id != tenant_id:
        raise JobNotFound(f"job {job_id} does not exist")
    return job


def list_jobs(
    *, tenant_id: str, repo: JobRepository, limit: int, cursor: dict[str, Any] | None
) -> tuple[list[Job], dict[str, Any] | None]:
    return repo.by_tenant(tenant_id, limit=limit, cursor=cursor)


def retry_job(job_id: str, *, tenant_id: str, repo: JobRepository, queue: JobQueue, clock: Clock) -> Job:
    """``failed | cancelled -> queued`` with a fresh attempt budget."""
    job = get_job(job_id, tenant_id=tenant_id, repo=repo)
    reopened = repo.reopen(job_id, now=clock.now())
    if reopened is None:
        raise JobConflict(f"job {job_id} is {job.status.value}; only failed or cancelled jobs can be retried")
    enqueue(reopened, queue=queue, repo=repo, clock=clock)
    return reopened


def cancel_job(job_id: str, *, tenant_id: str, repo: JobRepository, clock: Clock) -> Job:
    """``queued -> cancelled``; a worker that receives its message later leaves it alone."""
    job = get_job(job_id, tenant_id=tenant_id, repo=repo)
    cancelled = repo.cancel(job_id, now=clock.now())
    if cancelled is None:
        raise JobConflict(f"job {job_id} is {job.status.value}; only queued jobs can be cancelled")
    return cancelled


def media_links(job: Job, *, store: Any, expires_in: int) -> dict[str, Any]:
    """Presigned GET links (at most an hour) for a completed job's objects."""
    if job.status != JobStatus.COMPLETED:
        raise JobConflict(f"job {job.job_id} is {job.status.value}; media links exist once it is completed")
    expires_in = min(expires_in, 3600)
    items = []
    for item in job.media:
        entry = {"key": item.key, "url": store.presign(item.key, expires_in=expires_in)}
        if item.thumbnail_key:
            entry["thumbnailUrl"] = store.presign(item.thumbnail_key, expires_in=expires_in)
        items.append(entry)
    info = store.presign(job.info_key, expires_in=expires_in) if job.info_key else None
    return {"jobId": job.job_id, "expiresIn": expires_in, "media": items, "infoUrl": info}
