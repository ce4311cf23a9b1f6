"""The worker handler with the sample SQS events: real Chromium, the sample site, moto's mock_aws."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

pytestmark = pytest.mark.e2e


def table(aws: dict[str, Any]) -> Any:
    return boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"])


def jobs(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in table(aws).scan()["Items"] if not item["jobId"].startswith("heartbeat#")]


def objects(aws: dict[str, Any]) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    bucket = aws["env"]["MEDIAVAULT_BUCKET"]
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_a_message_with_only_a_url_is_archived_once(
    worker: Any, aws: dict[str, Any], sample_site: Any, sample_media: Path, load_event: Any
) -> None:
    # Given the sample "url only" SQS event, pointing at the post whose player fetches its variants
    event = load_event("sqs_url_only.json", url=sample_site.url("/posts/variants"))

    # When the worker handles it, and the same message is delivered a second time
    first = worker.invoke(event)
    second = worker.invoke(event)

    # Then both deliveries succeed and there is exactly one job, completed with the best variant
    assert first == {"batchItemFailures": []}
    assert second == {"batchItemFailures": []}
    (job,) = jobs(aws)
    assert job["status"] == "completed"
    assert job["progressPct"] == 100
    (media,) = job["media"]
    assert media["sourceUrl"].endswith("/media/clip-1080p.mp4")
    assert (media["width"], media["height"], media["bitrate"]) == (1920, 1080, 2500000)
    assert job["account"] == {"platform": "generic", "handle": "sampleuser", "displayName": "Sample User",
                              "slug": "generic-sampleuser"}  # fmt: skip
    # And the objects are whole, at deterministic keys, with the info document describing them
    stored = objects(aws)
    expected = (sample_media / "clip-1080p.mp4").read_bytes()
    assert stored[media["key"]] == expected
    assert media["sha256"] == hashlib.sha256(expected).hexdigest()
    # (the message named no tenant: the deployment's default tenant, under its own prefix)
    assert job["tenantId"] == aws["env"]["MEDIAVAULT_DEFAULT_TENANT"] == "default"
    assert media["key"] == f"tenants/default/downloads/generic-sampleuser/{job['jobId']}.mp4"
    assert media["thumbnailKey"] == f"tenants/default/downloads/generic-sampleuser/thumbnails/{job['jobId']}.jpg"
    assert stored[media["thumbnailKey"]][:3] == b"\xff\xd8\xff"
    info = json.loads(stored[job["infoKey"]])
    assert info["author"]["handle"] == "sampleuser"
    assert info["title"]
    assert info["media"][0]["sha256"] == media["sha256"]
    assert len(stored) == 3


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/posts/no-media", "NO_MEDIA"),
        ("/posts/html-as-video", "INVALID_MEDIA"),
        ("/posts/tiny-video", "INVALID_MEDIA"),
        ("/posts/empty-video", "INVALID_MEDIA"),
        ("/posts/missing", "POST_NOT_FOUND"),
        ("/posts/gone", "POST_NOT_FOUND"),
    ],
)
def test_permanent_failures_end_the_job_and_store_nothing(
    worker: Any, aws: dict[str, Any], sample_site: Any, load_event: Any, path: str, code: str
) -> None:
    result = worker.invoke(load_event("sqs_url_only.json", url=sample_site.url(path)))
    assert result == {"batchItemFailures": []}  # not retried
    (job,) = jobs(aws)
    assert (job["status"], job["error"]["code"], job["error"]["retryable"]) == ("failed", code, False)
    assert objects(aws) == {}
    assert not boto3.client("s3").list_multipart_uploads(Bucket=aws["env"]["MEDIAVAULT_BUCKET"]).get("Uploads")


def test_a_retryable_failure_releases_the_job_and_fails_only_its_record(
    worker: Any, aws: dict[str, Any], sample_site: Any, load_event: Any
) -> None:
    # Given a post that answers 503 at first, in a batch with a good post
    sample_site.reset_flaky(failures=1)
    flaky = load_event("sqs_url_only.json", url=sample_site.url("/posts/flaky"))
    good = load_event("sqs_url_only.json", url=sample_site.url("/posts/og-video"))
    good["Records"][0]["messageId"] = "b5a3c1d2-0000-4000-8000-000000000001"
    event = {"Records": flaky["Records"] + good["Records"]}

    # When the worker handles the batch
    result = worker.invoke(event)

    # Then only the flaky record is reported failed, its job is queued again with the cause
    assert result == {"batchItemFailures": [{"itemIdentifier": flaky["Records"][0]["messageId"]}]}
    by_url = {j["url"]: j for j in jobs(aws)}
    retried = by_url[sample_site.url("/posts/flaky")]
    assert (retried["status"], retried["attempt"], retried["error"]["code"]) == ("queued", 1, "UPSTREAM_UNAVAILABLE")
    assert by_url[sample_site.url("/posts/og-video")]["status"] == "completed"

    # And the redelivery completes it
    assert worker.invoke(flaky) == {"batchItemFailures": []}
    done = next(j for j in jobs(aws) if j["url"] == sample_site.url("/posts/flaky"))
    assert (done["status"], done["attempt"]) == ("completed", 2)


def test_a_malformed_message_fails_alone(worker: Any, aws: dict[str, Any], load_event: Any) -> None:
    event = load_event("sqs_malformed.json")
    assert worker.invoke(event) == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert jobs(aws) == []


def test_a_private_address_is_refused(worker: Any, aws: dict[str, Any], load_event: Any) -> None:
    # 127.0.0.1:9 is not in MEDIAVAULT_EGRESS_ALLOW: the page is never fetched
    result = worker.invoke(load_event("sqs_url_only.json", url="http://127.0.0.1:9/posts/x"))
    assert result == {"batchItemFailures": []}
    (job,) = jobs(aws)
    assert (job["status"], job["error"]["code"]) == ("failed", "EGRESS_BLOCKED")
