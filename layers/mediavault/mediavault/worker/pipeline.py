"""The worker's job: claim -> extract -> pick the best -> stream into S3 -> thumbnail -> info.json -> complete.

Every write after the claim is fenced by the lease; retryable failures give the job back to the
queue with backoff, permanent ones end it ``failed`` with a stable code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import ValidationError

from mediavault.clock import Clock, iso
from mediavault.config import Settings
from mediavault.errors import (
    AttemptsExhausted,
    InvalidMedia,
    LeaseLost,
    MalformedMessage,
    MediaVaultError,
    NoMedia,
    as_media_vault_error,
)
from mediavault.jobs.model import Account, Fence, Job, JobError, JobStatus, MediaItem
from mediavault.jobs.repository import JobRepository
from mediavault.jobs.service import job_id_for_message, new_job
from mediavault.logins import CookieSource, LoginCookie, NoCookies
from mediavault.media.candidates import Candidate, rank
from mediavault.media.keys import info_key, media_key, slugify, thumbnail_key
from mediavault.observability import logger, metrics
from mediavault.platforms.base import PostInfo
from mediavault.queue import JobQueue, parse_body
from mediavault.safety.urls import normalize_url
from mediavault.storage import MediaStore
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader, Stored
from mediavault.worker.extract import PageResult

_MAX_CANDIDATES = 4
_PROGRESS_EVERY_SECONDS = 5.0


class Extractor(Protocol):
    def extract(self, url: str, *, cookies: Sequence[LoginCookie] = ()) -> PageResult: ...


@dataclass
class WorkerDeps:
    repo: JobRepository
    store: MediaStore
    queue: JobQueue
    extractor: Extractor
    downloader: Downloader
    settings: Settings
    clock: Clock
    cookies: CookieSource = field(default_factory=NoCookies)


class RetryLater(Exception):
    """The record failed with a retryable cause; SQS will deliver it again after the backoff."""


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: str | None
    status: str


def process_message(
    *, message_id: str, body: str, receipt_handle: str | None, owner: str, deps: WorkerDeps, deadline: Deadline
) -> Outcome:
    """Handle one queue message. Returns normally when the record may be deleted; raises when SQS
    must deliver it again (retryable failure, or a malformed body that will end in the DLQ)."""
    try:
        message = parse_body(body)
    except (ValueError, ValidationError) as exc:
        logger.error("malformed job message", extra={"message_id": message_id, "error": str(exc)[:500]})
        metrics.add_metric(name="MalformedMessages", unit="Count", value=1)
        # It can never succeed: come back soon, so it reaches the dead-letter queue after
        # maxReceiveCount receives instead of waiting out the long visibility timeout each time.
        _delay_quietly(deps, receipt_handle, deps.settings.retry_base_seconds)
        raise MalformedMessage(f"message {message_id} is not a job message") from exc

    settings, repo, now = deps.settings, deps.repo, deps.clock.now()
    job_id = message.job_id or job_id_for_message(message_id)
    # Thread-safe keys: the local stack runs several workers in one process.
    logger.thread_safe_remove_keys(["tenant_id"])  # the previous job's, until this one is claimed
    logger.thread_safe_append_keys(job_id=job_id, correlation_id=message.correlation_id or message_id)

    try:
        if message.job_id is None:
            _create_from_message(job_id, message.url, message.tenant_id, message.correlation_id, deps)
        job = repo.claim(job_id, owner=owner, now=now, lease_seconds=settings.lease_seconds)
        if job is None:
            return _not_claimed(job_id, deps)
    except MediaVaultError as exc:
        if not exc.retryable:
            raise
        # The table could not be reached or throttled us before the job was ours: the job is unchanged,
        # so the message comes back after a short backoff (not the queue's long visibility timeout).
        logger.warning("job not claimed: storage unavailable", extra={"code": exc.code, "error": exc.message})
        _delay_quietly(deps, receipt_handle, settings.retry_base_seconds)
        raise RetryLater(exc.code) from exc

    # The record's tenant is the job's tenant (a message naming a job cannot move it elsewhere).
    logger.thread_safe_append_keys(tenant_id=job.tenant_id)
    fence = job.fence()
    logger.info("job claimed", extra={"attempt": job.attempt, "url": job.url})
    started = time.monotonic()
    try:
        done = archive(job, fence, deps=deps, deadline=deadline)
    except LeaseLost:
        logger.warning("lease lost: another worker owns the job now; leaving it alone")
        metrics.add_metric(name="LeasesLost", unit="Count", value=1)
        return Outcome(job_id, "lease-lost")
    except Exception as exc:
        return _on_failure(job, fence, as_media_vault_error(exc), receipt_handle, deps)
    metrics.add_metric(name="JobsCompleted", unit="Count", value=1)
    metrics.add_metric(name="BytesStored", unit="Bytes", value=sum(m.bytes for m in done.media))
    metrics.add_metric(name="JobSeconds", unit="Seconds", value=round(time.monotonic() - started, 3))
    logger.info("job completed", extra={"media": [m.key for m in done.media]})
    return Outcome(job_id, JobStatus.COMPLETED.value)


def _create_from_message(
    job_id: str, raw_url: str, tenant_id: str | None, correlation_id: str | None, deps: WorkerDeps
) -> None:
    """A message without a job id is a job too: create its record once (redeliveries find it),
    in the message's tenant or, when it names none, the deployment's default tenant."""
    settings, now = deps.settings, deps.clock.now()
    common: dict[str, Any] = {
        "job_id": job_id, "tenant_id": tenant_id or settings.default_tenant, "now": now,
        "max_attempts": settings.max_attempts, "correlation_id": correlation_id,
    }  # fmt: skip
    try:
        url = normalize_url(raw_url)
    except MediaVaultError as exc:
        # Keep the record, so the sender can see why nothing happened.
        job = new_job(url=raw_url[:2048], status=JobStatus.FAILED, error=JobError(**exc.to_dict()), **common)
        deps.repo.create(job)
        return
    if deps.repo.create(new_job(url=url, **common)):
        logger.info("job created from a queue message")


def _not_claimed(job_id: str, deps: WorkerDeps) -> Outcome:
    job = deps.repo.get(job_id)
    if job is None:
        logger.warning("message names a job that does not exist; dropping it")
        return Outcome(job_id, "unknown")
    if job.status == JobStatus.QUEUED and job.attempt >= job.max_attempts:
        cause = job.error.code if job.error else AttemptsExhausted.code
        error = JobError(code=cause, message=f"no attempts left ({job.attempt}/{job.max_attempts})", retryable=False)
        deps.repo.fail_unclaimed(job_id, now=deps.clock.now(), error=error)
        return Outcome(job_id, JobStatus.FAILED.value)
    # Completed, failed, cancelled, or running under a live lease: this delivery is a duplicate.
    logger.info("job not claimable; duplicate delivery acknowledged", extra={"status": job.status.value})
    return Outcome(job_id, job.status.value)


def _on_failure(
    job: Job, fence: Fence, error: MediaVaultError, receipt_handle: str | None, deps: WorkerDeps
) -> Outcome:
    now = deps.clock.now()
    record = JobError(code=error.code, message=error.message[:1000], retryable=error.retryable)
    metrics.add_metric(name="JobFailures", unit="Count", value=1)
    try:
        if not error.retryable or job.attempt >= job.max_attempts:
            final = record.model_copy(update={"retryable": False})
            deps.repo.fail(job.job_id, fence, error=final, now=now)
            logger.warning("job failed", extra={"code": error.code, "error": error.message, "attempt": job.attempt})
            metrics.add_metric(name="JobsFailed", unit="Count", value=1)
            return Outcome(job.job_id, JobStatus.FAILED.value)
        deps.repo.release(job.job_id, fence, error=record, now=now)
    except LeaseLost:
        logger.warning("lease lost while recording the failure; the new owner decides")
        return Outcome(job.job_id, "lease-lost")
    delay = backoff_seconds(job.attempt, deps.settings.retry_base_seconds, deps.settings.retry_max_seconds)
    logger.warning(
        "job released for another attempt",
        extra={"code": error.code, "error": error.message, "attempt": job.attempt, "retry_in_s": delay},
    )
    _delay_quietly(deps, receipt_handle, delay)
    raise RetryLater(error.code) from error


def _delay_quietly(deps: WorkerDeps, receipt_handle: str | None, seconds: int) -> None:
    if not receipt_handle:
        return
    try:
        deps.queue.delay(receipt_handle, seconds)
    except MediaVaultError:
        logger.warning("could not set the retry delay; the queue's visibility timeout applies")


def backoff_seconds(attempt: int, base: int, cap: int) -> int:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)``, capped, then 50-100% of it."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return int(ceiling * (0.5 + random.random() / 2))


def archive(job: Job, fence: Fence, *, deps: WorkerDeps, deadline: Deadline) -> Job:
    """Run the pipeline for a claimed job and complete it (raises on any failure)."""
    repo, clock = deps.repo, deps.clock
    deadline.check("extraction")
    page = deps.extractor.extract(job.url, cookies=deps.cookies.for_tenant(job.tenant_id))
    info = page.info
    ranked = rank(info.candidates)
    logger.info("post extracted", extra={"candidates": len(ranked), "blocked": len(page.blocked)})
    if not ranked:
        raise NoMedia(f"no video, GIF or photo found at {job.url}")
    repo.progress(job.job_id, fence, pct=50, now=clock.now())

    account = _account(info.platform, info.author_handle, info.author_name, info.site_name, job.url)
    headers = _browser_headers(page, job.url)
    stored = _download_best(job, fence, ranked, account.slug, headers, deps, deadline)
    chosen = _candidate_of(ranked, stored)
    item = MediaItem(
        kind="gif" if chosen.kind == "gif" else stored.kind,
        key=stored.key,
        content_type=stored.content_type,
        bytes=stored.bytes,
        sha256=stored.sha256,
        width=chosen.width,
        height=chosen.height,
        bitrate=chosen.bitrate,
        source_url=stored.source_url,
    )
    thumb = _thumbnail(job, chosen.poster or info.thumbnail_url, account.slug, headers, deps, deadline)
    if thumb is not None:
        item.thumbnail_key = thumb.key

    deadline.check("writing info.json")
    key = info_key(job.tenant_id, account.slug, job.job_id)
    deps.store.put_json(key, _info_document(job, info, account, [item], archived_at=clock.now()))
    return repo.complete(
        job.job_id, fence, now=clock.now(), platform=info.platform, account=account, media=[item], info_key=key
    )


def _candidate_of(ranked: list[Candidate], stored: Stored) -> Candidate:
    return next((c for c in ranked if c.url == stored.source_url), ranked[0])


def _download_best(
    job: Job, fence: Fence, ranked: list[Candidate], slug: str, headers: dict[str, str], deps: WorkerDeps,
    deadline: Deadline,
) -> Stored:  # fmt: skip
    """Try the best candidates in order until one is valid media."""
    last: MediaVaultError | None = None
    progress = _ProgressReporter(job, fence, deps)
    for candidate in ranked[:_MAX_CANDIDATES]:
        deadline.check("download")
        try:
            return deps.downloader.store(
                candidate.url,
                key_for=lambda sniffed: media_key(job.tenant_id, slug, job.job_id, sniffed.ext),
                kinds=frozenset({"video", "gif", "photo"}),
                min_bytes=deps.settings.min_media_bytes,
                deadline=deadline,
                headers=headers,
                progress=progress,
            )
        except InvalidMedia as exc:
            logger.warning("candidate rejected", extra={"url": candidate.url, "source": candidate.source,
                                                         "error": exc.message})  # fmt: skip
            last = exc
    assert last is not None
    raise last


class _ProgressReporter:
    """Moves progress from 50 to 95 with the bytes, at most every few seconds, renewing the lease."""

    def __init__(self, job: Job, fence: Fence, deps: WorkerDeps) -> None:
        self._job, self._fence, self._deps = job, fence, deps
        self._last = time.monotonic()
        self._pct = 50

    def __call__(self, done: int, total: int | None) -> None:
        if not total or time.monotonic() - self._last < _PROGRESS_EVERY_SECONDS:
            return
        pct = 50 + int(45 * min(done, total) / total)
        if pct <= self._pct:
            return
        now = self._deps.clock.now()
        self._deps.repo.progress(self._job.job_id, self._fence, pct=pct, now=now)
        self._deps.repo.renew(self._job.job_id, self._fence, now=now, lease_seconds=self._deps.settings.lease_seconds)
        self._pct, self._last = pct, time.monotonic()


def _thumbnail(
    job: Job, url: str | None, slug: str, headers: dict[str, str], deps: WorkerDeps, deadline: Deadline
) -> Stored | None:
    """The poster / og:image, if there is one; a missing thumbnail never fails the job."""
    if not url:
        return None
    try:
        deadline.check("thumbnail")
        return deps.downloader.store(
            url,
            key_for=lambda sniffed: thumbnail_key(job.tenant_id, slug, job.job_id, sniffed.ext),
            kinds=frozenset({"photo"}),
            min_bytes=1,
            deadline=deadline,
            headers=headers,
        )
    except MediaVaultError as exc:
        if exc.code == "DEADLINE_REACHED":
            raise
        logger.warning("thumbnail skipped", extra={"url": url, "error": exc.message})
        return None


def _account(platform: str, handle: str | None, name: str | None, site: str | None, url: str) -> Account:
    host = (urlsplit(url).hostname or "unknown").removeprefix("www.")
    owner = handle or name or site or host
    return Account(platform=platform, handle=handle, display_name=name, slug=slugify(platform, owner))


def _browser_headers(page: PageResult, url: str) -> dict[str, str]:
    """Downloads look like the page's own requests: its user agent, referer and cookies for the host."""
    headers = {"referer": url}
    if page.user_agent:
        headers["user-agent"] = page.user_agent
    host = urlsplit(url).hostname or ""
    cookies = [c for c in page.cookies if host.endswith(str(c.get("domain", "")).lstrip("."))]
    if cookies:
        headers["cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    return headers


def _info_document(
    job: Job, info: PostInfo, account: Account, media: list[MediaItem], *, archived_at: float
) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "sourceUrl": job.url,
        "platform": info.platform,
        "postId": info.post_id,
        "title": info.title,
        "caption": info.caption,
        "postedAt": info.posted_at,
        "author": {"handle": account.handle, "displayName": account.display_name, "slug": account.slug},
        "siteName": info.site_name,
        "archivedAt": iso(archived_at),
        "media": [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in media],
    }
