"""The API function, invoked with the sample API Gateway events, against the template's resources in moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def api(aws: dict[str, Any], function: Any) -> Any:
    return function("ApiFunction")


def call(api: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = api.invoke(event)
    headers = dict(response.get("headers") or {})
    headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], json.loads(response["body"] or "null"), headers


def request(load_event: Any, method: str, path: str, body: Any = None) -> dict[str, Any]:
    event = load_event("api_create_job.json")
    event["httpMethod"] = method
    event["path"] = path
    event["requestContext"]["httpMethod"] = method
    event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    return event


def queue_bodies(aws: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=aws["env"]["MEDIAVAULT_QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_create_job_stores_the_job_and_sends_one_message(api: Any, aws: dict[str, Any], load_event: Any) -> None:
    # Given the sample POST /jobs event
    event = load_event("api_create_job.json")

    # When the API handles it
    status, job, headers = call(api, event)

    # Then it answers 202 with the queued job, in the public camelCase shape
    assert status == 202
    assert job["status"] == "queued"
    assert job["url"] == "https://example.com/posts/variants"
    assert set(job) == {
        "jobId", "url", "status", "progressPct", "attempt", "createdAt", "updatedAt", "startedAt",
        "completedAt", "platform", "account", "media", "infoKey", "error", "includeQuoted",
    }  # fmt: skip
    assert headers["Location"] == f"/jobs/{job['jobId']}"
    # And the record is in the table, with the API request id as correlation id
    item = boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"]).get_item(Key={"jobId": job["jobId"]})
    assert item["Item"]["status"] == "queued"
    assert item["Item"]["correlationId"] == event["requestContext"]["requestId"]
    # And exactly one message names the job
    assert queue_bodies(aws) == [
        {
            "url": job["url"],
            "jobId": job["jobId"],
            "force": False,
            "tenantId": "sample-key-id",  # the tenant is the caller's API key id
            "correlationId": event["requestContext"]["requestId"],
        }
    ]


def test_the_same_post_twice_is_one_job(api: Any, aws: dict[str, Any], load_event: Any) -> None:
    # Given a job for a post
    _, first, _ = call(api, load_event("api_create_job.json"))

    # When the same post is submitted again, with tracking parameters and a fragment
    status, again, _ = call(api, load_event("api_create_job.json", url=first["url"] + "?utm_source=x#top"))

    # Then the existing job is returned (200), and no second message is sent
    assert status == 200
    assert again["jobId"] == first["jobId"]
    assert len(queue_bodies(aws)) == 1


def test_force_creates_a_new_job(api: Any, load_event: Any) -> None:
    _, first, _ = call(api, load_event("api_create_job.json"))
    status, forced, _ = call(api, load_event("api_create_job.json", force=True))
    assert status == 202
    assert forced["jobId"] != first["jobId"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "ftp://example.com/video.mp4"}, 400, "INVALID_URL"),
        ({"url": "https://user:pw@example.com/p"}, 400, "INVALID_URL"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, 400, "EGRESS_BLOCKED"),
        ({"url": "http://0x7f000001/"}, 400, "EGRESS_BLOCKED"),
        ({"url": "http://localhost:8080/"}, 400, "EGRESS_BLOCKED"),
        ({"url": "https://example.com/p", "extra": 1}, 400, "INVALID_REQUEST"),
        ({"url": 42}, 400, "INVALID_REQUEST"),
        ({"url": "https://example.com/p", "force": "yes"}, 400, "INVALID_REQUEST"),
        ({}, 400, "INVALID_REQUEST"),
        ("not json", 400, "INVALID_REQUEST"),
        ({"url": "https://example.com/" + "a" * 20_000}, 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_bad_input_gets_a_stable_code_and_nothing_is_queued(
    api: Any, aws: dict[str, Any], load_event: Any, body: Any, status: int, code: str
) -> None:
    got_status, payload, _ = call(api, request(load_event, "POST", "/jobs", body))
    assert (got_status, payload["error"]["code"]) == (status, code)
    assert payload["error"]["message"]
    assert queue_bodies(aws) == []


def test_get_job_and_unknown_job(api: Any, load_event: Any) -> None:
    _, created, _ = call(api, load_event("api_create_job.json"))
    event = load_event("api_get_job.json")
    event["path"] = f"/jobs/{created['jobId']}"
    event["pathParameters"] = {"jobId": created["jobId"]}
    status, job, _ = call(api, event)
    assert (status, job["jobId"]) == (200, created["jobId"])

    status, missing, _ = call(api, load_event("api_get_job.json"))
    assert (status, missing["error"]["code"]) == (404, "JOB_NOT_FOUND")


def test_list_jobs_pages_with_a_cursor(api: Any, load_event: Any) -> None:
    for n in range(3):
        call(api, load_event("api_create_job.json", url=f"https://example.com/posts/{n}"))
    event = load_event("api_list_jobs.json")
    event["queryStringParameters"] = {"limit": "2"}
    event["multiValueQueryStringParameters"] = {"limit": ["2"]}
    status, page, _ = call(api, event)
    assert status == 200
    assert len(page["jobs"]) == 2
    assert page["nextCursor"]
    event["queryStringParameters"]["cursor"] = page["nextCursor"]
    event["multiValueQueryStringParameters"]["cursor"] = [page["nextCursor"]]
    _, rest, _ = call(api, event)
    assert len(rest["jobs"]) == 1
    assert {j["jobId"] for j in page["jobs"]}.isdisjoint({j["jobId"] for j in rest["jobs"]})


def test_cancel_then_retry(api: Any, aws: dict[str, Any], load_event: Any) -> None:
    _, job, _ = call(api, load_event("api_create_job.json"))
    status, cancelled, _ = call(api, request(load_event, "POST", f"/jobs/{job['jobId']}/cancel"))
    assert (status, cancelled["status"]) == (200, "cancelled")
    status, again, _ = call(api, request(load_event, "POST", f"/jobs/{job['jobId']}/cancel"))
    assert (status, again["error"]["code"]) == (409, "JOB_CONFLICT")
    status, retried, _ = call(api, request(load_event, "POST", f"/jobs/{job['jobId']}/retry"))
    assert (status, retried["status"], retried["attempt"]) == (202, "queued", 0)
    assert [b["jobId"] for b in queue_bodies(aws)] == [job["jobId"], job["jobId"]]


def test_media_links_need_a_completed_job(api: Any, load_event: Any) -> None:
    _, job, _ = call(api, load_event("api_create_job.json"))
    event = load_event("api_get_job.json")
    event["path"] = f"/jobs/{job['jobId']}/media"
    status, payload, _ = call(api, event)
    assert (status, payload["error"]["code"]) == (409, "JOB_CONFLICT")


def test_unknown_route_is_404_with_a_code(api: Any, load_event: Any) -> None:
    status, payload, _ = call(api, request(load_event, "GET", "/nope"))
    assert (status, payload["error"]["code"]) == (404, "NOT_FOUND")


def test_openapi_document_describes_the_routes(api: Any, load_event: Any) -> None:
    status, document, _ = call(api, request(load_event, "GET", "/openapi.json"))
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert {"/jobs", "/jobs/{jobId}", "/health"} <= set(document["paths"])
    assert "CreateJobRequest" in json.dumps(document["components"])
