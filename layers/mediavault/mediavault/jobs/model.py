"""The job record and its state machine.

States: ``queued -> running -> completed | failed``; ``running -> queued`` (retryable failure with
attempts left, lease expired, deadline reached); ``queued -> cancelled``; ``failed | cancelled -> queued``
(user retry). The repository enforces each transition with a conditional write.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Account(CamelModel):
    platform: str
    handle: str | None = None
    display_name: str | None = None
    author_id: str | None = None
    slug: str


class MediaItem(CamelModel):
    kind: str  # video | gif | photo
    key: str
    content_type: str
    bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    bitrate: int | None = None
    duration_ms: int | None = None
    source_url: str
    thumbnail_key: str | None = None
    quoted: bool | None = None  # media of the quoted post
    strategy: str | None = None  # how it was downloaded: direct, cookies, browser


class JobError(CamelModel):
    code: str
    message: str
    retryable: bool


class Job(CamelModel):
    """One archive request. Field names are the public JSON contract (camelCase)."""

    job_id: str
    tenant_id: str = "default"
    url: str
    dedupe_key: str | None = None
    status: JobStatus = JobStatus.QUEUED
    progress_pct: int = 0
    attempt: int = 0
    max_attempts: int = 5
    created_at: str
    updated_at: str
    started_at: str | None = None
    completed_at: str | None = None
    platform: str | None = None
    account: Account | None = None
    media: list[MediaItem] = Field(default_factory=list)
    info_key: str | None = None
    error: JobError | None = None
    correlation_id: str | None = None
    include_quoted: bool = False
    post_key: str | None = None  # <platform>:<post id>, when the URL names a post
    # Lease of the worker that holds the job (internal, never in the public JSON).
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    message_sent_at: str | None = None

    PUBLIC_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "job_id", "url", "status", "progress_pct", "attempt", "created_at", "updated_at",
            "started_at", "completed_at", "platform", "account", "media", "info_key", "error", "include_quoted",
        }
    )  # fmt: skip

    def to_public(self) -> dict[str, Any]:
        """The job as the API shows it (camelCase, internal lease fields left out)."""
        return self.model_dump(mode="json", by_alias=True, include=set(self.PUBLIC_FIELDS))

    def to_item(self) -> dict[str, Any]:
        """The job as stored in DynamoDB (absent values are not written)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        return cls.model_validate(_plain(item))

    def fence(self) -> Fence:
        if self.lease_owner is None:
            raise ValueError(f"job {self.job_id} is not leased")
        return Fence(owner=self.lease_owner, attempt=self.attempt)


@dataclass(frozen=True, slots=True)
class Fence:
    """Who holds a job: every write of a worker after the claim is conditioned on both."""

    owner: str
    attempt: int


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints (jobs store only whole numbers)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
