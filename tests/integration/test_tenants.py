"""Tenant isolation through the API function: two API keys (two apiKeyIds in the events), one table.

Another tenant's job answers 404 JOB_NOT_FOUND on every route (never 403: the answer must not tell
whether the id exists), listings show only the caller's jobs, and a cursor cannot cross tenants.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest

from mediavault import deps
from mediavault.jobs.model import Account, JobError, MediaItem
from mediavault.media.keys import info_key, media_key, thumbnail_key

pytestmark = pytest.mark.integration

A, B = "tenant-a-key-id", "tenant-b-key-id"


@pytest.fixture
def api(aws: dict[str, Any], function: Any) -> Any:
    return function("ApiFunction")


@pytest.fixture
def call(api: Any, load_event: Any) -> Any:
    """``call(key_id, method, path, body=None, query=None) -> (status, payload)``, as API Gateway sends it."""

    def invoke(key_id: str | None, method: str, path: str, body: Any = None, query: dict[str, str] | None = None):
        event = load_event("api_create_job.json")
        event.update(httpMethod=method, path=path, body=None if body is None else json.dumps(body))
        event["requestContext"].update(httpMethod=method, path=f"/v1{path}")
        event["requestContext"]["identity"]["apiKeyId"] = key_id
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
        response = api.invoke(event)
        return response["statusCode"], json.loads(response["body"] or "null")

    return invoke


def submit(call: Any, key_id: str, url: str) -> dict[str, Any]:
    status, job = call(key_id, "POST", "/jobs", {"url": url})
    assert status == 202, job
    return dict(job)


def complete(job_id: str, tenant: str) -> list[str]:
    """Finish a job as the worker would (claim, objects under the tenant's prefix, fenced complete)."""
    repo, store = deps.repository(), deps.media_store()
    job = repo.claim(job_id, owner="worker-1", now=time.time(), lease_seconds=60)
    assert job is not None
    keys = [media_key(tenant, "generic-x", job_id, "mp4"), thumbnail_key(tenant, "generic-x", job_id, "jpg")]
    s3 = boto3.client("s3")
    for key in keys:
        s3.put_object(Bucket=store.bucket, Key=key, Body=b"bytes")
    info = info_key(tenant, "generic-x", job_id)
    store.put_json(info, {"jobId": job_id})
    item = MediaItem(kind="video", key=keys[0], content_type="video/mp4", bytes=5, sha256="0" * 64,
                     source_url="https://example.com/v.mp4", thumbnail_key=keys[1])  # fmt: skip
    repo.complete(job_id, job.fence(), now=time.time(), platform="generic",
                  account=Account(platform="generic", slug="generic-x"), media=[item], info_key=info)  # fmt: skip
    return [*keys, info]


def fail(job_id: str) -> None:
    repo = deps.repository()
    job = repo.claim(job_id, owner="worker-1", now=time.time(), lease_seconds=60)
    assert job is not None
    repo.fail(job_id, job.fence(), error=JobError(code="NO_MEDIA", message="none", retryable=False), now=time.time())


def test_another_tenants_job_is_not_found_on_every_route(call: Any) -> None:
    # Given a job of tenant A, completed with its media
    job = submit(call, A, "https://example.com/posts/a")
    complete(job["jobId"], A)
    job_id = job["jobId"]

    # When tenant B reads it, asks for its media, retries or cancels it
    answers = {
        "read": call(B, "GET", f"/jobs/{job_id}"),
        "media": call(B, "GET", f"/jobs/{job_id}/media"),
        "retry": call(B, "POST", f"/jobs/{job_id}/retry"),
        "cancel": call(B, "POST", f"/jobs/{job_id}/cancel"),
    }

    # Then every answer is the same 404 an unknown id gets (never 403: nothing tells the id exists)
    unknown = call(B, "GET", "/jobs/00000000-0000-4000-8000-000000000000")
    assert unknown[0] == 404
    for route, (status, payload) in answers.items():
        assert (status, payload["error"]["code"]) == (404, "JOB_NOT_FOUND"), route
        assert payload["error"]["message"] == f"job {job_id} does not exist", route
    # And A's job is untouched
    status, own = call(A, "GET", f"/jobs/{job_id}")
    assert (status, own["status"]) == (200, "completed")


def test_the_owner_reads_its_media_links_under_its_own_prefix(call: Any) -> None:
    job = submit(call, A, "https://example.com/posts/a")
    keys = complete(job["jobId"], A)
    status, links = call(A, "GET", f"/jobs/{job['jobId']}/media")
    assert status == 200
    assert links["expiresIn"] <= 3600
    assert [m["key"] for m in links["media"]] == [keys[0]]
    assert all(k.startswith(f"tenants/{A}/downloads/generic-x/") for k in keys)
    assert f"tenants/{A}/" in links["media"][0]["url"]
    assert links["infoUrl"]


def test_retry_and_cancel_work_for_the_owner_only(call: Any) -> None:
    failed = submit(call, A, "https://example.com/posts/failed")
    fail(failed["jobId"])
    queued = submit(call, A, "https://example.com/posts/queued")

    assert call(B, "POST", f"/jobs/{failed['jobId']}/retry")[0] == 404
    assert call(B, "POST", f"/jobs/{queued['jobId']}/cancel")[0] == 404
    status, retried = call(A, "POST", f"/jobs/{failed['jobId']}/retry")
    assert (status, retried["status"]) == (202, "queued")
    status, cancelled = call(A, "POST", f"/jobs/{queued['jobId']}/cancel")
    assert (status, cancelled["status"]) == (200, "cancelled")


def test_listing_shows_only_your_own_jobs_and_cursors_stay_in_their_tenant(call: Any) -> None:
    # Given three jobs of A and one of B
    mine = {submit(call, A, f"https://example.com/posts/{n}")["jobId"] for n in range(3)}
    theirs = submit(call, B, "https://example.com/posts/b")["jobId"]

    # Then each tenant lists its own jobs only
    status, page_b = call(B, "GET", "/jobs")
    assert (status, [j["jobId"] for j in page_b["jobs"]], page_b["nextCursor"]) == (200, [theirs], None)
    status, first = call(A, "GET", "/jobs", query={"limit": "2"})
    assert status == 200
    _, rest = call(A, "GET", "/jobs", query={"limit": "2", "cursor": first["nextCursor"]})
    assert {j["jobId"] for j in first["jobs"] + rest["jobs"]} == mine

    # And A's cursor, used by B, pages B's listing (the tenant is never read from a cursor)
    status, crossed = call(B, "GET", "/jobs", query={"limit": "2", "cursor": first["nextCursor"]})
    assert status == 200
    assert theirs not in mine
    assert not {j["jobId"] for j in crossed["jobs"]} & mine
    # And a hand-made cursor naming A's tenant is refused, not run
    forged = base64.urlsafe_b64encode(
        json.dumps({"jobId": next(iter(mine)), "tenantId": A, "createdAt": "2030-01-01T00:00:00Z"}).encode()
    ).decode()
    status, payload = call(B, "GET", "/jobs", query={"cursor": forged.rstrip("=")})
    assert (status, payload["error"]["code"]) == (400, "INVALID_REQUEST")


def test_the_same_post_is_one_job_per_tenant(call: Any) -> None:
    a = submit(call, A, "https://example.com/posts/shared")
    b = submit(call, B, "https://example.com/posts/shared")
    assert a["jobId"] != b["jobId"]
    status, again = call(A, "POST", "/jobs", {"url": "https://example.com/posts/shared"})
    assert (status, again["jobId"]) == (200, a["jobId"])


def test_a_request_without_a_key_id_is_the_default_tenants(call: Any, aws: dict[str, Any]) -> None:
    # Given a direct invoke of a key-required route (no API Gateway, so no apiKeyId)
    job = submit(call, None, "https://example.com/posts/direct")
    # Then the job is the deployment's default tenant's, which a key cannot see
    item = boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"]).get_item(Key={"jobId": job["jobId"]})
    assert item["Item"]["tenantId"] == aws["env"]["MEDIAVAULT_DEFAULT_TENANT"] == "default"
    assert call(A, "GET", f"/jobs/{job['jobId']}")[0] == 404
    assert call(None, "GET", f"/jobs/{job['jobId']}")[0] == 200
