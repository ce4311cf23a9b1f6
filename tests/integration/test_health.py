"""``GET /health``: figures and reasons, heartbeats of the worker and the recovery sweep."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from mediavault import deps

pytestmark = pytest.mark.integration


def health(function: Any, load_event: Any) -> tuple[int, dict[str, Any]]:
    response = function("ApiFunction").invoke(load_event("api_health.json"))
    return response["statusCode"], json.loads(response["body"])


def test_idle_deployment_is_healthy(aws: dict[str, Any], function: Any, load_event: Any) -> None:
    status, report = health(function, load_event)
    assert status == 200
    assert report["healthy"] is True
    assert report["jobs"] == {"queued": 0, "running": 0, "completed": 0, "failed": 0, "cancelled": 0}
    assert (report["queueDepth"], report["inFlight"], report["deadLetters"]) == (0, 0, 0)
    assert report["workerHeartbeatAgeSeconds"] is None


def test_pending_work_without_a_worker_heartbeat_is_unhealthy(
    aws: dict[str, Any], function: Any, load_event: Any
) -> None:
    # Given a queued job and no worker that ever beat
    function("ApiFunction").invoke(load_event("api_create_job.json"))
    status, report = health(function, load_event)
    assert status == 503
    assert report["queueDepth"] == 1
    assert report["jobs"]["queued"] == 1
    assert "heartbeat was never" in report["reasons"][0]

    # When a worker beats
    deps.heartbeats().beat("worker", now=time.time() - 5)
    status, report = health(function, load_event)

    # Then it is healthy again, with the heartbeat's age
    assert status == 200
    assert 4 <= report["workerHeartbeatAgeSeconds"] < 60

    # And a heartbeat older than the stale limit (120 s) makes it unhealthy again
    deps.heartbeats().beat("worker", now=time.time() - 121)
    status, report = health(function, load_event)
    assert status == 503
    assert "stale after 120s" in report["reasons"][0]


def test_dead_letters_and_a_silent_recovery_are_reported(aws: dict[str, Any], function: Any, load_event: Any) -> None:
    boto3.client("sqs").send_message(QueueUrl=aws["env"]["MEDIAVAULT_DLQ_URL"], MessageBody="{}")
    deps.heartbeats().beat("recovery", now=time.time() - 3600)
    status, report = health(function, load_event)
    assert status == 503
    assert report["deadLetters"] == 1
    assert report["recoveryRunAgeSeconds"] >= 3600
    assert any("dead-letter" in r for r in report["reasons"])
    assert any("recovery sweep last ran" in r for r in report["reasons"])


def test_the_recovery_function_beats(aws: dict[str, Any], function: Any, load_event: Any) -> None:
    function("RecoveryFunction").invoke(load_event("recovery_schedule.json"))
    _, report = health(function, load_event)
    assert report["recoveryRunAgeSeconds"] is not None
    assert report["recoveryRunAgeSeconds"] < 30


def test_heartbeat_items_never_show_up_as_jobs(aws: dict[str, Any], function: Any, load_event: Any) -> None:
    deps.heartbeats().beat("worker", now=time.time())
    listed = function("ApiFunction").invoke(load_event("api_list_jobs.json"))
    assert json.loads(listed["body"])["jobs"] == []
