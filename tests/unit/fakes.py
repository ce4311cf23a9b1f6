"""In-memory fakes of the worker's and the services' collaborators (no boto3, no sockets).

``InMemoryJobRepository`` follows the semantics of ``DynamoJobRepository``'s conditional writes: each
method applies its change only when the same condition the DynamoDB expression states holds. Jobs are
stored as items (``Job.to_item``) and read back with ``Job.from_item``, as the real table does.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mediavault.clock import iso
from mediavault.errors import InvalidMedia, LeaseLost, StorageUnavailable
from mediavault.jobs.model import Account, Fence, Job, JobError, JobStatus, MediaItem
from mediavault.platforms.base import PostInfo
from mediavault.queue import JobMessage
from mediavault.storage import ObjectExists, ObjectInfo, same_document
from mediavault.worker.extract import PageResult


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class InMemoryJobRepository:
    """The ``JobRepository`` protocol over a dict, with the conditions of the DynamoDB implementation."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []

    # --- helpers ------------------------------------------------------------------------------

    def _load(self, job_id: str) -> Job | None:
        item = self.items.get(job_id)
        return Job.from_item(item) if item is not None else None

    def _store(self, job: Job, op: str) -> Job:
        self.items[job.job_id] = job.to_item()
        self.writes.append(op)
        return Job.from_item(self.items[job.job_id])

    def _update(self, job_id: str, condition: Callable[[Job], bool], op: str, **changes: Any) -> Job | None:
        job = self._load(job_id)
        if job is None or not condition(job):
            return None
        return self._store(job.model_copy(update=changes), op)

    def _fenced(self, job_id: str, fence: Fence, op: str, **changes: Any) -> Job:
        def held(job: Job) -> bool:
            return job.status == JobStatus.RUNNING and job.lease_owner == fence.owner and job.attempt == fence.attempt

        job = self._update(job_id, held, op, **changes)
        if job is None:
            raise LeaseLost(f"job {job_id} is no longer held by {fence.owner} (attempt {fence.attempt})")
        return job

    def put(self, job: Job) -> None:
        """Test setup: store a job as it is, unconditionally."""
        self.items[job.job_id] = job.to_item()

    # --- creation and reads -------------------------------------------------------------------

    def create(self, job: Job) -> bool:
        if job.job_id in self.items:
            return False
        self._store(job, "create")
        return True

    def get(self, job_id: str) -> Job | None:
        return self._load(job_id)

    # --- the worker's writes ------------------------------------------------------------------

    def claim(self, job_id: str, *, owner: str, now: float, lease_seconds: int) -> Job | None:
        def claimable(job: Job) -> bool:
            expired = job.status == JobStatus.RUNNING and (job.lease_expires_at or 0) < int(now)
            return job.attempt < job.max_attempts and (job.status == JobStatus.QUEUED or expired)

        job = self._load(job_id)
        started = (job.started_at if job else None) or iso(now)
        return self._update(
            job_id, claimable, "claim",
            status=JobStatus.RUNNING, attempt=(job.attempt + 1) if job else 1, lease_owner=owner,
            lease_expires_at=int(now) + lease_seconds, started_at=started, updated_at=iso(now),
            progress_pct=0, error=None,
        )  # fmt: skip

    def renew(self, job_id: str, fence: Fence, *, now: float, lease_seconds: int) -> None:
        self._fenced(job_id, fence, "renew", lease_expires_at=int(now) + lease_seconds)

    def progress(self, job_id: str, fence: Fence, *, pct: int, now: float) -> None:
        self._fenced(job_id, fence, "progress", progress_pct=pct, updated_at=iso(now))

    def complete(
        self, job_id: str, fence: Fence, *, now: float, platform: str, account: Account,
        media: list[MediaItem], info_key: str,
    ) -> Job:  # fmt: skip
        return self._fenced(
            job_id, fence, "complete",
            status=JobStatus.COMPLETED, progress_pct=100, completed_at=iso(now), updated_at=iso(now),
            platform=platform, account=account, media=media, info_key=info_key,
            lease_owner=None, lease_expires_at=None, error=None,
        )  # fmt: skip

    def fail(self, job_id: str, fence: Fence, *, error: JobError, now: float) -> Job:
        return self._fenced(
            job_id, fence, "fail",
            status=JobStatus.FAILED, error=error, updated_at=iso(now), lease_owner=None, lease_expires_at=None,
        )  # fmt: skip

    def release(self, job_id: str, fence: Fence, *, error: JobError, now: float) -> Job:
        return self._fenced(
            job_id, fence, "release",
            status=JobStatus.QUEUED, error=error, updated_at=iso(now), progress_pct=0,
            lease_owner=None, lease_expires_at=None,
        )  # fmt: skip

    # --- recovery and user transitions --------------------------------------------------------

    def _expired_and_unchanged(self, seen: Job, now: float) -> Callable[[Job], bool]:
        def check(job: Job) -> bool:
            return (
                job.status == JobStatus.RUNNING
                and (job.lease_expires_at or 0) < int(now)
                and job.lease_owner == (seen.lease_owner or "")
                and job.attempt == seen.attempt
            )

        return check

    def requeue_expired(self, job: Job, *, now: float, error: JobError) -> Job | None:
        return self._update(
            job.job_id, self._expired_and_unchanged(job, now), "requeue_expired",
            status=JobStatus.QUEUED, error=error, updated_at=iso(now), progress_pct=0,
            lease_owner=None, lease_expires_at=None,
        )  # fmt: skip

    def fail_expired(self, job: Job, *, now: float, error: JobError) -> Job | None:
        return self._update(
            job.job_id, self._expired_and_unchanged(job, now), "fail_expired",
            status=JobStatus.FAILED, error=error, updated_at=iso(now), lease_owner=None, lease_expires_at=None,
        )  # fmt: skip

    def fail_unclaimed(self, job_id: str, *, now: float, error: JobError) -> Job | None:
        return self._update(
            job_id, lambda j: j.status == JobStatus.QUEUED, "fail_unclaimed",
            status=JobStatus.FAILED, error=error, updated_at=iso(now),
        )  # fmt: skip

    def fail_dead_lettered(self, job_id: str, *, now: float, error: JobError) -> Job | None:
        def check(job: Job) -> bool:
            expired = job.status == JobStatus.RUNNING and (job.lease_expires_at or 0) < int(now)
            return job.status == JobStatus.QUEUED or expired

        return self._update(
            job_id, check, "fail_dead_lettered",
            status=JobStatus.FAILED, error=error, updated_at=iso(now), lease_owner=None, lease_expires_at=None,
        )  # fmt: skip

    def reopen(self, job_id: str, *, now: float) -> Job | None:
        return self._update(
            job_id, lambda j: j.status in (JobStatus.FAILED, JobStatus.CANCELLED), "reopen",
            status=JobStatus.QUEUED, attempt=0, progress_pct=0, updated_at=iso(now),
            error=None, completed_at=None, started_at=None,
        )  # fmt: skip

    def cancel(self, job_id: str, *, now: float) -> Job | None:
        return self._update(
            job_id, lambda j: j.status == JobStatus.QUEUED, "cancel", status=JobStatus.CANCELLED, updated_at=iso(now)
        )

    def mark_message_sent(self, job_id: str, *, now: float) -> None:
        self._update(job_id, lambda j: True, "mark_message_sent", message_sent_at=iso(now))

    # --- queries ------------------------------------------------------------------------------

    def by_status(self, status: JobStatus, *, updated_before: str | None = None) -> Iterator[Job]:
        for item in list(self.items.values()):
            job = Job.from_item(item)
            if job.status == status and (updated_before is None or job.updated_at < updated_before):
                yield job

    def by_tenant(
        self, tenant_id: str, *, limit: int, cursor: dict[str, Any] | None = None
    ) -> tuple[list[Job], dict[str, Any] | None]:
        jobs = sorted(
            (Job.from_item(i) for i in self.items.values() if i.get("tenantId") == tenant_id),
            key=lambda j: j.created_at,
            reverse=True,
        )
        start = int(cursor["offset"]) if cursor else 0
        page = jobs[start : start + limit]
        more = start + limit < len(jobs)
        return page, ({"offset": start + limit} if more else None)

    def count_by_status(self, status: JobStatus) -> int:
        return sum(1 for _ in self.by_status(status))


