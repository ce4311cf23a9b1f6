"""Fault injection: at-least-once delivery and takeovers never produce a second completion or a second
set of objects. Runs against moto served the way the local stack serves it (one request at a time)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mediavault.config import Settings
from mediavault.errors import LeaseLost
from mediavault.jobs.model import JobStatus
from mediavault.jobs.repository import DynamoJobRepository
from mediavault.media.candidates import Candidate
from mediavault.platforms.base import PostInfo
from mediavault.queue import JobQueue
from mediavault.safety.egress import EgressPolicy, egress_client
from mediavault.storage import ObjectExists, S3MediaStore, S3MultipartUpload
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader
from mediavault.worker.extract import PageResult
from mediavault.worker.pipeline import Outcome, RetryLater, WorkerDeps, process_message
from mediavault_local.motoserver import MotoProcess
from mediavault_local.provision import provision
from mediavault_local.template import REGION, Template
from tests.conftest import site_host

pytestmark = pytest.mark.faults


class _Session:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._session = boto3.session.Session(
            region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint)

    def table(self, name: str) -> Any:
        return self._session.resource("dynamodb", endpoint_url=self.endpoint).Table(name)


@pytest.fixture(scope="module")
def cloud(template: Template) -> Iterator[dict[str, Any]]:
    with MotoProcess() as server:
        session = _Session(server.endpoint)
        physical = provision(Template(template.path), session)
        yield {
            "session": session,
            "table": physical["JobsTable"]["Ref"],
            "queue": physical["JobsQueue"]["Ref"],
            "bucket": physical["MediaBucket"]["Ref"],
        }


class _StaticExtractor:
    """The post's media, as the browser would have found it (the browser is not what is under test)."""

    def __init__(self, site: Any) -> None:
        self._site = site

    def extract(self, url: str, *, cookies: Any = (), parse_json: Any = None) -> PageResult:
        media = self._site.url("/media/clip-720p.mp4")
        info = PostInfo(
            url=url,
            author_handle="sampleuser",
            thumbnail_url=self._site.url("/media/poster.jpg"),
            candidates=[Candidate(url=media, source="og:video", width=1280, height=720)],
        )
        return PageResult(info=info)


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


def worker_deps(cloud: dict[str, Any], site: Any, clock: Any) -> WorkerDeps:
    session = cloud["session"]
    settings = Settings(table=cloud["table"], queue_url=cloud["queue"], bucket=cloud["bucket"])
    policy = EgressPolicy(allow=frozenset({site_host(site)}))
    store = S3MediaStore(session.client("s3"), cloud["bucket"])
    http = egress_client(policy, timeout=30)
    return WorkerDeps(
        repo=DynamoJobRepository(session.table(cloud["table"])),
        store=store,
        queue=JobQueue(session.client("sqs"), cloud["queue"]),
        extractor=_StaticExtractor(site),
        downloader=Downloader(http, store, max_bytes=10**9),
        settings=settings,
        clock=clock,
        http=http,
    )


def objects(cloud: dict[str, Any], job_id: str) -> list[str]:
    listing = cloud["session"].client("s3").list_objects_v2(Bucket=cloud["bucket"])
    return [o["Key"] for o in listing.get("Contents", []) if job_id in o["Key"]]


def _deadline() -> Deadline:
    return Deadline(lambda: 600_000, margin_seconds=30)


def test_the_same_message_delivered_100_times_at_once_completes_once(cloud: dict[str, Any], sample_site: Any) -> None:
    # Given one message (no job id: the worker creates the job) delivered 100 times concurrently
    body = '{"url": "%s"}' % sample_site.url("/posts/og-video")  # noqa: UP031
    message_id = f"dup-{time.time_ns()}"
    clock = _Clock()
    outcomes: list[Outcome | BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    def deliver(n: int) -> None:
        deps = worker_deps(cloud, sample_site, clock)  # each delivery its own clients, like separate workers
        barrier.wait()
        try:
            result: Outcome | BaseException = process_message(
                message_id=message_id, body=body, receipt_handle=None, owner=f"worker-{n}", deps=deps,
                deadline=_deadline(),
            )  # fmt: skip
        except BaseException as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    # Then exactly one delivery completed the job; every other one was acknowledged as a duplicate
    assert all(isinstance(o, Outcome) for o in outcomes), [o for o in outcomes if not isinstance(o, Outcome)]
    statuses = Counter(o.status for o in outcomes if isinstance(o, Outcome))
    assert statuses["completed"] == 1, statuses
    assert sum(statuses.values()) == 100
    job_id = next(o.job_id for o in outcomes if isinstance(o, Outcome))
    assert job_id is not None
    job = DynamoJobRepository(cloud["session"].table(cloud["table"])).get(job_id)
    assert job is not None
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 1)
    # And one set of objects: the video, its thumbnail, info.json
    keys = objects(cloud, job_id)
    assert len(keys) == 3, keys
    assert not cloud["session"].client("s3").list_multipart_uploads(Bucket=cloud["bucket"]).get("Uploads")


