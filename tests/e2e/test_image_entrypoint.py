"""The worker image's entrypoint without Docker: ``python -m awslambdaric app.lambda_handler`` against a
local Lambda Runtime API (next / response / error), processing one SQS event end to end."""

from __future__ import annotations

import os
from typing import Any

import pytest

from mediavault.jobs.service import job_id_for_message
from mediavault_local.runtime_api import LocalRuntimeApi, entrypoint
from mediavault_local.stack import local_pythonpath
from tests.conftest import ROOT, site_host

pytestmark = pytest.mark.e2e


def test_awslambdaric_runs_the_worker_handler_on_one_sqs_event(stack: Any, module_site: Any, load_event: Any) -> None:
    # Given the sample SQS event, pointed at a sample post, and the function environment of the stack
    event = load_event("sqs_url_only.json", url=module_site.url("/posts/video-tag"))
    message_id = "7d3f0a52-9e41-4b0c-8f5e-0c2d6a1b9e77"
    event["Records"][0]["messageId"] = message_id
    env = {
        **stack.env,
        "PYTHONPATH": os.pathsep.join(local_pythonpath(ROOT)),
        "MEDIAVAULT_EGRESS_ALLOW": site_host(module_site),
    }
    spec = stack.template.function("WorkerFunction")

    # When the image's entrypoint runs it through the Runtime API
    with (
        LocalRuntimeApi(timeout_seconds=spec.timeout) as runtime,
        entrypoint(spec.handler, cwd=ROOT / "functions" / "worker", env=env, runtime=runtime),
    ):
        result = runtime.invoke(event, timeout=120)

    # Then the handler answered a partial-batch response with no failure, and the job is complete
    assert result.error is None, result.error
    assert result.payload == {"batchItemFailures": []}
    item = stack.client("dynamodb").get_item(
        TableName=stack.info()["table"], Key={"jobId": {"S": job_id_for_message(message_id)}}
    )["Item"]
    assert item["status"]["S"] == "completed"
    assert item["media"]["L"][0]["M"]["sourceUrl"]["S"].endswith("clip-720p.mp4")