class FakeQueue:
    """``JobQueue``: records sends and delays; ``fail_sends`` makes ``send`` raise like SQS being down."""

    def __init__(self, *, fail_sends: bool = False) -> None:
        self.sent: list[JobMessage] = []
        self.delays: list[tuple[str, int]] = []
        self.fail_sends = fail_sends
        self._ids = itertools.count(1)

    def send(self, message: JobMessage, *, delay_seconds: int = 0) -> str:
        if self.fail_sends:
            raise StorageUnavailable("SQS request failed (ServiceUnavailable)")
        self.sent.append(message)
        return f"msg-{next(self._ids)}"

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))


@dataclass
class FakeUpload:
    key: str
    content_type: str
    store: FakeStore
    parts: list[bytes] = field(default_factory=list)
    completed: bool = False
    aborted: bool = False

    def write(self, chunk: bytes) -> None:
        assert not self.completed, "write after the upload was completed"
        assert not self.aborted, "write after the upload was aborted"
        self.parts.append(bytes(chunk))

    def complete(self) -> None:
        body = b"".join(self.parts)
        if self.key in self.store.objects:  # If-None-Match: * -- the first writer wins
            self.aborted = True
            raise ObjectExists(self.key, etag=_etag(body))
        self.completed = True
        self.store.objects[self.key] = body

    def abort(self) -> None:
        self.aborted = True


