"""The worker pipeline with in-memory fakes and the real Downloader over an httpx MockTransport."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest

from mediavault.config import Settings
from mediavault.errors import InvalidMedia, MalformedMessage, UpstreamUnavailable
from mediavault.jobs.model import JobStatus
from mediavault.jobs.service import job_id_for_message, new_job
from mediavault.media.candidates import Candidate
from mediavault.platforms.base import PostInfo
from mediavault.worker import pipeline
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader
from mediavault.worker.pipeline import Outcome, RetryLater, WorkerDeps, backoff_seconds, process_message
from tests.unit.fakes import FakeClock, FakeExtractor, FakeQueue, FakeStore, InMemoryJobRepository

pytestmark = pytest.mark.unit

POST = "https://site.example/posts/1"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(range(256)) * 48  # 12 KiB + header
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200
HTML = b"<!DOCTYPE html><html><head><title>Error</title></head><body>Access denied</body></html>"

Responder = Callable[[httpx.Request], httpx.Response]


def serve(routes: dict[str, tuple[int, bytes, str]]) -> Responder:
    """An httpx MockTransport handler serving fixed bodies by URL (404 for anything else)."""

    def respond(request: httpx.Request) -> httpx.Response:
        status, body, ctype = routes.get(str(request.url), (404, b"not found", "text/plain"))
        return httpx.Response(status, content=body, headers={"content-type": ctype})

    return respond


def video_post(*urls: str, poster: str | None = None) -> PostInfo:
    """A post whose candidates are ``urls``, best first (decreasing bitrate)."""
    cands = [
        Candidate(url=u, source="network-json", content_type="video/mp4", bitrate=2_000_000 - i, poster=poster)
        for i, u in enumerate(urls)
    ]
    return PostInfo(url=POST, author_handle="alice", author_name="Alice", caption="hi", candidates=cands)


class Worker:
    """Wires the fakes together and delivers messages like the SQS handler does."""

    def __init__(
        self,
        *,
        extractor: FakeExtractor,
        routes: dict[str, tuple[int, bytes, str]] | None = None,
        settings: Settings | None = None,
        remaining_ms: Callable[[], int] = lambda: 600_000,
    ) -> None:
        self.settings = settings or Settings(table="t", queue_url="q", bucket="b")
        self.repo = InMemoryJobRepository()
        self.store = FakeStore()
        self.queue = FakeQueue()
        self.clock = FakeClock()
        self.extractor = extractor
        self.fetched: list[str] = []
        respond = serve(routes or {})

        def recording(request: httpx.Request) -> httpx.Response:
            self.fetched.append(str(request.url))
            return respond(request)

        client = httpx.Client(transport=httpx.MockTransport(recording))
        downloader = Downloader(client, self.store, max_bytes=self.settings.max_media_bytes)
        self.deps = WorkerDeps(
            repo=self.repo, store=self.store, queue=self.queue, extractor=extractor,  # type: ignore[arg-type]
            downloader=downloader, settings=self.settings, clock=self.clock, http=client,
        )  # fmt: skip
        self.deadline = Deadline(remaining_ms, margin_seconds=self.settings.deadline_margin_seconds)

    def deliver(
        self, body: dict | str, *, message_id: str = "msg-1", receipt: str = "rh-1", owner: str = "w-1"
    ) -> Outcome:
        text = body if isinstance(body, str) else json.dumps(body)
        return process_message(
            message_id=message_id, body=text, receipt_handle=receipt, owner=owner, deps=self.deps,
            deadline=self.deadline,
        )  # fmt: skip


# --- backoff ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 20])
def test_backoff_is_between_half_and_all_of_the_capped_exponential(attempt: int) -> None:
    ceiling = min(900, 30 * 2 ** (attempt - 1))
    for _ in range(50):
        assert ceiling // 2 <= backoff_seconds(attempt, 30, 900) <= ceiling


def test_backoff_ceiling_grows_monotonically_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the jitter pinned at its maximum, then at its minimum
    monkeypatch.setattr(pipeline.random, "random", lambda: 0.999999)
    highs = [backoff_seconds(a, 30, 900) for a in range(1, 10)]
    monkeypatch.setattr(pipeline.random, "random", lambda: 0.0)
    lows = [backoff_seconds(a, 30, 900) for a in range(1, 10)]
    # Then the delays double until the cap and never shrink
    assert highs == [29, 59, 119, 239, 479, 899, 899, 899, 899]
    assert lows == [15, 30, 60, 120, 240, 450, 450, 450, 450]


# --- the Downloader's validation ------------------------------------------------------------------


def download(routes: dict[str, tuple[int, bytes, str]], url: str, *, min_bytes: int = 10 * 1024):
    store = FakeStore()
    client = httpx.Client(transport=httpx.MockTransport(serve(routes)))
    downloader = Downloader(client, store, max_bytes=5 * 1024**2)
    try:
        return store, downloader.store(
            url, key_for=lambda s: f"k.{s.ext}", kinds=frozenset({"video", "gif", "photo"}), min_bytes=min_bytes
        )
    except InvalidMedia as exc:
        return store, exc


def test_a_valid_body_is_stored_whole_with_its_digest() -> None:
    store, stored = download({"https://cdn.example/v": (200, MP4, "application/octet-stream")}, "https://cdn.example/v")
    assert not isinstance(stored, Exception)
    assert (stored.key, stored.kind, stored.content_type) == ("k.mp4", "video", "video/mp4")
    assert stored.bytes == len(MP4)
    assert stored.sha256 == hashlib.sha256(MP4).hexdigest()
    assert store.objects == {"k.mp4": MP4}


def test_an_html_page_labelled_video_mp4_is_refused_before_any_upload() -> None:
    store, result = download({"https://cdn.example/v.mp4": (200, HTML, "video/mp4")}, "https://cdn.example/v.mp4")
    assert isinstance(result, InvalidMedia)
    assert "not media" in result.message
    assert store.uploads == []
    assert store.objects == {}


def test_an_empty_body_is_refused() -> None:
    store, result = download({"https://cdn.example/v.mp4": (200, b"", "video/mp4")}, "https://cdn.example/v.mp4")
    assert isinstance(result, InvalidMedia)
    assert "empty" in result.message
    assert store.objects == {}


def test_a_body_under_the_minimum_size_is_aborted() -> None:
    # Given a real MP4 header but only 5 KB of it
    small = MP4[: 5 * 1024]
    store, result = download({"https://cdn.example/v.mp4": (200, small, "video/mp4")}, "https://cdn.example/v.mp4")
    # Then it is refused, and the upload that started is aborted, never completed
    assert isinstance(result, InvalidMedia)
    (upload,) = store.uploads
    assert (upload.aborted, upload.completed) == (True, False)
    assert store.objects == {}


def test_an_upstream_server_error_is_retryable() -> None:
    store = FakeStore()
    client = httpx.Client(transport=httpx.MockTransport(serve({"https://cdn.example/v": (503, b"", "text/plain")})))
    with pytest.raises(UpstreamUnavailable):
        Downloader(client, store, max_bytes=10**9).store(
            "https://cdn.example/v", key_for=lambda s: "k", kinds=frozenset({"video"}), min_bytes=1
        )


# --- process_message --------------------------------------------------------------------------------


def test_a_message_without_job_id_creates_and_completes_its_job() -> None:
    # Given a post with one video and a poster
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/v.mp4", poster="https://cdn.example/poster.png")),
        routes={
            "https://cdn.example/v.mp4": (200, MP4, "video/mp4"),
            "https://cdn.example/poster.png": (200, PNG, "image/png"),
        },
    )
    # When the bare message arrives
    outcome = worker.deliver({"url": "https://Site.example/posts/1?utm_source=x"})
    # Then the job, keyed by the message id, is completed with its media, thumbnail and info.json
    job_id = job_id_for_message("msg-1")
    assert outcome == Outcome(job_id, "completed")
    job = worker.repo.get(job_id)
    assert job is not None
    assert job.status == JobStatus.COMPLETED
    assert job.url == POST  # normalised before it was stored
    assert (job.attempt, job.progress_pct, job.lease_owner) == (1, 100, None)
    (item,) = job.media
    assert job.tenant_id == "default"  # no tenantId in the message: the deployment's default tenant
    assert item.key == f"tenants/default/downloads/generic-alice/{job_id}.mp4"
    assert item.sha256 == hashlib.sha256(MP4).hexdigest()
    assert item.bytes == len(MP4)
    assert item.thumbnail_key == f"tenants/default/downloads/generic-alice/thumbnails/{job_id}.png"
    assert worker.store.objects[item.key] == MP4
    assert job.info_key == f"tenants/default/downloads/generic-alice/{job_id}.info.json"
    info = worker.store.documents[job.info_key]
    assert (info["jobId"], info["caption"], info["author"]["handle"]) == (job_id, "hi", "alice")


def test_a_redelivered_message_makes_no_second_job_and_is_acknowledged() -> None:
    # Given a message that was processed to completion
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")),
        routes={"https://cdn.example/v.mp4": (200, MP4, "video/mp4")},
    )
    first = worker.deliver({"url": POST}, message_id="m-42")
    # When SQS delivers the same message again
    second = worker.deliver({"url": POST}, message_id="m-42", owner="w-2")
    # Then there is still one job, and the duplicate is acknowledged without work
    assert first.status == second.status == "completed"
    assert list(worker.repo.items) == [job_id_for_message("m-42")]
    assert worker.extractor.calls == [POST]
    assert worker.repo.writes.count("create") == 1


def test_a_message_naming_an_existing_job_processes_it() -> None:
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")),
        routes={"https://cdn.example/v.mp4": (200, MP4, "video/mp4")},
    )
    worker.repo.put(
        new_job(
            job_id="api-job", url=POST, tenant_id="t-1", now=worker.clock.now(), max_attempts=5, correlation_id=None
        )
    )
    outcome = worker.deliver({"url": POST, "jobId": "api-job"})
    assert outcome == Outcome("api-job", "completed")
    assert len(worker.repo.items) == 1


def test_a_message_naming_an_unknown_job_is_dropped() -> None:
    worker = Worker(extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")))
    assert worker.deliver({"url": POST, "jobId": "ghost"}) == Outcome("ghost", "unknown")
    assert worker.repo.items == {}
    assert worker.extractor.calls == []


def test_no_media_fails_the_job_without_retry() -> None:
    # Given a post with nothing downloadable (only a manifest)
    post = PostInfo(url=POST, candidates=[Candidate(url="https://cdn.example/pl.m3u8")])
    worker = Worker(extractor=FakeExtractor(post))
    # When processed
    outcome = worker.deliver({"url": POST})
    # Then the job ends failed with NO_MEDIA, and the message is not retried
    assert outcome.status == "failed"
    job = worker.repo.get(outcome.job_id or "")
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("NO_MEDIA", False)
    assert worker.queue.delays == []


def test_a_retryable_failure_releases_the_job_with_backoff() -> None:
    # Given a site that is down
    worker = Worker(extractor=FakeExtractor(error=UpstreamUnavailable("the post answered 503")))
    # When the message is processed
    with pytest.raises(RetryLater):
        worker.deliver({"url": POST}, receipt="rh-9")
    # Then the job is queued again with the cause recorded and no lease
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert (job.status, job.attempt, job.lease_owner) == (JobStatus.QUEUED, 1, None)
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("UPSTREAM_UNAVAILABLE", True)
    # And the message comes back after the first backoff step (15-30 s)
    ((receipt, delay),) = worker.queue.delays
    assert receipt == "rh-9"
    assert 15 <= delay <= 30


def test_a_released_job_succeeds_on_the_next_delivery() -> None:
    worker = Worker(
        extractor=FakeExtractor(error=UpstreamUnavailable("503")),
        routes={"https://cdn.example/v.mp4": (200, MP4, "video/mp4")},
    )
    with pytest.raises(RetryLater):
        worker.deliver({"url": POST})
    worker.extractor.error = None
    worker.extractor.info = video_post("https://cdn.example/v.mp4")
    assert worker.deliver({"url": POST}, owner="w-2").status == "completed"
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert (job.attempt, job.error) == (2, None)


def test_a_retryable_failure_on_the_last_attempt_fails_the_job() -> None:
    worker = Worker(
        extractor=FakeExtractor(error=UpstreamUnavailable("503")),
        settings=Settings(table="t", queue_url="q", bucket="b", max_attempts=1),
    )
    outcome = worker.deliver({"url": POST})
    assert outcome.status == "failed"
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("UPSTREAM_UNAVAILABLE", False)
    assert worker.queue.delays == []


def test_a_queued_job_without_attempts_left_is_failed_when_its_message_comes() -> None:
    worker = Worker(extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")))
    job = new_job(job_id="j", url=POST, tenant_id="t", now=worker.clock.now(), max_attempts=2, correlation_id=None)
    worker.repo.put(job.model_copy(update={"attempt": 2}))
    assert worker.deliver({"url": POST, "jobId": "j"}) == Outcome("j", "failed")
    stored = worker.repo.get("j")
    assert stored is not None
    assert stored.error is not None
    assert stored.error.code == "ATTEMPTS_EXHAUSTED"
    assert worker.extractor.calls == []


def test_a_cancelled_job_is_left_alone() -> None:
    worker = Worker(extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")))
    job = new_job(job_id="j", url=POST, tenant_id="t", now=worker.clock.now(), max_attempts=5, correlation_id=None)
    worker.repo.put(job.model_copy(update={"status": JobStatus.CANCELLED}))
    assert worker.deliver({"url": POST, "jobId": "j"}) == Outcome("j", "cancelled")
    assert worker.extractor.calls == []


def test_a_malformed_body_raises_so_the_message_ends_in_the_dlq() -> None:
    worker = Worker(extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")))
    with pytest.raises(MalformedMessage):
        worker.deliver('{"link": "https://site.example/p"}', receipt="rh-bad")
    assert worker.repo.items == {}
    # it comes back soon (not after the long visibility timeout) so it reaches the DLQ quickly
    assert worker.queue.delays == [("rh-bad", worker.settings.retry_base_seconds)]
    assert worker.extractor.calls == []


def test_an_invalid_url_in_a_bare_message_leaves_a_failed_record() -> None:
    # Given a bare message whose URL can never be archived
    worker = Worker(extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")))
    # When delivered
    outcome = worker.deliver({"url": "javascript:alert(1)"})
    # Then nothing is raised (a retry cannot help), and the sender can read why
    assert outcome.status == "failed"
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("INVALID_URL", False)
    assert job.url == "javascript:alert(1)"
    assert worker.extractor.calls == []


def test_lease_lost_during_completion_does_not_overwrite_the_new_owner() -> None:
    # Given a worker whose lease expires while it writes info.json, and another worker that takes over
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")),
        routes={"https://cdn.example/v.mp4": (200, MP4, "video/mp4")},
    )
    job_id = job_id_for_message("msg-1")

    def take_over(key: str) -> None:
        worker.clock.advance(worker.settings.lease_seconds + 1)
        assert worker.repo.claim(job_id, owner="w-2", now=worker.clock.now(), lease_seconds=960) is not None

    worker.store.on_put_json = take_over
    # When the first worker tries to complete
    outcome = worker.deliver({"url": POST})
    # Then it gives up quietly and the job still belongs to the new owner, untouched
    assert outcome == Outcome(job_id, "lease-lost")
    job = worker.repo.get(job_id)
    assert job is not None
    assert (job.status, job.lease_owner, job.attempt, job.media) == (JobStatus.RUNNING, "w-2", 2, [])
    assert worker.queue.delays == []


def test_a_nearly_reached_deadline_releases_the_job_before_work_starts() -> None:
    # Given an invocation with 5 s left (the margin is 30 s)
    worker = Worker(extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")), remaining_ms=lambda: 5_000)
    # When a message arrives
    with pytest.raises(RetryLater):
        worker.deliver({"url": POST})
    # Then nothing was extracted and the job is queued again with DEADLINE_REACHED
    assert worker.extractor.calls == []
    job = worker.repo.get(job_id_for_message("msg-1"))
    assert job is not None
    assert job.status == JobStatus.QUEUED
    assert job.error is not None
    assert (job.error.code, job.error.retryable) == ("DEADLINE_REACHED", True)


def test_a_candidate_that_answers_html_falls_back_to_the_next() -> None:
    # Given a best candidate that serves an error page as video/mp4, and a valid second one
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/best.mp4", "https://cdn.example/ok.mp4")),
        routes={
            "https://cdn.example/best.mp4": (200, HTML, "video/mp4"),
            "https://cdn.example/ok.mp4": (200, MP4, "video/mp4"),
        },
    )
    # When processed
    outcome = worker.deliver({"url": POST})
    # Then the job completes with the second candidate
    assert outcome.status == "completed"
    job = worker.repo.get(outcome.job_id or "")
    assert job is not None
    assert job.media[0].source_url == "https://cdn.example/ok.mp4"
    assert worker.fetched == ["https://cdn.example/best.mp4", "https://cdn.example/ok.mp4"]
    assert [u.completed for u in worker.store.uploads] == [True]


def test_when_every_candidate_is_invalid_the_job_fails_with_invalid_media() -> None:
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/a.mp4", "https://cdn.example/b.mp4")),
        routes={
            "https://cdn.example/a.mp4": (200, HTML, "video/mp4"),
            "https://cdn.example/b.mp4": (200, MP4[:5000], "video/mp4"),
        },
    )
    outcome = worker.deliver({"url": POST})
    assert outcome.status == "failed"
    job = worker.repo.get(outcome.job_id or "")
    assert job is not None
    assert job.error is not None
    assert job.error.code == "INVALID_MEDIA"
    assert worker.store.objects == {}
    assert all(u.aborted for u in worker.store.uploads)


def test_a_later_attempt_replaces_the_info_json_an_earlier_attempt_left_while_it_holds_the_job() -> None:
    # Given an earlier attempt of the job left a different info.json behind (it crashed after writing it)
    worker = Worker(
        extractor=FakeExtractor(video_post("https://cdn.example/v.mp4")),
        routes={"https://cdn.example/v.mp4": (200, MP4, "video/mp4")},
    )
    job_id = job_id_for_message("msg-1")
    key = f"tenants/default/downloads/generic-alice/{job_id}.info.json"
    worker.store.documents[key] = {"jobId": job_id, "media": [], "archivedAt": "earlier"}
    # When this attempt completes the job
    assert worker.deliver({"url": POST}).status == "completed"
    # Then the document describes what this attempt stored
    assert [m["sha256"] for m in worker.store.documents[key]["media"]] == [hashlib.sha256(MP4).hexdigest()]
