"""Bluesky posts through the worker handler: the public JSON fast path, HLS remuxed to MP4, every
image, quoted media on request, and the platform's failures mapped to stable codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import pytest

from mediavault_local.samples.bsky import BSKY_POSTS, BskyPost, BskySite
from tests.conftest import CHROMIUM, clear_worker_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bsky(sample_media: Path) -> Iterator[BskySite]:
    with BskySite(sample_media) as site:
        yield site


@pytest.fixture
def worker(aws: dict[str, Any], bsky: BskySite, function: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from mediavault import deps

    monkeypatch.setenv("MEDIAVAULT_PLATFORM_HOSTS", f"bluesky={bsky.netloc}")
    monkeypatch.setenv("MEDIAVAULT_PLATFORM_API", f"bluesky={bsky.base_url}")
    monkeypatch.setenv("MEDIAVAULT_EGRESS_ALLOW", bsky.netloc)
    monkeypatch.setenv("MEDIAVAULT_CHROMIUM_PATH", str(CHROMIUM))
    deps.reset()
    clear_worker_state()
    instance = function("WorkerFunction")
    instance.env = aws["env"]  # where its table and bucket are, for the assertions
    yield instance
    clear_worker_state()


def run(worker: Any, load_event: Any, url: str, message_id: str, **body: Any) -> dict[str, Any]:
    event = load_event("sqs_url_only.json", url=url, **body)
    event["Records"][0]["messageId"] = message_id
    worker.invoke(event)
    table = boto3.resource("dynamodb").Table(worker.env["MEDIAVAULT_TABLE"])
    jobs = [i for i in table.scan()["Items"] if i.get("url") == url]
    assert len(jobs) == 1
    return jobs[0]


def info_json(worker: Any, job: dict[str, Any]) -> dict[str, Any]:
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=worker.env["MEDIAVAULT_BUCKET"], Key=job["infoKey"])["Body"].read()
    return json.loads(body)


def post(description_start: str) -> BskyPost:
    return next(p for p in BSKY_POSTS if p.description.startswith(description_start))


def test_a_video_post_is_read_from_the_json_and_its_hls_remuxed_to_one_mp4(
    worker: Any, load_event: Any, bsky: BskySite, tmp_path: Path
) -> None:
    # Given a post whose video is an HLS master (360p/720p video-only + a separate AAC group)
    target = post("video post")
    bsky.clear_requests()
    job = run(worker, load_event, bsky.post_url(target), "bsky-video")

    # Then it completed with one MP4 at the job's key, the best variant, with sound, not re-encoded
    assert job["status"] == "completed", job.get("error")
    [item] = job["media"]
    assert item["key"].endswith(f"{job['jobId']}.mp4")
    assert (item["kind"], item["contentType"], item["width"], item["height"]) == ("video", "video/mp4", 1280, 720)
    assert item["sourceUrl"].endswith("playlist.m3u8")
    assert item.get("thumbnailKey")
    local = tmp_path / "v.mp4"
    boto3.client("s3").download_file(worker.env["MEDIAVAULT_BUCKET"], item["key"], str(local))
    with av.open(str(local)) as container:
        kinds = sorted(s.type for s in container.streams)
        video = container.streams.video[0]
        assert kinds == ["audio", "video"]
        assert (video.codec_context.width, video.codec_context.height) == (1280, 720)
    # ...and the post page was never opened: the fast path answered, the browser stayed shut
    assert not any(p.startswith("/profile/") for p in bsky.paths_requested())
    assert any("360p" not in p and p.endswith(".ts") for p in bsky.paths_requested())

    # And info.json describes the post and the item
    info = info_json(worker, job)
    assert (info["platform"], info["author"]["handle"]) == ("bluesky", "harbour.test")
    assert info["author"]["id"].startswith("did:plc:")
    assert info["postId"].endswith(target.rkey)
    assert info["caption"]
    assert info["postedAt"]
    assert "likes" in info["counts"]
    assert info["media"][0]["sha256"] == item["sha256"]


def test_four_images_become_four_numbered_objects_with_thumbnails(worker: Any, load_event: Any, bsky: BskySite) -> None:
    job = run(worker, load_event, bsky.post_url(post("four images")), "bsky-gallery")
    assert job["status"] == "completed", job.get("error")
    keys = [m["key"] for m in job["media"]]
    assert [k.rsplit("/", 1)[1] for k in keys] == [f"{job['jobId']}-{n}.jpg" for n in range(1, 5)]
    assert len({m["sha256"] for m in job["media"]}) == 4  # four different files
    assert all(m["kind"] == "photo" and m.get("thumbnailKey") for m in job["media"])


def test_quoted_media_is_archived_only_when_asked(worker: Any, load_event: Any, bsky: BskySite) -> None:
    quoting = post("recordWithMedia")
    plain = run(worker, load_event, bsky.post_url(quoting), "bsky-quote-1")
    assert plain["status"] == "completed", plain.get("error")
    assert [m["kind"] for m in plain["media"]] == ["photo", "photo"]

    with_quoted = run(worker, load_event, bsky.post_url(quoting) + "?with=quoted", "bsky-quote-2",
                      includeQuoted=True)  # fmt: skip
    assert with_quoted["status"] == "completed", with_quoted.get("error")
    assert [m["kind"] for m in with_quoted["media"]] == ["photo", "photo", "video"]
    assert [m.get("quoted") for m in with_quoted["media"]] == [None, None, True]


@pytest.mark.parametrize(
    "target", [p for p in BSKY_POSTS if p.error and p.error != "UPSTREAM_UNAVAILABLE"], ids=lambda p: p.error
)
def test_platform_failures_end_the_job_with_their_stable_code(
    worker: Any, load_event: Any, bsky: BskySite, target: BskyPost
) -> None:
    job = run(worker, load_event, bsky.post_url(target), f"bsky-{target.actor}")
    assert (job["status"], job["error"]["code"]) == ("failed", target.error)


def test_a_quote_only_post_has_no_media_of_its_own(worker: Any, load_event: Any, bsky: BskySite) -> None:
    job = run(worker, load_event, bsky.post_url(post("quote only")), "bsky-quote-only")
    assert (job["status"], job["error"]["code"]) == ("failed", "NO_MEDIA")


def test_a_sensitive_post_is_archived_and_marked(worker: Any, load_event: Any, bsky: BskySite) -> None:
    job = run(worker, load_event, bsky.post_url(post("one image, a porn label")), "bsky-sensitive")
    assert job["status"] == "completed", job.get("error")
    assert info_json(worker, job)["sensitive"] is True


def test_an_overloaded_api_gives_the_job_back_to_the_queue(worker: Any, load_event: Any, bsky: BskySite) -> None:
    url = bsky.post_url(post("getPostThread answers 503"))
    event = load_event("sqs_url_only.json", url=url)
    event["Records"][0]["messageId"] = "bsky-busy"
    result = worker.invoke(event)
    assert result["batchItemFailures"] == [{"itemIdentifier": "bsky-busy"}]
    table = boto3.resource("dynamodb").Table(worker.env["MEDIAVAULT_TABLE"])
    [job] = [i for i in table.scan()["Items"] if i.get("url") == url]
    assert (job["status"], job["error"]["code"]) == ("queued", "UPSTREAM_UNAVAILABLE")