def test_a_zombie_worker_cannot_overwrite_a_job_taken_over(cloud: dict[str, Any], sample_site: Any) -> None:
    # Given worker A claimed a job and stalled past its lease, and worker B took it over and completed it
    clock = _Clock()
    deps = worker_deps(cloud, sample_site, clock)
    repo = deps.repo
    body = '{"url": "%s"}' % sample_site.url("/posts/og-video")  # noqa: UP031
    message_id = f"zombie-{time.time_ns()}"
    from mediavault.jobs.service import job_id_for_message, new_job

    job_id = job_id_for_message(message_id)
    assert repo.create(new_job(job_id=job_id, url=sample_site.url("/posts/og-video"), tenant_id="default",
                               now=clock.now(), max_attempts=5, correlation_id=None))  # fmt: skip
    zombie = repo.claim(job_id, owner="A", now=clock.now(), lease_seconds=deps.settings.lease_seconds)
    assert zombie is not None
    clock.offset = deps.settings.lease_seconds + 1
    done = process_message(message_id=message_id, body=body, receipt_handle=None, owner="B", deps=deps,
                           deadline=_deadline())  # fmt: skip
    assert done.status == "completed"

    # When A wakes up and writes progress, failure, release or completion
    from mediavault.jobs.model import JobError

    error = JobError(code="UPSTREAM_UNAVAILABLE", message="late", retryable=True)
    for write in (
        lambda: repo.progress(job_id, zombie.fence(), pct=60, now=clock.now()),
        lambda: repo.fail(job_id, zombie.fence(), error=error, now=clock.now()),
        lambda: repo.release(job_id, zombie.fence(), error=error, now=clock.now()),
    ):
        # Then every write is refused and the completed job is untouched
        with pytest.raises(LeaseLost):
            write()
    final = repo.get(job_id)
    assert final is not None
    assert (final.status, final.attempt, final.progress_pct) == (JobStatus.COMPLETED, 2, 100)


def test_the_deadline_guard_releases_the_job_and_the_next_attempt_completes_it(
    cloud: dict[str, Any], sample_site: Any
) -> None:
    # Given an invocation with less time left than the safety margin
    deps = worker_deps(cloud, sample_site, _Clock())
    body = '{"url": "%s"}' % sample_site.url("/posts/og-video")  # noqa: UP031
    message_id = f"deadline-{time.time_ns()}"
    nearly_over = Deadline(lambda: 5_000, margin_seconds=30)

    # When the worker handles the message, it releases the job instead of starting work
    with pytest.raises(RetryLater):
        process_message(message_id=message_id, body=body, receipt_handle=None, owner="W1", deps=deps,
                        deadline=nearly_over)  # fmt: skip
    from mediavault.jobs.service import job_id_for_message

    job = deps.repo.get(job_id_for_message(message_id))
    assert job is not None
    assert (job.status, job.error.code if job.error else None) == (JobStatus.QUEUED, "DEADLINE_REACHED")
    assert objects(cloud, job.job_id) == []

    # And the redelivery, with time to spare, completes it
    done = process_message(message_id=message_id, body=body, receipt_handle=None, owner="W2", deps=deps,
                           deadline=_deadline())  # fmt: skip
    assert done.status == "completed"
    assert len(objects(cloud, job.job_id)) == 3


class _PhotoExtractor(_StaticExtractor):
    def extract(self, url: str, *, cookies: Any = (), parse_json: Any = None) -> PageResult:
        photo = self._site.url("/media/photo.jpg")
        info = PostInfo(
            url=url, author_handle="burst", candidates=[Candidate(url=photo, kind="photo", source="og:image")]
        )
        return PageResult(info=info)


@pytest.mark.timeout(900)  # ~240 s alone on 2 cores; room for a loaded machine
def test_a_burst_of_1000_small_jobs_loses_nothing_and_duplicates_nothing(
    cloud: dict[str, Any], sample_site: Any
) -> None:
    # Given 1,000 messages on the queue (plain {"url"} messages: the workers create the jobs)
    session, queue = cloud["session"], cloud["queue"]
    sqs = session.client("sqs")
    started = time.monotonic()
    sent: list[str] = []
    for batch in range(100):
        entries = [{"Id": str(i), "MessageBody": '{"url": "%s"}' % sample_site.url(f"/posts/burst-{batch}-{i}")}  # noqa: UP031
                   for i in range(10)]  # fmt: skip
        sent += [m["MessageId"] for m in sqs.send_message_batch(QueueUrl=queue, Entries=entries)["Successful"]]
    assert len(sent) == 1000

    # When 4 consumers drain it (receive up to 10, process, delete the ones that succeeded)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def consume(n: int) -> None:
        deps = worker_deps(cloud, sample_site, _Clock())
        deps.extractor = _PhotoExtractor(sample_site)
        client = session.client("sqs")
        idle = 0
        while idle < 3:
            messages = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                idle += 1
                time.sleep(0.5)
                continue
            idle = 0
            for message in messages:
                try:
                    outcome = process_message(message_id=message["MessageId"], body=message["Body"],
                                              receipt_handle=message["ReceiptHandle"], owner=f"c{n}", deps=deps,
                                              deadline=_deadline())  # fmt: skip
                except RetryLater:
                    with lock:
                        outcomes["retry"] += 1
                    continue
                client.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                with lock:
                    outcomes[outcome.status] += 1

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    elapsed = time.monotonic() - started

    # Then every message made exactly one completed job, with exactly one set of objects
    repo = DynamoJobRepository(session.table(cloud["table"]))
    from mediavault.jobs.service import job_id_for_message

    jobs = [repo.get(job_id_for_message(m)) for m in sent]
    completed = [j for j in jobs if j is not None and j.status == JobStatus.COMPLETED]
    assert len(completed) == 1000, outcomes
    assert {j.attempt for j in completed} == {1}
    s3 = session.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=cloud["bucket"])
    keys = [o["Key"] for page in pages for o in page.get("Contents", []) if "/generic-burst/" in o["Key"]]
    per_job = Counter(k.rsplit("/", 1)[-1].split(".", 1)[0] for k in keys)
    assert all(per_job[j.job_id] == 2 for j in completed)  # the photo and info.json (no thumbnail of its own)
    assert outcomes["completed"] == 1000
    print(f"\n1000 jobs: {outcomes['completed']} completed, {outcomes['retry']} retried, lost 0, duplicated 0, "
          f"{elapsed:.0f}s ({1000 / elapsed:.1f} jobs/s)")  # fmt: skip


