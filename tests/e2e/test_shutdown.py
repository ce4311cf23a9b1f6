"""Stopping the local stack: no new messages, jobs in flight get a grace period, the rest are given back."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from mediavault_local.stack import LocalStack, StackOptions
from tests.conftest import ROOT, site_host

pytestmark = pytest.mark.e2e


def test_jobs_still_running_after_the_drain_timeout_are_released_and_their_message_returned(
    module_site: Any,
) -> None:
    # Given a stack whose only worker is busy with a slow download (the site sends 150 KB/s)
    module_site.throttle_bps = 150_000
    options = StackOptions(root=ROOT, egress_allow=[site_host(module_site)], write_state=False, workers=1)
    try:
        with LocalStack(options) as stack:
            client = httpx.Client(base_url=stack.api.url, headers={"x-api-key": stack.api_key}, trust_env=False)
            job_id = client.post("/jobs", json={"url": module_site.url("/posts/variants"), "force": True}).json()[
                "jobId"
            ]
            deadline = time.monotonic() + 60
            # (20%: the post was read; the download is under way)
            while client.get(f"/jobs/{job_id}").json()["progressPct"] < 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert client.get(f"/jobs/{job_id}").json()["status"] == "running"

            # When the stack stops with a drain timeout shorter than the job
            assert stack.poller is not None
            abandoned = stack.poller.stop(timeout=1.0)
            stack._release_abandoned(abandoned)

            # Then the job is queued again with the reason, and its message is visible for the next start
            job = client.get(f"/jobs/{job_id}").json()
            assert (job["status"], job["error"]["code"], job["error"]["retryable"]) == (
                "queued",
                "RELEASED_AT_SHUTDOWN",
                True,
            )
            attributes = stack.client("sqs").get_queue_attributes(
                QueueUrl=stack.info()["queueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            assert attributes["ApproximateNumberOfMessages"] == "1"
            # And no half-written object is visible
            listing = stack.client("s3").list_objects_v2(Bucket=stack.info()["bucket"])
            assert "Contents" not in listing
    finally:
        module_site.throttle_bps = None
