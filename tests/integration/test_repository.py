"""The job state machine on DynamoDB: claims, leases and fencing are conditional writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mediavault.errors import LeaseLost
from mediavault.jobs.model import JobError, JobStatus
from mediavault.jobs.repository import DynamoJobRepository
from mediavault.jobs.service import new_job
from mediavault_local.motoserver import MotoProcess
from mediavault_local.provision import provision
from mediavault_local.template import REGION, Template

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0
LEASE = 960
ERROR = JobError(code="UPSTREAM_UNAVAILABLE", message="503", retryable=True)


@pytest.fixture
def repo(aws: dict[str, Any]) -> DynamoJobRepository:
    return DynamoJobRepository(boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"]))


def queued(repo: DynamoJobRepository, job_id: str = "job-1", max_attempts: int = 5) -> None:
    job = new_job(job_id=job_id, url="https://example.com/p", tenant_id="default", now=NOW,
                  max_attempts=max_attempts, correlation_id=None)  # fmt: skip
    assert repo.create(job)


def test_create_is_idempotent(repo: DynamoJobRepository) -> None:
    queued(repo)
    again = new_job(job_id="job-1", url="https://other.example/", tenant_id="default", now=NOW + 5,
                    max_attempts=5, correlation_id=None)  # fmt: skip
    assert repo.create(again) is False
    assert repo.get("job-1").url == "https://example.com/p"  # type: ignore[union-attr]


def test_only_one_claim_wins_while_the_lease_lives(repo: DynamoJobRepository) -> None:
    queued(repo)
    first = repo.claim("job-1", owner="a", now=NOW, lease_seconds=LEASE)
    assert first is not None
    assert (first.status, first.attempt, first.lease_owner) == (JobStatus.RUNNING, 1, "a")
    assert first.lease_expires_at == int(NOW) + LEASE
    assert repo.claim("job-1", owner="b", now=NOW + LEASE - 1, lease_seconds=LEASE) is None


def test_an_expired_lease_can_be_taken_over_and_the_zombie_is_fenced_out(repo: DynamoJobRepository) -> None:
    # Given worker A claimed the job and went silent past its lease
    queued(repo)
    zombie = repo.claim("job-1", owner="a", now=NOW, lease_seconds=LEASE)
    assert zombie is not None
    # When worker B claims it after expiry
    taken = repo.claim("job-1", owner="b", now=NOW + LEASE + 1, lease_seconds=LEASE)
    assert taken is not None
    assert taken.attempt == 2
    # Then every write of A is refused, and B's are accepted
    for write in (
        lambda: repo.progress("job-1", zombie.fence(), pct=50, now=NOW + LEASE + 2),
        lambda: repo.fail("job-1", zombie.fence(), error=ERROR, now=NOW + LEASE + 2),
        lambda: repo.release("job-1", zombie.fence(), error=ERROR, now=NOW + LEASE + 2),
        lambda: repo.renew("job-1", zombie.fence(), now=NOW + LEASE + 2, lease_seconds=LEASE),
    ):
        with pytest.raises(LeaseLost):
            write()
    repo.progress("job-1", taken.fence(), pct=50, now=NOW + LEASE + 3)
    assert repo.get("job-1").progress_pct == 50  # type: ignore[union-attr]


def test_no_claim_once_attempts_are_spent(repo: DynamoJobRepository) -> None:
    queued(repo, max_attempts=2)
    for n in range(2):
        job = repo.claim("job-1", owner=f"w{n}", now=NOW + n, lease_seconds=LEASE)
        assert job is not None
        repo.release("job-1", job.fence(), error=ERROR, now=NOW + n)
    assert repo.claim("job-1", owner="w3", now=NOW + 9, lease_seconds=LEASE) is None


def test_release_puts_the_job_back_with_its_cause(repo: DynamoJobRepository) -> None:
    queued(repo)
    job = repo.claim("job-1", owner="a", now=NOW, lease_seconds=LEASE)
    assert job is not None
    released = repo.release("job-1", job.fence(), error=ERROR, now=NOW + 1)
    assert released.status == JobStatus.QUEUED
    assert released.error == ERROR
    assert released.lease_owner is None


def test_recovery_transitions_need_the_observed_lease(repo: DynamoJobRepository) -> None:
    queued(repo)
    job = repo.claim("job-1", owner="a", now=NOW, lease_seconds=LEASE)
    assert job is not None
    # Not expired yet: recovery may not touch it
    assert repo.requeue_expired(job, now=NOW + 10, error=ERROR) is None
    # Expired: requeued once; a second sweep with the same stale view changes nothing
    assert repo.requeue_expired(job, now=NOW + LEASE + 1, error=ERROR) is not None
    assert repo.requeue_expired(job, now=NOW + LEASE + 2, error=ERROR) is None


def test_indexes_answer_by_status_and_tenant(repo: DynamoJobRepository) -> None:
    for n in range(3):
        queued(repo, f"job-{n}")
    job = repo.claim("job-0", owner="a", now=NOW, lease_seconds=LEASE)
    assert job is not None
    assert {j.job_id for j in repo.by_status(JobStatus.QUEUED)} == {"job-1", "job-2"}
    assert repo.count_by_status(JobStatus.RUNNING) == 1
    jobs, cursor = repo.by_tenant("default", limit=2)
    assert len(jobs) == 2
    assert cursor is not None


@pytest.fixture(scope="module")
def moto_server(template: Template) -> Iterator[dict[str, Any]]:
    """moto as the local stack runs it: its own process, one request at a time."""
    with MotoProcess() as server:
        session = boto3.session.Session(
            region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        fresh = Template(template.path)
        physical = provision(fresh, _EndpointSession(session, server.endpoint))
        yield {"endpoint": server.endpoint, "session": session, "table": physical["JobsTable"]["Ref"]}


class _EndpointSession:
    def __init__(self, session: Any, endpoint: str) -> None:
        self._session, self._endpoint = session, endpoint

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint)


def test_concurrent_claims_on_the_local_moto_server_have_exactly_one_winner(moto_server: dict[str, Any]) -> None:
    # Given the single-threaded moto server the local stack uses, and 30 jobs
    table = (
        moto_server["session"].resource("dynamodb", endpoint_url=moto_server["endpoint"]).Table(moto_server["table"])
    )
    repo = DynamoJobRepository(table)
    rounds, claimers = 30, 4
    wins: dict[str, list[str]] = {}
    for n in range(rounds):
        queued(repo, f"race-{n}")
        wins[f"race-{n}"] = []

    # When four workers race to claim each job at the same instant
    def claim(worker: str, job_id: str, barrier: threading.Barrier) -> None:
        own = DynamoJobRepository(
            moto_server["session"]
            .resource("dynamodb", endpoint_url=moto_server["endpoint"])
            .Table(moto_server["table"])
        )
        barrier.wait()
        if own.claim(job_id, owner=worker, now=NOW, lease_seconds=LEASE) is not None:
            wins[job_id].append(worker)

    for job_id in wins:
        barrier = threading.Barrier(claimers)
        threads = [threading.Thread(target=claim, args=(f"w{i}", job_id, barrier)) for i in range(claimers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # Then every job has exactly one winner
    assert {job_id: len(w) for job_id, w in wins.items()} == dict.fromkeys(wins, 1)
