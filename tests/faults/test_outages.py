"""Fault injection: S3 unreachable for 30 s, then DynamoDB throttling, while jobs run on the local stack.

Every job must end ``completed`` (retried with backoff, recovered when needed), none ``completed``
without its objects, and no incomplete upload may outlive the recovery sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from mediavault_local.faults import FaultProxy
from mediavault_local.motoserver import free_port
from mediavault_local.scheduler import scheduled_event
from mediavault_local.stack import LocalStack, StackOptions
from mediavault_local.template import REGION
from tests.conftest import ROOT, site_host

pytestmark = pytest.mark.faults

POSTS = ("/posts/og-video", "/posts/video-tag", "/posts/jsonld", "/posts/variants", "/posts/animated", "/posts/photo")


@pytest.fixture
def faulty_stack(sample_site: Any) -> Iterator[tuple[LocalStack, FaultProxy, FaultProxy]]:
    aws_port = free_port()
    upstream = f"http://127.0.0.1:{aws_port}"
    s3_proxy, dynamodb_proxy = FaultProxy(upstream).start(), FaultProxy(upstream).start()
    options = StackOptions(
        root=ROOT,
        aws_port=aws_port,
        egress_allow=[site_host(sample_site)],
        write_state=False,
        schedule_every=3600,  # the test runs the sweep itself
        extra_env={
            "AWS_ENDPOINT_URL_S3": s3_proxy.endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_proxy.endpoint,
            # Backoff that outlasts a 30 s outage within the 5-attempt budget: 8, 16, 30, 30 s (x 0.5-1)
            "MEDIAVAULT_RETRY_BASE_SECONDS": "8",
            "MEDIAVAULT_RETRY_MAX_SECONDS": "30",
            "MEDIAVAULT_LEASE_SECONDS": "30",
            "MEDIAVAULT_QUEUED_STALE_SECONDS": "45",
        },
    )
    try:
        with LocalStack(options) as stack:
            yield stack, s3_proxy, dynamodb_proxy
    finally:
        s3_proxy.stop()
        dynamodb_proxy.stop()


def direct(stack: LocalStack, service: str) -> Any:
    """A client that talks to moto directly, past the fault proxies."""
    return boto3.session.Session(region_name=REGION).client(service, endpoint_url=stack.moto.endpoint)


def statuses(stack: LocalStack, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    table = (
        boto3.session.Session(region_name=REGION)
        .resource("dynamodb", endpoint_url=stack.moto.endpoint)
        .Table(stack.info()["table"])
    )
    return {job_id: table.get_item(Key={"jobId": job_id}).get("Item", {}) for job_id in job_ids}


def test_s3_outage_then_dynamodb_throttling_every_job_completes_with_its_objects(
    faulty_stack: tuple[LocalStack, FaultProxy, FaultProxy], sample_site: Any
) -> None:
    stack, s3_proxy, dynamodb_proxy = faulty_stack
    started = time.monotonic()

    # Given S3 unreachable
    s3_proxy.set_mode("down")
    with httpx.Client(base_url=stack.api.url, headers={"x-api-key": stack.api_key}, trust_env=False) as api:
        job_ids = [
            api.post("/jobs", json={"url": sample_site.url(path), "force": True}).json()["jobId"] for path in POSTS
        ]

    # When it stays down for 30 s, then DynamoDB throttles 30% of requests for 20 s
    time.sleep(30)
    s3_proxy.set_mode("pass")
    dynamodb_proxy.set_mode("throttle", ratio=0.3)
    time.sleep(20)
    dynamodb_proxy.set_mode("pass")

    # Then every job completes (the sweep requeues any whose worker lost its lease mid-failure)
    sweep = stack.schedules[0]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        jobs = statuses(stack, job_ids)
        if all(j.get("status") in ("completed", "failed") for j in jobs.values()):
            break
        sweep._instance.invoke(scheduled_event("faults"))
        time.sleep(3)
    jobs = statuses(stack, job_ids)
    assert {j["status"] for j in jobs.values()} == {"completed"}, {
        k: (v.get("status"), v.get("error")) for k, v in jobs.items()
    }

    # And none is completed without its objects
    s3 = direct(stack, "s3")
    bucket = stack.info()["bucket"]
    for job in jobs.values():
        for item in job["media"]:
            head = s3.head_object(Bucket=bucket, Key=item["key"])
            assert head["ContentLength"] == item["bytes"]
        s3.head_object(Bucket=bucket, Key=job["infoKey"])
    # And the faults really happened, and were retried
    assert s3_proxy.counts["dropped"] > 0
    assert dynamodb_proxy.counts["throttled"] > 0
    assert max(int(j["attempt"]) for j in jobs.values()) >= 2

    # And after a sweep no incomplete upload is left behind
    sweep._instance.invoke(scheduled_event("faults"))
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    print(
        f"\nS3 requests dropped {s3_proxy.counts['dropped']}, DynamoDB requests throttled "
        f"{dynamodb_proxy.counts['throttled']}, attempts {sorted(int(j['attempt']) for j in jobs.values())}, "
        f"{time.monotonic() - started:.0f}s"
    )