class FakeStore:
    """``MediaStore``: an object appears in ``objects`` only when its upload completes."""

    def __init__(self) -> None:
        self.uploads: list[FakeUpload] = []
        self.objects: dict[str, bytes] = {}
        self.documents: dict[str, Any] = {}
        self.on_put_json: Callable[[str], None] | None = None

    def open_upload(self, key: str, *, content_type: str) -> FakeUpload:
        upload = FakeUpload(key=key, content_type=content_type, store=self)
        self.uploads.append(upload)
        return upload

    def put_json(self, key: str, document: Any, *, may_replace: Callable[[], None] | None = None) -> None:
        if self.on_put_json is not None:
            self.on_put_json(key)
        if key in self.documents:  # as S3MediaStore: an equal document is kept, a different one needs the owner
            if same_document(self.documents[key], document) or may_replace is None:
                return
            may_replace()
        self.documents[key] = document

    def head(self, key: str) -> ObjectInfo | None:
        body = self.objects.get(key)
        return None if body is None else ObjectInfo(key=key, size=len(body), etag=_etag(body))

    def sha256(self, key: str, *, each_chunk: Callable[[], None] | None = None) -> str:
        return hashlib.sha256(self.objects[key]).hexdigest()


def _etag(body: bytes) -> str:
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


class FakeExtractor:
    """Returns a fixed post, or raises; records the URLs it was asked to open."""

    def __init__(self, info: PostInfo | None = None, *, error: Exception | None = None) -> None:
        self.info = info
        self.error = error
        self.calls: list[str] = []
        self.fetches: list[str] = []

    def extract(self, url: str, *, cookies: Any = (), parse_json: Any = None) -> PageResult:
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        assert self.info is not None
        return PageResult(info=self.info.model_copy(deep=True), user_agent="FakeBrowser/1.0")

    def fetch(
        self, page_url: str, media_url: str, consume: Any, *, cookies: Any = (), session_cookies: Any = ()
    ) -> Any:
        """The browser-driven download: this fake browser's fetch is refused like the direct one."""
        self.fetches.append(media_url)
        raise InvalidMedia(f"the page could not fetch {media_url}")
