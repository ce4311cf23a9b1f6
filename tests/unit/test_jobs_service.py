"""Job services (submit, get, retry, cancel) over the in-memory repository and queue."""

from __future__ import annotations

from typing import Any

import pytest

from mediavault.errors import EgressBlocked, InvalidUrl, JobConflict, JobNotFound
from mediavault.jobs.model import JobStatus
from mediavault.jobs.service import Submitted, cancel_job, get_job, retry_job, submit_job
from mediavault.safety.egress import EgressPolicy
from tests.unit.fakes import FakeClock, FakeQueue, InMemoryJobRepository

pytestmark = pytest.mark.unit

POST = "https://site.example/posts/1"


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("the API must not resolve names")


@pytest.fixture
def submit(repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock):
    def call(url: str, *, force: bool = False, tenant: str = "tenant-a", **overrides: Any) -> Submitted:
        kwargs: dict[str, Any] = {
            "force": force, "tenant_id": tenant, "correlation_id": "corr-1", "repo": repo, "queue": queue,
            "policy": EgressPolicy(resolver=no_dns), "clock": clock, "max_attempts": 5,
        }  # fmt: skip
        kwargs.update(overrides)
        return submit_job(url, **kwargs)

    return call


def test_submit_stores_a_queued_job_and_sends_its_message(
    submit, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    # When a post is submitted
    result = submit("https://SITE.example/posts/1#comments")
    # Then a queued job with the canonical URL exists, and its message names it
    assert result.created is True
    job = repo.get(result.job.job_id)
    assert job is not None
    assert (job.status, job.url, job.tenant_id, job.max_attempts) == (JobStatus.QUEUED, POST, "tenant-a", 5)
    assert job.message_sent_at is not None
    (message,) = queue.sent
    assert (message.url, message.job_id, message.tenant_id, message.correlation_id) == (
        POST,
        job.job_id,
        "tenant-a",
        "corr-1",
    )


def test_the_same_post_with_other_trackers_is_one_job(submit, repo: InMemoryJobRepository, queue: FakeQueue) -> None:
    # Given a post submitted once
    first = submit("https://site.example/posts/1?utm_source=twitter&id=7")
    # When it is submitted again with different tracking parameters
    second = submit("https://site.example/posts/1?id=7&fbclid=abc")
    # Then the existing job is returned, not created, and no second message is sent
    assert (first.created, second.created) == (True, False)
    assert second.job.job_id == first.job.job_id
    assert len(repo.items) == 1
    assert len(queue.sent) == 1


def test_dedupe_is_per_tenant(submit, repo: InMemoryJobRepository) -> None:
    a = submit(POST, tenant="tenant-a")
    b = submit(POST, tenant="tenant-b")
    assert b.created is True
    assert a.job.job_id != b.job.job_id


def test_force_creates_a_new_job_for_the_same_post(submit, repo: InMemoryJobRepository, queue: FakeQueue) -> None:
    first = submit(POST)
    forced = submit(POST, force=True)
    assert forced.created is True
    assert forced.job.job_id != first.job.job_id
    assert len(repo.items) == 2
    assert len(queue.sent) == 2


def test_a_failed_job_is_reopened_and_enqueued_again(submit, repo: InMemoryJobRepository, queue: FakeQueue) -> None:
    # Given a job that failed after using its attempts
    first = submit(POST)
    repo.put(first.job.model_copy(update={"status": JobStatus.FAILED, "attempt": 5}))
    # When the same post is submitted again
    again = submit(POST)
    # Then the same job is queued again with a fresh budget and a new message
    assert again.created is True
    assert again.job.job_id == first.job.job_id
    assert (again.job.status, again.job.attempt, again.job.error) == (JobStatus.QUEUED, 0, None)
    assert [m.job_id for m in queue.sent] == [first.job.job_id, first.job.job_id]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://0x7f000001/x", "http://[::1]/", "http://169.254.169.254/"]
)
def test_a_literal_private_address_is_refused(submit, repo: InMemoryJobRepository, url: str) -> None:
    with pytest.raises(EgressBlocked):
        submit(url)
    assert repo.items == {}


@pytest.mark.parametrize("url", ["ftp://site.example/a", "not a url", "https://user:pw@site.example/"])
def test_an_invalid_url_is_refused(submit, repo: InMemoryJobRepository, url: str) -> None:
    with pytest.raises(InvalidUrl):
        submit(url)
    assert repo.items == {}


def test_a_url_that_grows_past_the_message_limit_is_refused_up_front(submit, repo: InMemoryJobRepository) -> None:
    # Given a 2 KB URL with a non-ASCII query (normalisation percent-encodes it to ~9x its length)
    url = "https://site.example/search?q=" + "中" * 1000
    # When submitted, Then it is refused as INVALID_URL and nothing is stored
    with pytest.raises(InvalidUrl):
        submit(url)
    assert repo.items == {}


