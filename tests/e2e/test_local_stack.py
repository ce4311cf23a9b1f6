"""The local stack end to end: HTTP API -> SQS -> worker containers (awslambdaric) -> Chromium -> S3."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, site_host

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "failed", "cancelled"}


def api(stack: Any, key: str | None = "<stack>") -> httpx.Client:
    headers = {"x-api-key": stack.api_key if key == "<stack>" else key} if key else {}
    return httpx.Client(base_url=stack.api.url, headers=headers, timeout=30, trust_env=False)


def wait_for(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/jobs/{job_id}")
        if response.status_code == 200 and response.json()["status"] in TERMINAL:
            return dict(response.json())
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {client.get(f'/jobs/{job_id}').text}")


def test_the_api_needs_its_key_except_for_health(stack: Any) -> None:
    with api(stack, key=None) as anonymous, api(stack, key="wrong") as wrong:
        assert anonymous.post("/jobs", json={"url": "https://example.com/"}).status_code == 403
        assert wrong.get("/jobs").json() == {"message": "Forbidden"}
        assert anonymous.get("/nope").json() == {"message": "Missing Authentication Token"}
        health = anonymous.get("/health")
        assert health.status_code == 200
        assert health.json()["healthy"] is True
        assert anonymous.get("/openapi.json").json()["info"]["title"] == "Media Vault API"


def test_a_post_submitted_over_http_is_archived(stack: Any, module_site: Any) -> None:
    # Given the local stack and a post whose player loads its variants as JSON
    url = module_site.url("/posts/variants")
    with api(stack) as client:
        # When it is submitted
        created = client.post("/jobs", json={"url": url, "force": True})
        assert created.status_code == 202
        job_id = created.json()["jobId"]
        # Then it completes, with progress seen on the way
        job = wait_for(client, job_id)
        assert job["status"] == "completed", job
        assert job["progressPct"] == 100
        assert job["attempt"] == 1
        (media,) = job["media"]
        assert media["sourceUrl"].endswith("clip-1080p.mp4")
        # And presigned links give the stored bytes back
        links = client.get(f"/jobs/{job_id}/media").json()
        assert links["expiresIn"] <= 3600
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=stack.info()["bucket"], Key=media["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == media["sha256"]
    assert len(body) == media["bytes"] == (ROOT / ".mediavault/samples/clip-1080p.mp4").stat().st_size


def test_a_plain_sqs_message_is_a_job(stack: Any, module_site: Any) -> None:
    from mediavault.jobs.service import job_id_for_message

    # Given a message with nothing but a URL, as `aws sqs send-message` would send it
    sent = stack.client("sqs").send_message(
        QueueUrl=stack.info()["queueUrl"], MessageBody=json.dumps({"url": module_site.url("/posts/jsonld")})
    )
    # Then the worker creates the job itself, under an id derived from the message, and completes it
    with api(stack) as client:
        job = wait_for(client, job_id_for_message(sent["MessageId"]))
    assert job["status"] == "completed"
    assert job["media"][0]["sourceUrl"].endswith("clip-1080p.mp4")


def test_a_failed_job_can_be_retried(stack: Any, module_site: Any) -> None:
    with api(stack) as client:
        job = wait_for(client, client.post("/jobs", json={"url": module_site.url("/posts/no-media")}).json()["jobId"])
        assert (job["status"], job["error"]["code"]) == ("failed", "NO_MEDIA")
        retried = client.post(f"/jobs/{job['jobId']}/retry")
        assert (retried.status_code, retried.json()["status"]) == (202, "queued")
        again = wait_for(client, job["jobId"])
        assert (again["status"], again["attempt"]) == ("failed", 1)


def test_tenants_see_only_their_own_jobs_and_media(stack: Any, module_site: Any) -> None:
    from mediavault_local.stack import DEFAULT_API_KEY_ID
    from tests.e2e.conftest import TENANT_B, TENANT_B_KEY

    with api(stack) as tenant_a, api(stack, key=TENANT_B_KEY) as tenant_b:
        # Given a post archived by tenant A (the stack's own key)
        created = tenant_a.post("/jobs", json={"url": module_site.url("/posts/og-video"), "force": True})
        job = wait_for(tenant_a, created.json()["jobId"])
        assert job["status"] == "completed", job
        # Then its objects live under A's prefix
        (media,) = job["media"]
        prefix = f"tenants/{DEFAULT_API_KEY_ID}/downloads/"
        assert media["key"].startswith(prefix)
        assert media["thumbnailKey"].startswith(prefix)
        assert job["infoKey"].startswith(prefix)
        keys = [o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=stack.info()["bucket"])["Contents"]]
        assert all(k.startswith("tenants/") for k in keys)

        # And tenant B cannot read, list, link, retry or cancel it: the same 404 as an unknown id
        job_id = job["jobId"]
        for method, path in (("GET", f"/jobs/{job_id}"), ("GET", f"/jobs/{job_id}/media"),
                             ("POST", f"/jobs/{job_id}/retry"), ("POST", f"/jobs/{job_id}/cancel")):  # fmt: skip
            answer = tenant_b.request(method, path)
            assert (answer.status_code, answer.json()["error"]["code"]) == (404, "JOB_NOT_FOUND"), path
        assert job_id not in {j["jobId"] for j in tenant_b.get("/jobs", params={"limit": 100}).json()["jobs"]}
        assert job_id in {j["jobId"] for j in tenant_a.get("/jobs", params={"limit": 100}).json()["jobs"]}
        assert tenant_a.get(f"/jobs/{job_id}/media").status_code == 200

        # And B's own job is B's: under B's prefix, invisible to A
        own = wait_for(
            tenant_b, tenant_b.post("/jobs", json={"url": module_site.url("/posts/og-video")}).json()["jobId"]
        )
        assert own["status"] == "completed", own
        assert own["jobId"] != job_id  # the same post is one job per tenant
        assert own["media"][0]["key"].startswith(f"tenants/{TENANT_B}/downloads/")
        assert tenant_a.get(f"/jobs/{own['jobId']}").status_code == 404


def test_queue_messages_carry_their_tenant_or_land_in_the_default_one(stack: Any, module_site: Any) -> None:
    from mediavault.jobs.service import job_id_for_message
    from mediavault_local.stack import DEFAULT_API_KEY_ID
    from tests.e2e.conftest import TENANT_B, TENANT_B_KEY

    sqs, queue_url = stack.client("sqs"), stack.info()["queueUrl"]
    url = module_site.url("/posts/video-tag")
    # Given one message with no tenant and one naming tenant B
    plain = sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"url": url}))
    for_b = sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"url": url, "tenantId": TENANT_B}))
    with api(stack) as tenant_a, api(stack, key=TENANT_B_KEY) as tenant_b:
        # Then the plain one is the default tenant's (locally: the stack's own key), the other B's
        default_job = wait_for(tenant_a, job_id_for_message(plain["MessageId"]))
        b_job = wait_for(tenant_b, job_id_for_message(for_b["MessageId"]))
        assert default_job["media"][0]["key"].startswith(f"tenants/{DEFAULT_API_KEY_ID}/downloads/")
        assert b_job["media"][0]["key"].startswith(f"tenants/{TENANT_B}/downloads/")
        assert tenant_b.get(f"/jobs/{default_job['jobId']}").status_code == 404
        assert tenant_a.get(f"/jobs/{b_job['jobId']}").status_code == 404


def test_the_workers_run_the_image_entrypoint_and_stay_warm(stack: Any, module_site: Any) -> None:
    # Every worker container is `python -m awslambdaric app.lambda_handler`, as in the image
    with api(stack) as client:
        for path in ("/posts/og-video", "/posts/video-tag"):
            wait_for(client, client.post("/jobs", json={"url": module_site.url(path), "force": True}).json()["jobId"])
    used = [w for w in stack.workers if w.invocations]
    assert used
    assert all(w.starts == 1 for w in used)  # no container was restarted
    logs = "".join(p.read_text() for p in (ROOT / ".mediavault" / "logs").glob("worker-*.log"))
    assert "browser launched" in logs


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediavault_local.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_local_invoke_runs_each_function_from_its_sample_event(module_site: Any, tmp_path: Path) -> None:
    # API and recovery from events/ as they are
    health = run_cli("local", "invoke", "ApiFunction", "-e", "events/api_health.json")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["statusCode"] == 200
    sweep = run_cli("local", "invoke", "RecoveryFunction", "-e", "events/recovery_schedule.json")
    assert sweep.returncode == 0, sweep.stderr
    assert json.loads(sweep.stdout)["requeued"] == 0

    # The worker (through awslambdaric) with the sample SQS event, its URL pointed at the sample site
    event = json.loads((ROOT / "events" / "sqs_url_only.json").read_text())
    event["Records"][0]["body"] = json.dumps({"url": module_site.url("/posts/og-video")})
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    worker = run_cli("local", "invoke", "WorkerFunction", "-e", str(path), "--allow", site_host(module_site))
    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout) == {"batchItemFailures": []}


def test_local_up_prints_and_writes_its_endpoints_and_stops_on_sigterm() -> None:
    state = ROOT / ".mediavault" / "local.json"
    if state.exists():
        pytest.skip("a local stack is already running from this checkout")
    process = subprocess.Popen(
        [sys.executable, "-m", "mediavault_local.cli", "local", "up", "--port", "0", "--aws-port", "0"],
        cwd=ROOT,
        env={**os.environ, "MEDIAVAULT_LOCAL_API_KEY": "fixed-test-key"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        info = json.loads(state.read_text())
        assert info["apiKey"] == "fixed-test-key"
        assert {"apiUrl", "awsEndpoint", "bucket", "table", "queueUrl"} <= set(info)
        with httpx.Client(trust_env=False) as client:
            assert client.get(info["apiUrl"] + "/health").json()["healthy"] is True
            listed = client.get(info["apiUrl"] + "/jobs", headers={"x-api-key": "fixed-test-key"})
            assert listed.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert "fixed-test-key" in output
    assert "stopped." in output
    assert not state.exists()
