"""The worker's job: claim -> extract -> pick the best -> stream into S3 -> thumbnail -> info.json -> complete.

Every write after the claim is fenced by the lease; retryable failures give the job back to the
queue with backoff, permanent ones end it ``failed`` with a stable code.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from mediavault.clock import Clock, iso
from mediavault.config import Settings
from mediavault.errors import (
    AttemptsExhausted,
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
from mediavault.media.sniff import Sniffed
from mediavault.observability import logger, metrics
from mediavault.platforms import Platforms
from mediavault.platforms.base import PostInfo
from mediavault.queue import JobMessage, JobQueue, parse_body
from mediavault.safety.urls import normalize_url
from mediavault.storage import MediaStore
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader, Stored
from mediavault.worker.extract import BrowserBody, JsonParser, PageResult
from mediavault.worker.fetch import HlsStore, ItemFetch
from mediavault.worker.sources import PostSource

_T = TypeVar("_T")
_PROGRESS_EVERY_SECONDS = 5.0


class Extractor(Protocol):
    def extract(
        self, url: str, *, cookies: Sequence[LoginCookie] = (), parse_json: JsonParser | None = None
    ) -> PageResult: ...

    def prewarm(self) -> None: ...

    def fetch(
        self,
        page_url: str,
        media_url: str,
        consume: Callable[[BrowserBody], _T],
        *,
        cookies: Sequence[LoginCookie] = (),
        session_cookies: Sequence[dict[str, Any]] = (),
    ) -> _T: ...


@dataclass
class WorkerDeps:
    repo: JobRepository
    store: MediaStore
    queue: JobQueue
    extractor: Extractor
    downloader: Downloader
    settings: Settings
    clock: Clock
    http: httpx.Client
    platforms: Platforms = field(default_factory=Platforms)
    hls: HlsStore | None = None  # mediavault.worker.hls.HlsDownloader
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
            _create_from_message(job_id, message, deps)
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


def _create_from_message(job_id: str, message: JobMessage, deps: WorkerDeps) -> None:
    """A message without a job id is a job too: create its record once (redeliveries find it),
    in the message's tenant or, when it names none, the deployment's default tenant."""
    settings, now = deps.settings, deps.clock.now()
    raw_url = message.url
    common: dict[str, Any] = {
        "job_id": job_id, "tenant_id": message.tenant_id or settings.default_tenant, "now": now,
        "max_attempts": settings.max_attempts, "correlation_id": message.correlation_id,
        "include_quoted": message.include_quoted,
    }  # fmt: skip
    try:
        url = normalize_url(raw_url)
    except MediaVaultError as exc:
        # Keep the record, so the sender can see why nothing happened.
        job = new_job(url=raw_url[:2048], status=JobStatus.FAILED, error=JobError(**exc.to_dict()), **common)
        deps.repo.create(job)
        return
    if deps.repo.create(new_job(url=url, post=deps.platforms.recognise(url), **common)):
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
    ref = deps.platforms.recognise(job.url)
    source = PostSource(
        ref, extractor=deps.extractor, client=deps.http, login_cookies=deps.cookies.for_tenant(job.tenant_id)
    )
    info = source.extract()
    include_quoted = job.include_quoted or deps.settings.include_quoted
    items = media_items(info.candidates, include_quoted=include_quoted)
    page = source.page_result
    logger.info("post extracted", extra={"platform": info.platform, "items": len(items),
                                         "blocked": len(page.blocked) if page else 0})  # fmt: skip
    if not items:
        raise NoMedia(f"no video, GIF or photo found at {job.url}")
    repo.progress(job.job_id, fence, pct=20, now=clock.now())

    account = _account(info, job.url)
    several = len(items) > 1
    media: list[MediaItem] = []
    progress = _ProgressReporter(job, fence, deps, start=20, span=75 // len(items) or 1)
    for position, (index, candidates) in enumerate(items.items(), start=1):
        number = position if several else None
        fetch = ItemFetch(
            source=source, downloader=deps.downloader, hls=deps.hls, extractor=deps.extractor,
            key_for=functools.partial(_media_key, job, account.slug, number),
            min_bytes=deps.settings.min_media_bytes, deadline=deadline, progress=progress, clock=clock.now,
            include_quoted=include_quoted,
        )  # fmt: skip
        fetched = fetch.run(index, candidates)
        chosen, stored = fetched.candidate, fetched.stored
        item = MediaItem(
            kind="gif" if chosen.kind == "gif" and stored.kind == "video" else stored.kind,
            key=stored.key,
            content_type=stored.content_type,
            bytes=stored.bytes,
            sha256=stored.sha256,
            width=fetched.width,
            height=fetched.height,
            bitrate=fetched.bitrate,
            duration_ms=round(chosen.duration * 1000) if chosen.duration else None,
            source_url=stored.source_url,
            quoted=chosen.quoted or None,
            strategy=fetched.strategy,
        )
        poster = chosen.poster or (info.thumbnail_url if not several else None)
        if poster and poster != stored.source_url:
            thumb = _thumbnail(job, poster, account.slug, number, deps, deadline)
            if thumb is not None:
                item.thumbnail_key = thumb.key
        media.append(item)
        progress.next_item()

    deadline.check("writing info.json")
    key = info_key(job.tenant_id, account.slug, job.job_id)
    deps.store.put_json(
        key,
        _info_document(job, info, account, media, archived_at=clock.now()),
        # An earlier attempt's different document is replaced only while this worker still holds the job.
        may_replace=lambda: repo.renew(job.job_id, fence, now=clock.now(), lease_seconds=deps.settings.lease_seconds),
    )
    return repo.complete(
        job.job_id, fence, now=clock.now(), platform=info.platform, account=account, media=media, info_key=key
    )


def _media_key(job: Job, slug: str, number: int | None, sniffed: Sniffed) -> str:
    return media_key(job.tenant_id, slug, job.job_id, sniffed.ext, index=number)


def media_items(candidates: list[Candidate], *, include_quoted: bool) -> dict[int, list[Candidate]]:
    """The post's media items (item index -> its variants), in order; quoted-post media only on request.
    An item is kept when it has something downloadable (a file, or an HLS rendition)."""
    grouped: dict[int, list[Candidate]] = {}
    for candidate in candidates:
        if candidate.quoted and not include_quoted:
            continue
        grouped.setdefault(candidate.item, []).append(candidate)
    return {
        index: variants
        for index, variants in sorted(grouped.items())
        if rank(variants) or any(c.is_streaming_manifest for c in variants)
    }


class _ProgressReporter:
    """Moves progress with the bytes (each item its share of 20..95), at most every few seconds,
    renewing the lease as it goes."""

    def __init__(self, job: Job, fence: Fence, deps: WorkerDeps, *, start: int, span: int) -> None:
        self._job, self._fence, self._deps = job, fence, deps
        self._last = time.monotonic()
        self._base, self._span = start, span
        self._pct = start

    def next_item(self) -> None:
        self._base += self._span

    def __call__(self, done: int, total: int | None) -> None:
        if not total or time.monotonic() - self._last < _PROGRESS_EVERY_SECONDS:
            return
        pct = min(95, self._base + int(self._span * min(done, total) / total))
        if pct <= self._pct:
            return
        now = self._deps.clock.now()
        self._deps.repo.progress(self._job.job_id, self._fence, pct=pct, now=now)
        self._deps.repo.renew(self._job.job_id, self._fence, now=now, lease_seconds=self._deps.settings.lease_seconds)
        self._pct, self._last = pct, time.monotonic()


def _thumbnail(
    job: Job, url: str, slug: str, number: int | None, deps: WorkerDeps, deadline: Deadline
) -> Stored | None:
    """The item's poster / the post's preview image; a missing thumbnail never fails the job."""
    try:
        deadline.check("thumbnail")
        return deps.downloader.store(
            url,
            key_for=lambda sniffed: thumbnail_key(job.tenant_id, slug, job.job_id, sniffed.ext, index=number),
            kinds=frozenset({"photo"}),
            min_bytes=1,
            deadline=deadline,
            headers={"referer": job.url},
        )
    except MediaVaultError as exc:
        if exc.code == "DEADLINE_REACHED":
            raise
        logger.warning("thumbnail skipped", extra={"url": url.split("?", 1)[0], "error": exc.message})
        return None


def _account(info: PostInfo, url: str) -> Account:
    host = (urlsplit(url).hostname or "unknown").removeprefix("www.")
    owner = info.author_handle or info.author_name or info.site_name or host
    return Account(
        platform=info.platform, handle=info.author_handle, display_name=info.author_name,
        author_id=info.author_id, slug=slugify(info.platform, owner),
    )  # fmt: skip


def _info_document(
    job: Job, info: PostInfo, account: Account, media: list[MediaItem], *, archived_at: float
) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "sourceUrl": job.url,
        "platform": info.platform,
        "postId": info.post_id,
        "postUrl": info.url,
        "title": info.title,
        "caption": info.caption,
        "postedAt": info.posted_at,
        "author": {
            "handle": account.handle, "displayName": account.display_name, "id": info.author_id,
            "slug": account.slug,
        },
        "counts": info.counts,
        "sensitive": info.sensitive,
        "quotedPostId": info.quoted_post_id,
        "siteName": info.site_name,
        "archivedAt": iso(archived_at),
        "media": [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in media],
    }  # fmt: skip