def test_a_message_send_failure_still_returns_the_stored_job(repo: InMemoryJobRepository, submit) -> None:
    # Given SQS that refuses every send
    failing = FakeQueue(fail_sends=True)
    # When a post is submitted
    result = submit(POST, queue=failing)
    # Then the job is stored and returned; recovery will send its message later
    assert result.created is True
    job = repo.get(result.job.job_id)
    assert job is not None
    assert job.status == JobStatus.QUEUED
    assert job.message_sent_at is None


def test_cancel_works_only_from_queued(submit, repo: InMemoryJobRepository, clock: FakeClock) -> None:
    # Given a queued job
    job = submit(POST).job
    # When cancelled
    cancelled = cancel_job(job.job_id, tenant_id="tenant-a", repo=repo, clock=clock)
    # Then it is cancelled, and cancelling again is a conflict
    assert cancelled.status == JobStatus.CANCELLED
    with pytest.raises(JobConflict, match="cancelled"):
        cancel_job(job.job_id, tenant_id="tenant-a", repo=repo, clock=clock)


def test_a_running_job_cannot_be_cancelled(submit, repo: InMemoryJobRepository, clock: FakeClock) -> None:
    job = submit(POST).job
    assert repo.claim(job.job_id, owner="w-1", now=clock.now(), lease_seconds=960) is not None
    with pytest.raises(JobConflict, match="running"):
        cancel_job(job.job_id, tenant_id="tenant-a", repo=repo, clock=clock)
    stored = repo.get(job.job_id)
    assert stored is not None
    assert stored.status == JobStatus.RUNNING


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_requeues_failed_or_cancelled_jobs(
    submit, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock, status: JobStatus
) -> None:
    job = submit(POST).job
    repo.put(job.model_copy(update={"status": status, "attempt": 3}))
    retried = retry_job(job.job_id, tenant_id="tenant-a", repo=repo, queue=queue, clock=clock)
    assert (retried.status, retried.attempt) == (JobStatus.QUEUED, 0)
    assert len(queue.sent) == 2


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED])
def test_retry_of_any_other_state_is_a_conflict(
    submit, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock, status: JobStatus
) -> None:
    job = submit(POST).job
    repo.put(job.model_copy(update={"status": status}))
    with pytest.raises(JobConflict):
        retry_job(job.job_id, tenant_id="tenant-a", repo=repo, queue=queue, clock=clock)
    assert len(queue.sent) == 1


def test_a_job_of_another_tenant_is_not_found(submit, repo: InMemoryJobRepository, queue, clock) -> None:
    job = submit(POST, tenant="tenant-a").job
    assert get_job(job.job_id, tenant_id="tenant-a", repo=repo).job_id == job.job_id
    with pytest.raises(JobNotFound):
        get_job(job.job_id, tenant_id="tenant-b", repo=repo)
    with pytest.raises(JobNotFound):
        cancel_job(job.job_id, tenant_id="tenant-b", repo=repo, clock=clock)
    with pytest.raises(JobNotFound):
        get_job("no-such-job", tenant_id="tenant-a", repo=repo)


def test_a_platform_post_is_one_archive_entry_whatever_url_names_it(
    submit, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    # Given an X post archived once (its job completed)
    first = submit("https://x.com/someone/status/1790000000000000001")
    job = repo.get(first.job.job_id)
    assert job is not None
    assert (job.platform, job.post_key) == ("x", "x:1790000000000000001")
    repo.put(job.model_copy(update={"status": JobStatus.COMPLETED}))
    # When the same post is submitted under other URL forms (another host, /i/status/, a mirror)
    again = [
        submit(url)
        for url in (
            "https://twitter.com/i/status/1790000000000000001",
            "https://mobile.x.com/other/status/1790000000000000001/video/1",
            "https://fxtwitter.com/x/status/1790000000000000001",
        )
    ]
    # Then each answer is the existing completed job, and nothing was sent again
    assert {s.job.job_id for s in again} == {first.job.job_id}
    assert all(not s.created and s.job.status == JobStatus.COMPLETED for s in again)
    assert len(queue.sent) == 1
    # ...unless force: a new job
    forced = submit("https://twitter.com/i/status/1790000000000000001", force=True)
    assert forced.created
    assert forced.job.job_id != first.job.job_id
    # ...and another tenant's submission of the same post is its own job
    other = submit("https://x.com/someone/status/1790000000000000001", tenant="tenant-b")
    assert other.created
    assert other.job.job_id != first.job.job_id


def test_include_quoted_travels_from_the_submission_to_the_message(submit, queue: FakeQueue) -> None:
    result = submit("https://bsky.app/profile/alice.example/post/3kabc2defgh2x", include_quoted=True)
    assert result.job.include_quoted is True
    assert result.job.platform == "bluesky"
    assert queue.sent[-1].include_quoted is True
