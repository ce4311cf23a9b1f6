"""Fault injection: worker containers SIGKILLed at random points of the pipeline, and poison messages.

A killed worker leaves its job ``running`` under a lease that nobody renews and its message invisible
for the queue's long visibility timeout; the recovery sweep must requeue the job once the lease
expires, and each job must still complete exactly once with one set of objects.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from mediavault.jobs.service import job_id_for_message
from mediavault_local.scheduler import scheduled_event
from mediavault_local.stack import LocalStack, StackOptions
from mediavault_local.template import REGION
from tests.conftest import ROOT, site_host

pytestmark = pytest.mark.faults

POSTS = ("/posts/og-video", "/posts/video-tag", "/posts/jsonld", "/posts/variants", "/posts/photo")


@pytest.fixture
def crashy_stack(sample_site: Any) -> Iterator[LocalStack]:
    options = StackOptions(
        root=ROOT,
        egress_allow=[site_host(sample_site)],
        write_state=False,
        schedule_every=2,  # the recovery sweep, often
        extra_env={
            "MEDIAVAULT_LEASE_SECONDS": "10",
            "MEDIAVAULT_RETRY_BASE_SECONDS": "1",
            "MEDIAVAULT_RETRY_MAX_SECONDS": "4",
            "MEDIAVAULT_RECOVERY_GRACE_SECONDS": "5",
            # A container killed before it picked up its batch leaves the job queued and the message
            # invisible for the queue's visibility timeout: the sweep sends it again after this long.
            "MEDIAVAULT_QUEUED_STALE_SECONDS": "15",
        },
    )
    with LocalStack(options) as stack:
        yield stack


def table(stack: LocalStack) -> Any:
    return (
        boto3.session.Session(region_name=REGION)
        .resource("dynamodb", endpoint_url=stack.moto.endpoint)
        .Table(stack.info()["table"])
    )


def test_workers_killed_at_random_points_every_job_completes_exactly_once(
    crashy_stack: LocalStack, sample_site: Any
) -> None:
    stack = crashy_stack
    rng = random.Random(20)  # a fixed schedule of kills, for a repeatable run
    sample_site.throttle_bps = 400_000  # downloads take long enough to be killed mid-transfer
    try:
        with httpx.Client(base_url=stack.api.url, headers={"x-api-key": stack.api_key}, trust_env=False) as api:
            job_ids = [
                api.post("/jobs", json={"url": sample_site.url(POSTS[n % len(POSTS)]), "force": True}).json()["jobId"]
                for n in range(16)
            ]
        # When 20 SIGKILLs land on busy worker containers at random moments
        kills = 0
        deadline = time.monotonic() + 180
        assert stack.poller is not None
        while kills < 20 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 2.0))
            busy = stack.poller.busy_instances()
            if busy:
                rng.choice(busy).kill()
                kills += 1
        assert kills == 20
    finally:
        sample_site.throttle_bps = None

    # Then every job completes (recovery requeues the killed ones once their lease expires)
    jobs_table = table(stack)
    deadline = time.monotonic() + 360
    jobs: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        jobs = {j: jobs_table.get_item(Key={"jobId": j}).get("Item", {}) for j in job_ids}
        if all(job.get("status") in ("completed", "failed") for job in jobs.values()):
            break
        time.sleep(1)
    assert {job["status"] for job in jobs.values()} == {"completed"}, {
        k: (v.get("status"), v.get("attempt"), v.get("error")) for k, v in jobs.items()
    }
    # Exactly one set of objects per job, whole
    s3 = boto3.session.Session(region_name=REGION).client("s3", endpoint_url=stack.moto.endpoint)
    bucket = stack.info()["bucket"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    for job_id, job in jobs.items():
        own = [k for k in keys if job_id in k]
        assert len(own) == 1 + len(job["media"]) + sum(1 for m in job["media"] if m.get("thumbnailKey")), own
        for item in job["media"]:
            assert s3.head_object(Bucket=bucket, Key=item["key"])["ContentLength"] == item["bytes"]
    # And once the sweep ran, no incomplete upload is left
    stack.schedules[0]._instance.invoke(scheduled_event("faults"))
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    restarted = sum(w.starts for w in stack.workers)
    print(f"\n20 kills, {len(job_ids)} jobs completed, attempts {sorted(int(j['attempt']) for j in jobs.values())}, "
          f"{restarted} container starts")  # fmt: skip


def test_poison_messages_fail_alone_and_end_dead_lettered(crashy_stack: LocalStack, sample_site: Any) -> None:
    stack = crashy_stack
    sqs = stack.client("sqs")
    queue, dlq = stack.info()["queueUrl"], stack.info()["deadLetterQueueUrl"]
    jobs_table = table(stack)
    # Given a queued job whose message is poison (its url is not a string), malformed messages, and good ones
    poison_job = "0d5e7a3c-4b2f-4c1e-9a8d-7f6e5d4c3b2a"
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    jobs_table.put_item(Item={"jobId": poison_job, "tenantId": "default", "url": "https://example.com/p",
                              "status": "queued", "progressPct": 0, "attempt": 0, "maxAttempts": 5,
                              "createdAt": stamp, "updatedAt": stamp, "media": []})  # fmt: skip
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"jobId": poison_job, "url": 42}))
    for body in ("not json", '{"link": "x"}', "[1, 2]"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    good = [sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"url": sample_site.url("/posts/og-video")}))
            for _ in range(2)]  # fmt: skip

    # When each has been received 5 times (failures come back after a short backoff), the queue moved it to
    # the DLQ and the recovery sweep (every 2 s here) handled it
    def settled() -> bool:
        queues = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in (queue, dlq)]
        empty = all(q["ApproximateNumberOfMessages"] == q["ApproximateNumberOfMessagesNotVisible"] == "0"
                    for q in queues)  # fmt: skip
        poison = jobs_table.get_item(Key={"jobId": poison_job})["Item"]["status"]
        return empty and poison == "failed"

    deadline = time.monotonic() + 150
    while not settled() and time.monotonic() < deadline:
        time.sleep(1)

    # Then the good messages completed their jobs, the poison message's job failed DEAD_LETTERED,
    # and nothing is left in either queue
    for message in good:
        assert jobs_table.get_item(Key={"jobId": job_id_for_message(message["MessageId"])})["Item"]["status"] == (
            "completed"
        )
    failed = jobs_table.get_item(Key={"jobId": poison_job})["Item"]
    assert (failed["status"], failed["error"]["code"]) == ("failed", "DEAD_LETTERED")
    assert "received" in failed["error"]["message"]
    assert settled()
