"""Bad input on every route gets a 4xx with a stable code and a message saying what to fix, never a 500;
and the OpenAPI document describes what the routes really answer."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

pytestmark = pytest.mark.integration

JOB = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def api(aws: dict[str, Any], function: Any) -> Any:
    return function("ApiFunction")


@pytest.fixture
def send(api: Any, load_event: Any) -> Any:
    def invoke(
        method: str,
        path: str,
        body: str | None = None,
        *,
        content_type: str | None = "application/json",
        query: dict[str, str] | None = None,
        base64_body: bool = False,
    ) -> tuple[int, Any]:
        event = load_event("api_create_job.json")
        event.update(httpMethod=method, path=path, body=body, isBase64Encoded=base64_body)
        event["requestContext"].update(httpMethod=method, path=f"/v1{path}")
        headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
        response = api.invoke(event)
        headers = dict(response.get("headers") or {})
        headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
        assert headers["Content-Type"] == "application/json"
        return response["statusCode"], json.loads(response["body"] or "null")

    return invoke


def queued_messages(aws: dict[str, Any]) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws["env"]["MEDIAVAULT_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


POST_JOBS_BODIES = (  # body, content type, status, code, what the message says
        ('{"url": "https://example.com/p"}', "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE",
         "Content-Type: application/json"),
        ("url=https://example.com/p", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE", "JSON"),
        ("<url>https://example.com/p</url>", "application/xml", 415, "UNSUPPORTED_MEDIA_TYPE", "JSON"),
        ("https://example.com/p", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "JSON"),
        ("{bad", "application/json", 400, "INVALID_REQUEST", "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "application/json", 400, "INVALID_REQUEST", "nested too deeply"),
        ("", "application/json", 400, "INVALID_REQUEST", '{"url": "https://..."}'),
        ("[]", "application/json", 400, "INVALID_REQUEST", '{"url": "https://..."}'),
        ('"https://example.com/p"', "application/json", 400, "INVALID_REQUEST", '{"url": "https://..."}'),
        ('{"url": "https://example.com/p", "urls": ["x"]}', "application/json", 400, "INVALID_REQUEST",
         "urls: unknown field"),
        ('{"url": null}', "application/json", 400, "INVALID_REQUEST", "url:"),
        ('{"url": "https://example.com/p", "force": 1}', "application/json", 400, "INVALID_REQUEST", "force:"),
        (" " * 17_000 + '{"url": "https://example.com/p"}', "application/json", 413, "PAYLOAD_TOO_LARGE", "16384"),
        (json.dumps({"url": "https://example.com/" + "a" * 20_000}), "application/json", 413, "PAYLOAD_TOO_LARGE",
         "16384"),
        ('{"url": "https://example.com/p"}', "application/json; charset=utf-8", 202, None, None),
        ('{"url": "https://example.com/q"}', None, 202, None, None),
)  # fmt: skip


def test_post_jobs_bodies(send: Any, aws: dict[str, Any]) -> None:
    for body, content_type, status, code, says in POST_JOBS_BODIES:
        got, payload = send("POST", "/jobs", body, content_type=content_type)
        case = f"{content_type}: {body[:60]!r}"
        assert got == status, (case, payload)
        if code is not None:
            assert payload["error"]["code"] == code, case
            assert says in payload["error"]["message"], case
    # only the two good requests queued anything
    assert queued_messages(aws) == 2


def test_a_body_that_is_not_utf8_is_refused(send: Any) -> None:
    status, payload = send("POST", "/jobs", base64.b64encode(b"\xff\xfe{").decode(), base64_body=True)
    assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST")
    assert "UTF-8" in payload["error"]["message"]


NO_BODY_ROUTES = (
    ("GET", "/jobs"),
    ("GET", f"/jobs/{JOB}"),
    ("POST", f"/jobs/{JOB}/retry"),
    ("POST", f"/jobs/{JOB}/cancel"),
    ("GET", f"/jobs/{JOB}/media"),
    ("GET", "/health"),
)


def test_routes_that_take_no_body_refuse_one(send: Any) -> None:
    for method, path in NO_BODY_ROUTES:
        status, payload = send(method, path, '{"url": "https://example.com/p"}')
        assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST"), path
        assert "takes no request body" in payload["error"]["message"]
        status, payload = send(method, path, "x" * 20_000)
        assert (status, payload["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE"), path
        # an empty object is tolerated (clients that always send one)
        assert send(method, path, "{}")[0] != 400, path


@pytest.mark.parametrize("suffix", ["", "/retry", "/cancel", "/media"])
def test_a_malformed_job_id_is_400_an_unknown_one_404(send: Any, suffix: str) -> None:
    method = "POST" if suffix in ("/retry", "/cancel") else "GET"
    for job_id in ("a.b", "x" * 129, "%2e%2e", "a%20b", "ü"):
        status, payload = send(method, f"/jobs/{job_id}{suffix}")
        assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST"), (job_id, payload)
        assert "jobId" in payload["error"]["message"]
        assert "letters, digits" in payload["error"]["message"]
    status, payload = send(method, f"/jobs/{JOB}{suffix}")
    assert (status, payload["error"]["code"]) == (404, "JOB_NOT_FOUND")


BAD_LIST_QUERIES = (
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not base64!"}, "cursor"),
    ({"cursor": "abc"}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'{"a": "b"}').decode().rstrip("=")}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"[1]").decode().rstrip("=")}, "cursor"),
    ({"cursor": "A" * 3000}, "cursor"),
)


def test_list_query_parameters(send: Any) -> None:
    for query, says in BAD_LIST_QUERIES:
        status, payload = send("GET", "/jobs", query=query)
        assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST"), (query, payload)
        assert says in payload["error"]["message"]
    # unknown query parameters are refused like unknown body fields, on every route
    status, payload = send("GET", "/jobs", query={"colour": "blue"})
    assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST")
    assert payload["error"]["message"] == "unknown query parameter 'colour'; GET /jobs takes cursor, limit"
    status, payload = send("GET", f"/jobs/{JOB}", query={"limit": "1"})
    assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST")


# --- the OpenAPI document --------------------------------------------------------------------------


@pytest.fixture
def document(send: Any) -> dict[str, Any]:
    status, doc = send("GET", "/openapi.json")
    assert status == 200
    return dict(doc)


def test_the_document_describes_the_api_key_and_which_routes_need_it(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": pytest.approx(
        schemes["apiKey"]["description"])}}  # fmt: skip
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            keyless = path in ("/health", "/openapi.json")
            assert ("security" not in operation) == keyless, (method, path)
            if not keyless:
                assert operation["security"] == [{"apiKey": []}]
                assert {"403", "429"} <= set(operation["responses"]), (method, path)


def test_the_document_lists_the_real_statuses_with_their_models(document: dict[str, Any]) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return set(document["paths"][path][method]["responses"])

    assert statuses("post", "/jobs") == {"200", "202", "400", "403", "413", "415", "429", "503"}
    assert statuses("get", "/jobs") == {"200", "400", "403", "413", "429", "503"}
    assert statuses("get", "/jobs/{jobId}") == {"200", "400", "403", "404", "413", "429", "503"}
    assert statuses("post", "/jobs/{jobId}/retry") == {"202", "400", "403", "404", "409", "413", "429", "503"}
    assert statuses("post", "/jobs/{jobId}/cancel") == {"200", "400", "403", "404", "409", "413", "429", "503"}
    assert statuses("get", "/jobs/{jobId}/media") == {"200", "400", "403", "404", "409", "413", "429", "503"}
    assert statuses("get", "/health") == {"200", "400", "413", "503"}
    assert "422" not in json.dumps(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"JobView", "JobPage", "MediaLinks", "Health", "ErrorResponse", "GatewayError"} <= set(schemas)
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)
    ref = document["paths"]["/jobs/{jobId}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ref == {"$ref": "#/components/schemas/JobView"}
    # nullable fields are declared nullable
    started = schemas["JobView"]["properties"]["startedAt"]
    assert {"type": "null"} in started["anyOf"]


def test_the_document_names_the_prefix_it_was_fetched_under(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "/v1"}]


def test_responses_conform_to_the_document(send: Any, document: dict[str, Any]) -> None:
    """The job, list page and error bodies validate against their schemas (schemathesis checks the rest)."""
    jsonschema = pytest.importorskip("jsonschema_rs")

    def validator(name: str) -> Any:
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        return jsonschema.validator_for(schema)

    _, job = send("POST", "/jobs", '{"url": "https://example.com/p"}')
    assert validator("JobView").is_valid(job)
    _, page = send("GET", "/jobs")
    assert validator("JobPage").is_valid(page)
    _, error = send("GET", f"/jobs/{JOB}")
    assert validator("ErrorResponse").is_valid(error)
    _, invalid = send("POST", "/jobs", "{}")
    assert validator("ErrorResponse").is_valid(invalid)
