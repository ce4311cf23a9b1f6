"""``GET /health``: figures and reasons, heartbeats of the worker and the recovery sweep."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr

from mediavault import deps
from mediavault.config import Settings

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


# --- the age of the oldest message ----------------------------------------------------------------


def age_message_by(aws: dict[str, Any], seconds: float) -> str:
    """Make the queued job's message ``seconds`` old (as the table records it)."""
    from mediavault.clock import iso

    table = boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"])
    (item,) = table.scan(FilterExpression=Attr("status").eq("queued"))["Items"]
    table.update_item(
        Key={"jobId": item["jobId"]},
        UpdateExpression="SET messageSentAt = :t",
        ExpressionAttributeValues={":t": iso(time.time() - seconds)},
    )
    return str(item["jobId"])


def test_an_empty_queue_reports_its_oldest_message_age_from_the_jobs_table(
    aws: dict[str, Any], function: Any, load_event: Any
) -> None:
    # moto has no SQS metrics in CloudWatch: the figure comes from the jobs table, and is true (nothing waits)
    status, report = health(function, load_event)
    assert status == 200
    assert (report["oldestMessageAgeSeconds"], report["oldestMessageAgeSource"]) == (0.0, "jobs-table")


def test_the_oldest_queued_jobs_message_gives_the_age_and_a_too_old_one_makes_it_unhealthy(
    aws: dict[str, Any], function: Any, load_event: Any
) -> None:
    # Given a job whose message was sent just now, and a live worker
    function("ApiFunction").invoke(load_event("api_create_job.json"))
    deps.heartbeats().beat("worker", now=time.time())
    status, report = health(function, load_event)
    assert status == 200, report["reasons"]
    assert report["oldestMessageAgeSource"] == "jobs-table"
    assert 0 <= report["oldestMessageAgeSeconds"] < 30

    # When the message has waited longer than the limit (30 minutes, the template alarm's threshold)
    age_message_by(aws, 1900)
    status, report = health(function, load_event)

    # Then /health is 503 and says why, with the figure and its source
    assert status == 503
    assert 1900 <= report["oldestMessageAgeSeconds"] < 1960
    assert report["reasons"] == [
        f"the oldest job message has waited {report['oldestMessageAgeSeconds']:.0f}s"
        " (too old after 1800s; from jobs-table)"
    ]


def test_the_limit_is_a_setting(
    aws: dict[str, Any], function: Any, load_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAVAULT_OLDEST_MESSAGE_MAX_SECONDS", "60")
    deps.reset()
    function("ApiFunction").invoke(load_event("api_create_job.json"))
    deps.heartbeats().beat("worker", now=time.time())
    age_message_by(aws, 90)
    status, report = health(function, load_event)
    assert status == 503
    assert "too old after 60s" in report["reasons"][0]


def test_cloudwatchs_figure_is_used_when_it_has_one(aws: dict[str, Any], function: Any, load_event: Any) -> None:
    # Given the SQS metric in CloudWatch (published here by hand: moto does not compute it)
    queue_name = aws["env"]["MEDIAVAULT_QUEUE_URL"].rsplit("/", 1)[-1]
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                "Value": value,
                "Unit": "Seconds",
                "Timestamp": datetime.now(UTC) - timedelta(seconds=ago),
            }
            for value, ago in ((2400.0, 90), (2460.0, 30), (9999.0, 900))  # the last one is out of the window
        ],
    )
    status, report = health(function, load_event)
    # Then the maximum of the last 5 minutes is reported, from CloudWatch, and it is over the limit
    assert (report["oldestMessageAgeSeconds"], report["oldestMessageAgeSource"]) == (2460.0, "cloudwatch")
    assert status == 503
    assert "from cloudwatch" in report["reasons"][0]


def test_cloudwatch_unavailable_falls_back_to_the_jobs_table(aws: dict[str, Any]) -> None:
    from mediavault.errors import StorageUnavailable
    from mediavault.health import health_report

    class Unreachable:
        def oldest_message_age(self, *, now: float) -> float | None:
            raise StorageUnavailable("CloudWatch request failed (AccessDenied)")

    report = health_report(
        repo=deps.repository(), queue=deps.queue(), dlq=None, settings=deps.settings(), clock=deps.clock,
        queue_age=Unreachable(),
    )  # fmt: skip
    assert (report["oldestMessageAgeSeconds"], report["oldestMessageAgeSource"]) == (0.0, "jobs-table")
    assert report["healthy"] is True


def test_messages_the_table_does_not_know_make_the_fallback_figure_unknown(aws: dict[str, Any]) -> None:
    # A {"url"} message sent straight to the queue has no job yet: the table cannot date it
    boto3.client("sqs").send_message(QueueUrl=aws["env"]["MEDIAVAULT_QUEUE_URL"], MessageBody='{"url": "x"}')
    from mediavault.health import health_report

    report = health_report(
        repo=deps.repository(), queue=deps.queue(), dlq=None, settings=deps.settings(), clock=deps.clock
    )
    assert (report["oldestMessageAgeSeconds"], report["oldestMessageAgeSource"]) == (None, None)


def test_the_default_limit_is_the_template_alarms_threshold(aws: dict[str, Any]) -> None:
    alarm = aws["template"].resources["OldestJobMessageAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert float(alarm["Threshold"]) == Settings.model_fields["oldest_message_max_seconds"].default
