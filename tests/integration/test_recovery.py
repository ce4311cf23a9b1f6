"""The recovery function, run with the sample schedule event against the template's resources in moto."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from mediavault import deps
from mediavault.jobs.model import JobStatus
from mediavault.jobs.repository import DynamoJobRepository
from mediavault.jobs.service import new_job

pytestmark = pytest.mark.integration

HOUR = 3600


@pytest.fixture
def repo(aws: dict[str, Any]) -> DynamoJobRepository:
    return DynamoJobRepository(boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"]))


def running(repo: DynamoJobRepository, job_id: str, *, claimed_ago: float, attempts_left: int) -> None:
    now = time.time()
    job = new_job(job_id=job_id, url=f"https://example.com/{job_id}", tenant_id="default", now=now - 2 * HOUR,
                  max_attempts=5, correlation_id=None)  # fmt: skip
    repo.create(job)
    used = 5 - attempts_left
    for attempt in range(1, used + 1):
        claimed = repo.claim(job_id, owner=f"w{attempt}", now=now - claimed_ago, lease_seconds=960)
        assert claimed is not None
        if attempt < used:
            repo.release(job_id, claimed.fence(), error=_err(), now=now - claimed_ago)


def _err() -> Any:
    from mediavault.jobs.model import JobError

    return JobError(code="UPSTREAM_UNAVAILABLE", message="x", retryable=True)


def messages(url: str) -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_expired_leases_are_requeued_or_failed(
    aws: dict[str, Any], repo: DynamoJobRepository, function: Any, load_event: Any
) -> None:
    # Given a crashed job with attempts left, one on its last attempt, and one still working
    running(repo, "crashed", claimed_ago=HOUR, attempts_left=4)
    running(repo, "last-try", claimed_ago=HOUR, attempts_left=0)
    running(repo, "alive", claimed_ago=10, attempts_left=4)

    # When the schedule fires
    result = function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))

    # Then the crashed job is queued again with a new message, the last try failed, the live one untouched
    assert result["requeued"] == 1
    assert result["failed"] == 1
    assert repo.get("crashed").status == JobStatus.QUEUED  # type: ignore[union-attr]
    last = repo.get("last-try")
    assert last is not None
    assert (last.status, last.error.code if last.error else None) == (JobStatus.FAILED, "RECOVERED_FROM_RESTART")
    assert repo.get("alive").status == JobStatus.RUNNING  # type: ignore[union-attr]
    assert [m["jobId"] for m in messages(aws["env"]["MEDIAVAULT_QUEUE_URL"])] == ["crashed"]


def test_a_queued_job_whose_message_was_lost_is_sent_again(
    aws: dict[str, Any], repo: DynamoJobRepository, function: Any, load_event: Any
) -> None:
    stale = new_job(job_id="lost", url="https://example.com/lost", tenant_id="default", now=time.time() - HOUR,
                    max_attempts=5, correlation_id="req-1")  # fmt: skip
    fresh = new_job(job_id="fresh", url="https://example.com/fresh", tenant_id="default", now=time.time(),
                    max_attempts=5, correlation_id=None)  # fmt: skip
    repo.create(stale)
    repo.create(fresh)

    result = function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))

    assert result["resent"] == 1
    assert messages(aws["env"]["MEDIAVAULT_QUEUE_URL"]) == [
        {"url": "https://example.com/lost", "jobId": "lost", "force": False, "tenantId": "default",
         "correlationId": "req-1"}
    ]  # fmt: skip
    # A second sweep does not send it again while the new message is young
    again = function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))
    assert again["resent"] == 0


def test_dead_letters_fail_their_jobs_and_the_dlq_is_drained(
    aws: dict[str, Any], repo: DynamoJobRepository, function: Any, load_event: Any
) -> None:
    sqs = boto3.client("sqs")
    dlq = aws["env"]["MEDIAVAULT_DLQ_URL"]
    job = new_job(job_id="poison", url="https://example.com/p", tenant_id="default", now=time.time(),
                  max_attempts=5, correlation_id=None)  # fmt: skip
    repo.create(job)
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"url": job.url, "jobId": "poison"}))
    sqs.send_message(QueueUrl=dlq, MessageBody="not a job")

    result = function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))

    assert (result["deadLettered"], result["droppedMessages"]) == (1, 1)
    failed = repo.get("poison")
    assert failed is not None
    assert (failed.status, failed.error.code if failed.error else None) == (JobStatus.FAILED, "DEAD_LETTERED")
    assert messages(dlq) == []


def test_stray_multipart_uploads_are_aborted_but_not_those_of_running_jobs(
    aws: dict[str, Any], repo: DynamoJobRepository, function: Any, load_event: Any
) -> None:
    # (moto reports every upload as initiated in 2010, so both are past the template's hour of grace)
    s3 = boto3.client("s3")
    bucket = aws["env"]["MEDIAVAULT_BUCKET"]
    live_job = "6f1b8a52-3c1e-4c55-9a57-64a7f7c0b8a1"
    running(repo, live_job, claimed_ago=10, attempts_left=4)
    s3.create_multipart_upload(Bucket=bucket, Key=f"downloads/x/{live_job}.mp4")
    s3.create_multipart_upload(Bucket=bucket, Key="downloads/x/0b5e3c2a-1d4f-4e6a-8b7c-9d0e1f2a3b4c.mp4")

    dry = function("RecoveryFunction").invoke(load_event("recovery_dry_run.json"))
    assert (dry["dryRun"], dry["abortedUploads"]) == (True, 1)
    assert len(s3.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2

    swept = function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))
    assert swept["abortedUploads"] == 1
    # The upload of the job that is still running is left alone
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [f"downloads/x/{live_job}.mp4"]


def test_objects_of_no_completed_job_are_removed_after_the_grace_period(
    aws: dict[str, Any], repo: DynamoJobRepository, function: Any, load_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mediavault.jobs.model import Account, MediaItem

    s3 = boto3.client("s3")
    bucket = aws["env"]["MEDIAVAULT_BUCKET"]
    done, failed, busy = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    )
    # Given a completed job with its objects, plus a stray variant an earlier attempt wrote ...
    running(repo, done, claimed_ago=10, attempts_left=4)
    job = repo.get(done)
    assert job is not None
    prefix = "tenants/default/downloads/generic-x"
    media = MediaItem(
        kind="video",
        key=f"{prefix}/{done}.mp4",
        content_type="video/mp4",
        bytes=1,
        sha256="0",
        source_url="https://example.com/v.mp4",
        thumbnail_key=f"{prefix}/thumbnails/{done}.jpg",
    )
    repo.complete(done, job.fence(), now=time.time(), platform="generic",
                  account=Account(platform="generic", slug="generic-x"), media=[media],
                  info_key=f"{prefix}/{done}.info.json")  # fmt: skip
    kept = [media.key, media.thumbnail_key, f"{prefix}/{done}.info.json"]
    # ... a failed job's leftovers, a running job's partial output, and an object that names no job
    running(repo, failed, claimed_ago=10, attempts_left=0)
    dead = repo.get(failed)
    assert dead is not None
    repo.fail(failed, dead.fence(), error=_err(), now=time.time())
    running(repo, busy, claimed_ago=10, attempts_left=4)
    removed = [f"{prefix}/{done}.webm", f"{prefix}/{failed}.mp4"]
    untouched = [f"{prefix}/{busy}.mp4", "notes/readme.txt"]
    for key in (*kept, *removed, *untouched):
        s3.put_object(Bucket=bucket, Key=str(key), Body=b"x")

    # Within the grace period (the template's hour) nothing is removed
    assert function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))["removedObjects"] == 0

    # Past it, a dry run lists exactly the orphans, and a real run removes them
    monkeypatch.setenv("MEDIAVAULT_RECOVERY_GRACE_SECONDS", "0")
    deps.reset()
    time.sleep(1.1)  # S3's LastModified has one-second resolution
    assert function("RecoveryFunction").invoke(load_event("recovery_dry_run.json"))["removedObjects"] == 2
    assert function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))["removedObjects"] == 2
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert left == {*kept, *untouched}
