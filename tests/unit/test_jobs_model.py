"""The job record: its public JSON contract, its DynamoDB item, its fence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mediavault.jobs.model import Account, Fence, Job, JobError, JobStatus, MediaItem

pytestmark = pytest.mark.unit

PUBLIC_KEYS = {
    "jobId", "url", "status", "progressPct", "attempt", "createdAt", "updatedAt", "startedAt",
    "completedAt", "platform", "account", "media", "infoKey", "error", "includeQuoted",
}  # fmt: skip


def leased_job(**changes: object) -> Job:
    job = Job(
        job_id="job-1",
        tenant_id="tenant-a",
        url="https://site.example/p/1",
        dedupe_key="tenant-a|https://site.example/p/1",
        status=JobStatus.RUNNING,
        attempt=2,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:05.000Z",
        started_at="2026-01-01T00:00:01.000Z",
        correlation_id="corr-1",
        lease_owner="worker-7",
        lease_expires_at=1_800_000_960,
        message_sent_at="2026-01-01T00:00:00.500Z",
    )
    return job.model_copy(update=changes)


def test_to_public_has_exactly_the_public_camel_case_fields() -> None:
    # Given a running job holding a lease
    job = leased_job()
    # When shown to the API
    public = job.to_public()
    # Then exactly the public fields are there, in camelCase, and nothing internal leaks
    assert set(public) == PUBLIC_KEYS
    for internal in ("leaseOwner", "leaseExpiresAt", "tenantId", "dedupeKey", "correlationId", "maxAttempts"):
        assert internal not in public
    assert public["jobId"] == "job-1"
    assert public["status"] == "running"
    assert public["completedAt"] is None


def test_to_public_serialises_nested_models_in_camel_case() -> None:
    media = MediaItem(
        kind="video", key="downloads/s/job-1.mp4", content_type="video/mp4", bytes=12345, sha256="ab" * 32,
        source_url="https://cdn.example/v.mp4", thumbnail_key="downloads/s/thumbnails/job-1.jpg",
    )  # fmt: skip
    job = leased_job(
        status=JobStatus.COMPLETED,
        account=Account(platform="generic", handle="alice", display_name="Alice", slug="generic-alice"),
        media=[media],
        error=None,
    )
    public = job.to_public()
    assert public["account"] == {
        "platform": "generic",
        "handle": "alice",
        "displayName": "Alice",
        "authorId": None,
        "slug": "generic-alice",
    }
    assert public["media"][0]["contentType"] == "video/mp4"
    assert public["media"][0]["thumbnailKey"] == "downloads/s/thumbnails/job-1.jpg"
    assert public["media"][0]["sourceUrl"] == "https://cdn.example/v.mp4"


def test_to_item_omits_absent_values_and_keeps_internal_ones() -> None:
    item = leased_job().to_item()
    assert "completedAt" not in item
    assert "error" not in item
    assert None not in item.values()
    assert item["leaseOwner"] == "worker-7"
    assert item["tenantId"] == "tenant-a"
    assert item["maxAttempts"] == 5


def test_from_item_turns_dynamodb_decimals_back_into_ints() -> None:
    # Given an item as boto3's resource API returns it (numbers are Decimals, also nested)
    item = leased_job().to_item()
    item.update(attempt=Decimal(2), progressPct=Decimal(50), leaseExpiresAt=Decimal(1_800_000_960))
    item["media"] = [
        {"kind": "video", "key": "k", "contentType": "video/mp4", "bytes": Decimal(10240), "sha256": "x",
         "sourceUrl": "https://x/v.mp4", "width": Decimal(1280)},
    ]  # fmt: skip
    # When read back
    job = Job.from_item(item)
    # Then the numbers are plain ints and the job equals what was stored
    assert type(job.attempt) is int
    assert job.attempt == 2
    assert type(job.lease_expires_at) is int
    assert type(job.media[0].bytes) is int
    assert job.media[0].bytes == 10240
    assert job.media[0].width == 1280


def test_item_round_trip_preserves_the_job() -> None:
    job = leased_job(error=JobError(code="UPSTREAM_UNAVAILABLE", message="503", retryable=True))
    assert Job.from_item(job.to_item()) == job


def test_fence_names_the_lease_owner_and_attempt() -> None:
    assert leased_job().fence() == Fence(owner="worker-7", attempt=2)


def test_fence_of_a_job_nobody_holds_raises() -> None:
    with pytest.raises(ValueError, match="not leased"):
        leased_job(lease_owner=None, status=JobStatus.QUEUED).fence()


def test_terminal_states() -> None:
    assert {s for s in JobStatus if s.terminal} == {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