class _PausedUpload(S3MultipartUpload):
    """A multipart upload that stops right before ``CompleteMultipartUpload`` until told to go on; its
    bytes end differently from the owner's (as another variant would), so a replacement would show."""

    def __init__(self, *args: Any, reached: threading.Event, resume: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reached, self._resume = reached, resume
        self.refused = False

    def complete(self) -> None:
        self._reached.set()
        assert self._resume.wait(120), "never resumed"
        self.write(b"zombie's own tail")
        try:
            super().complete()
        except ObjectExists:
            self.refused = True
            raise


class _PausingStore(S3MediaStore):
    """The zombie's store: its first upload (the media) pauses with every part sent, not yet completed."""

    def __init__(self, client: Any, bucket: str) -> None:
        super().__init__(client, bucket)
        self.reached, self.resume = threading.Event(), threading.Event()
        self._paused = False
        self.uploads: list[_PausedUpload] = []

    def open_upload(self, key: str, *, content_type: str) -> S3MultipartUpload:
        if self._paused:
            return super().open_upload(key, content_type=content_type)
        self._paused = True
        upload = _PausedUpload(self._client, self.bucket, key, content_type=content_type, part_size=self._part_size,
                               reached=self.reached, resume=self.resume)  # fmt: skip
        self.uploads.append(upload)
        return upload


def test_a_zombie_resuming_mid_upload_after_the_new_owner_completed_changes_no_object(
    cloud: dict[str, Any], sample_site: Any
) -> None:
    # Given worker A that claimed a job and stalled mid-upload (all parts sent, not completed)
    session, bucket = cloud["session"], cloud["bucket"]
    s3 = session.client("s3")
    body = '{"url": "%s"}' % sample_site.url("/posts/og-video")  # noqa: UP031
    message_id = f"zombie-upload-{time.time_ns()}"
    zombie = worker_deps(cloud, sample_site, _Clock())
    paused = _PausingStore(session.client("s3"), bucket)
    zombie.store = paused
    zombie.downloader = Downloader(egress_client(EgressPolicy(allow=frozenset({site_host(sample_site)})), timeout=30),
                                   paused, max_bytes=10**9)  # fmt: skip
    outcome: list[Outcome | BaseException] = []

    def run_zombie() -> None:
        try:
            outcome.append(process_message(message_id=message_id, body=body, receipt_handle=None, owner="A",
                                           deps=zombie, deadline=_deadline()))  # fmt: skip
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_zombie)
    thread.start()
    assert paused.reached.wait(60), "the zombie never reached its upload's completion"

    # And worker B that took the job over once A's lease expired, and completed it
    later = _Clock()
    later.offset = zombie.settings.lease_seconds + 1
    done = process_message(message_id=message_id, body=body, receipt_handle=None, owner="B",
                           deps=worker_deps(cloud, sample_site, later), deadline=_deadline())  # fmt: skip
    assert done.status == "completed"
    job_id = done.job_id
    assert job_id is not None
    keys = sorted(objects(cloud, job_id))
    before = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys}
    content = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}

    # When A resumes: it completes its upload, then goes on (thumbnail, info.json, job record)
    paused.resume.set()
    thread.join(120)

    # Then A's completion was refused, it gave up on the job, and no object changed: bytes and ETags
    assert [u.refused for u in paused.uploads] == [True]
    assert outcome == [Outcome(job_id, "lease-lost")], outcome
    assert sorted(objects(cloud, job_id)) == keys
    assert {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys} == before
    assert {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys} == content
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    # And the job is B's completion, untouched
    job = DynamoJobRepository(session.table(cloud["table"])).get(job_id)
    assert job is not None
    assert (job.status, job.attempt) == (JobStatus.COMPLETED, 2)
