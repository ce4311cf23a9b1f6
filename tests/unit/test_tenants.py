"""Tenants: the API key -> tenant rule, the default tenant, and the worker keeping each job under its tenant."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediavault.config import Settings
from mediavault.errors import MalformedMessage
from mediavault.jobs.model import JobStatus
from mediavault.jobs.service import job_id_for_message, list_jobs, new_job
from mediavault.queue import parse_body
from mediavault.tenants import TENANT_ID_PATTERN, check_tenant_id, is_tenant_id, tenant_for_api_key
from tests.unit.fakes import FakeExtractor, InMemoryJobRepository
from tests.unit.test_worker_pipeline import MP4, POST, Worker, video_post

pytestmark = pytest.mark.unit

VIDEO = "https://cdn.example/v.mp4"


def test_the_tenant_is_the_api_key_id() -> None:
    # API Gateway key ids are ten lower-case letters and digits: used as they are
    assert tenant_for_api_key("a1b2c3d4e5", default="default") == "a1b2c3d4e5"
    assert tenant_for_api_key("local-key", default="default") == "local-key"


def test_no_key_id_means_the_default_tenant() -> None:
    assert tenant_for_api_key(None, default="default") == "default"
    assert tenant_for_api_key("", default="acme") == "acme"


@pytest.mark.parametrize("key_id", ["../x", "a/b", "a" * 100, "ключ", "with space", "x.y"])
def test_an_unsafe_key_id_maps_to_a_stable_safe_tenant(key_id: str) -> None:
    tenant = tenant_for_api_key(key_id, default="default")
    assert is_tenant_id(tenant)
    assert tenant.startswith("key-")
    assert tenant == tenant_for_api_key(key_id, default="other")  # stable
    assert tenant != tenant_for_api_key(key_id + "2", default="default")


def test_tenant_ids_are_checked() -> None:
    assert check_tenant_id("tenant_B-2") == "tenant_B-2"
    for bad in ("", "-x", "_x", "a" * 65, "a/b", "a.b", "a b"):
        with pytest.raises(ValueError, match="tenant id"):
            check_tenant_id(bad)


def test_the_default_tenant_setting_follows_the_same_rule() -> None:
    pattern = Settings.model_fields["default_tenant"].metadata[0].pattern
    assert pattern == TENANT_ID_PATTERN
    assert Settings(table="t", queue_url="q", bucket="b").default_tenant == "default"
    with pytest.raises(ValidationError):
        Settings(table="t", queue_url="q", bucket="b", default_tenant="../x")


def test_a_message_tenant_must_be_a_tenant_id() -> None:
    assert parse_body('{"url": "https://x/p", "tenantId": "acme"}').tenant_id == "acme"
    with pytest.raises(ValidationError):
        parse_body('{"url": "https://x/p", "tenantId": "../acme"}')


# --- the worker -----------------------------------------------------------------------------------


def test_a_message_with_a_tenant_stores_its_job_and_objects_under_that_tenant() -> None:
    # Given a bare message that names its tenant
    worker = Worker(extractor=FakeExtractor(video_post(VIDEO)), routes={VIDEO: (200, MP4, "video/mp4")})
    # When it is processed
    worker.deliver({"url": POST, "tenantId": "acme"})
    # Then the job belongs to that tenant and every object is under its prefix
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert (job.tenant_id, job.status) == ("acme", JobStatus.COMPLETED)
    assert job.media[0].key.startswith("tenants/acme/downloads/generic-alice/")
    assert job.info_key is not None
    assert job.info_key.startswith("tenants/acme/downloads/")
    assert all(key.startswith("tenants/acme/") for key in (*worker.store.objects, *worker.store.documents))


def test_a_message_without_a_tenant_lands_in_the_configured_default_tenant() -> None:
    settings = Settings(table="t", queue_url="q", bucket="b", default_tenant="ops")
    worker = Worker(
        extractor=FakeExtractor(video_post(VIDEO)), routes={VIDEO: (200, MP4, "video/mp4")}, settings=settings
    )
    worker.deliver({"url": POST})
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert job.tenant_id == "ops"
    assert job.media[0].key.startswith("tenants/ops/")


def test_a_message_naming_a_job_cannot_move_it_to_another_tenant() -> None:
    # Given tenant A's job
    worker = Worker(extractor=FakeExtractor(video_post(VIDEO)), routes={VIDEO: (200, MP4, "video/mp4")})
    worker.repo.put(new_job(job_id="job-a", url=POST, tenant_id="tenant-a", now=worker.clock.now(), max_attempts=5,
                            correlation_id=None))  # fmt: skip
    # When a message names it with another tenant
    worker.deliver({"url": POST, "jobId": "job-a", "tenantId": "tenant-b"})
    # Then it is still A's job, stored under A's prefix
    job = worker.repo.get("job-a")
    assert job is not None
    assert (job.tenant_id, job.status) == ("tenant-a", JobStatus.COMPLETED)
    assert job.media[0].key.startswith("tenants/tenant-a/")


def test_a_message_with_an_unsafe_tenant_is_malformed() -> None:
    worker = Worker(extractor=FakeExtractor(video_post(VIDEO)))
    with pytest.raises(MalformedMessage):
        worker.deliver({"url": POST, "tenantId": "../other"})
    assert worker.repo.items == {}


# --- listing ----------------------------------------------------------------------------------------


def test_listing_shows_only_the_tenants_jobs() -> None:
    repo = InMemoryJobRepository()
    for n, tenant in enumerate(["a", "b", "a"]):
        repo.put(new_job(job_id=f"j{n}", url=f"https://x/{n}", tenant_id=tenant, now=1_800_000_000 + n,
                         max_attempts=5, correlation_id=None))  # fmt: skip
    jobs, _ = list_jobs(tenant_id="a", repo=repo, limit=10, cursor=None)
    assert [j.job_id for j in jobs] == ["j2", "j0"]
