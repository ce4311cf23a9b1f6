"""Request and response models of the HTTP API: they validate input and make its OpenAPI document.

The response models describe exactly what the routes send (``Job.to_public()``, the list page, media
links, health, errors), nullable fields declared nullable, so a client generated from the document and
a schema checker (schemathesis, in the test suite) agree with the wire.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool, StrictStr
from pydantic.alias_generators import to_camel

from mediavault.jobs.model import JobStatus

MAX_BODY_BYTES = 16 * 1024
MAX_URL_CHARS = 4096
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
JOB_ID_RULE = "a job id as POST /jobs returned it (1-128 letters, digits, '-' or '_')"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
MAX_CURSOR_CHARS = 2048


class CreateJobRequest(BaseModel):
    """``POST /jobs``: the post to archive."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    url: StrictStr = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="http(s) URL of the post; anything else answers 400 INVALID_URL",
        examples=["https://example.com/posts/1"],
        # Documents the expected shape; the check itself (INVALID_URL, EGRESS_BLOCKED) is the service's.
        json_schema_extra={"pattern": "^https?://"},
    )
    force: StrictBool = Field(
        default=False,
        description="archive again even if this post (same platform and post id, or same URL) was archived",
    )
    include_quoted: StrictBool = Field(
        default=False, alias="includeQuoted", description="also archive the media of the post this one quotes"
    )


# --- responses -------------------------------------------------------------------------------------


class _View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AccountView(_View):
    platform: str
    handle: str | None
    display_name: str | None
    author_id: str | None = None
    slug: str = Field(description="account folder in the bucket")


class MediaItemView(_View):
    kind: str = Field(description="video | gif | photo")
    key: str = Field(
        description="S3 key: tenants/<tenantId>/downloads/<accountSlug>/<jobId>.<ext>, "
        "or <jobId>-<n>.<ext> (n = 1, 2...) when the post has more than one item"
    )
    content_type: str
    bytes: int = Field(ge=0)
    sha256: str
    width: int | None
    height: int | None
    bitrate: int | None
    duration_ms: int | None = None
    source_url: str
    thumbnail_key: str | None
    quoted: bool | None = Field(default=None, description="true: media of the quoted post")
    strategy: str | None = Field(default=None, description="how it was downloaded: direct, cookies, browser")


class JobErrorView(_View):
    code: str = Field(description="stable error code, e.g. NO_MEDIA, POST_NOT_FOUND, EGRESS_BLOCKED")
    message: str
    retryable: bool


class JobView(_View):
    """A job as the API shows it (``Job.to_public()``)."""

    job_id: str
    url: str
    status: JobStatus
    progress_pct: int = Field(ge=0, le=100)
    attempt: int = Field(ge=0)
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None
    platform: str | None
    account: AccountView | None
    media: list[MediaItemView]
    info_key: str | None
    error: JobErrorView | None
    include_quoted: bool = False


class JobPage(_View):
    """``GET /jobs``: the caller's jobs, newest first."""

    jobs: list[JobView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class MediaLink(_View):
    key: str
    url: str = Field(description="presigned GET link")
    thumbnail_url: str | None = Field(default=None, description="present when the item has a thumbnail")


class MediaLinks(_View):
    """``GET /jobs/{jobId}/media``: presigned links, valid ``expiresIn`` seconds (at most an hour)."""

    job_id: str
    expires_in: int = Field(ge=1, le=3600)
    media: list[MediaLink]
    info_url: str | None


class Health(_View):
    """``GET /health``: 200 when healthy, 503 (same shape) with ``reasons`` when degraded. Figures that
    could not be read are left out (and a reason says why)."""

    healthy: bool
    status: Literal["ok", "degraded"]
    reasons: list[str]
    queue_depth: int | None = Field(default=None, ge=0)
    in_flight: int | None = Field(default=None, ge=0)
    dead_letters: int | None = Field(default=None, ge=0)
    jobs: dict[str, int] | None = Field(default=None, description="jobs by status")
    worker_heartbeat_age_seconds: float | None = Field(default=None, description="null: never seen")
    recovery_run_age_seconds: float | None = Field(default=None, description="null: never ran")
    oldest_message_age_seconds: float | None = Field(
        default=None, description="age of the oldest job message waiting in the queue; null: unknown"
    )
    oldest_message_age_source: Literal["cloudwatch", "jobs-table"] | None = Field(
        default=None, description="where the figure comes from: the SQS metric, or the oldest queued job"
    )


class ErrorBody(BaseModel):
    code: str = Field(description="stable: INVALID_REQUEST, INVALID_URL, EGRESS_BLOCKED, JOB_NOT_FOUND, ...")
    message: str = Field(description="what went wrong and what to fix")
    retryable: bool = False
    details: list[dict[str, Any]] | None = Field(default=None, description="per-field problems (validation)")


class ErrorResponse(BaseModel):
    """Every error the API function answers."""

    error: ErrorBody


class GatewayError(BaseModel):
    """What API Gateway itself answers before the function runs: 403 (no or wrong ``x-api-key``, or no
    such route), 429 (throttle or quota of the key's usage plan), 413 (over 10 MB)."""

    message: str


class TooLarge(RootModel[ErrorResponse | GatewayError]):
    """413: the function's ``PAYLOAD_TOO_LARGE`` (over 16 KiB), or API Gateway's own (over 10 MB)."""
