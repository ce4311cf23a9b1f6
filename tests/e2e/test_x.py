"""X posts through the worker handler, against the X-like fixture site: the syndication fast path,
the browser's GraphQL path, every media item, the platform's failures, and the download retry chain
(fresh signatures, the page's cookies, the browser's own download, expired URLs, fake media)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from mediavault_local.samples.xsite import GUEST_COOKIE, X_POSTS, XSITE_AUTH_TOKEN, XPost, XSite
from tests.conftest import CHROMIUM, clear_worker_state

pytestmark = pytest.mark.e2e

BY_ID = {p.post_id: p for p in X_POSTS}


@pytest.fixture(scope="module")
def xsite(sample_media: Path) -> Iterator[XSite]:
    with XSite(sample_media) as site:
        yield site


@pytest.fixture
def worker(
    aws: dict[str, Any], xsite: XSite, function: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    from mediavault import deps

    monkeypatch.setenv("MEDIAVAULT_PLATFORM_HOSTS", f"x={xsite.netloc}")
    monkeypatch.setenv("MEDIAVAULT_PLATFORM_API", f"x={xsite.base_url}")
    monkeypatch.setenv("MEDIAVAULT_EGRESS_ALLOW", xsite.netloc)
    monkeypatch.setenv("MEDIAVAULT_CHROMIUM_PATH", str(CHROMIUM))
    # The tenant "member" has X login cookies (a local cookies file, as on the local stack).
    cookies = tmp_path / "cookies.json"
    cookies.write_text(json.dumps({"member": [{"name": "auth_token", "value": XSITE_AUTH_TOKEN,
                                               "domain": xsite.host, "path": "/"}]}))  # fmt: skip
    monkeypatch.setenv("MEDIAVAULT_COOKIES_FILE", str(cookies))
    monkeypatch.delenv("MEDIAVAULT_COOKIES_SECRET_PREFIX", raising=False)
    deps.reset()
    clear_worker_state()
    xsite.reset()
    instance = function("WorkerFunction")
    instance.env = aws["env"]
    yield instance
    clear_worker_state()


def run(worker: Any, load_event: Any, url: str, message_id: str, **body: Any) -> dict[str, Any]:
    event = load_event("sqs_url_only.json", url=url, **body)
    event["Records"][0]["messageId"] = message_id
    worker.invoke(event)
    table = boto3.resource("dynamodb").Table(worker.env["MEDIAVAULT_TABLE"])
    [job] = [i for i in table.scan()["Items"] if i.get("url") == url]
    return job


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_archived(job: dict[str, Any], post: XPost, sample_media: Path) -> None:
    assert job["status"] == "completed", job.get("error")
    assert [m["kind"] for m in job["media"]] == list(post.expected_media)
    several = len(post.expected_media) > 1
    for n, (item, name) in enumerate(zip(job["media"], post.expected_files, strict=True), start=1):
        suffix = f"-{n}" if several else ""
        assert item["key"].rsplit("/", 1)[1].startswith(f"{job['jobId']}{suffix}.")
        if name.endswith(".mp4"):
            # the variant that should have won: same bytes as the generated file
            assert item["sha256"] == digest(sample_media / name), (item["sourceUrl"], name)


PLAIN = [p for p in X_POSTS if p.expected_media and not p.needs_login and p.post_id not in ("1790100000000000019",)]


@pytest.mark.parametrize("post", PLAIN, ids=lambda p: p.post_id[-2:])
def test_posts_are_archived_whole_with_the_best_variant_that_works(
    worker: Any, load_event: Any, xsite: XSite, sample_media: Path, post: XPost
) -> None:
    job = run(worker, load_event, xsite.post_url(post.post_id), f"x-{post.post_id}")
    check_archived(job, post, sample_media)
    s3 = boto3.client("s3")
    info = json.loads(s3.get_object(Bucket=worker.env["MEDIAVAULT_BUCKET"], Key=job["infoKey"])["Body"].read())
    assert (info["platform"], info["postId"], info["author"]["handle"]) == ("x", post.post_id, post.handle)
    assert info["author"]["id"]
    assert info["author"]["displayName"]
    assert info["postedAt"]
    assert info["caption"]
    assert len(info["media"]) == len(post.expected_media)
    assert all(m.get("thumbnailKey") for m in job["media"])  # a thumbnail per item
    assert all(m["sha256"] and m["bytes"] and m["sourceUrl"] for m in info["media"])


def test_the_fast_path_never_opens_the_browser_when_syndication_answers(
    worker: Any, load_event: Any, xsite: XSite
) -> None:
    post = BY_ID["1790100000000000001"]
    xsite.clear_requests()
    job = run(worker, load_event, xsite.post_url(post.post_id), "x-fast")
    assert job["status"] == "completed", job.get("error")
    paths = xsite.paths_requested()
    assert "/tweet-result" in paths
    assert not any("/graphql/" in p or "/status/" in p for p in paths)
    assert job["media"][0]["strategy"] == "direct"


def test_a_post_only_the_page_can_read_goes_through_the_browser(
    worker: Any, load_event: Any, xsite: XSite, sample_media: Path
) -> None:
    post = BY_ID["1790100000000000006"]
    xsite.clear_requests()
    job = run(worker, load_event, xsite.post_url(post.post_id), "x-browser")
    check_archived(job, post, sample_media)
    assert any("/graphql/" in p for p in xsite.paths_requested())


@pytest.mark.parametrize("post", [p for p in X_POSTS if p.expected_error], ids=lambda p: p.post_id[-2:])
def test_platform_failures_end_the_job_with_their_stable_code(
    worker: Any, load_event: Any, xsite: XSite, post: XPost
) -> None:
    job = run(worker, load_event, xsite.post_url(post.post_id), f"x-fail-{post.post_id}")
    assert (job["status"], job["error"]["code"]) == ("failed", post.expected_error)


def test_a_login_only_post_is_archived_for_the_tenant_with_the_login(
    worker: Any, load_event: Any, xsite: XSite, sample_media: Path
) -> None:
    post = next(p for p in X_POSTS if p.needs_login)
    job = run(worker, load_event, xsite.post_url(post.post_id), "x-login", tenantId="member")
    check_archived(job, post, sample_media)


def test_quoted_media_only_on_request(worker: Any, load_event: Any, xsite: XSite) -> None:
    post = next(p for p in X_POSTS if p.quoted_media)
    job = run(worker, load_event, xsite.post_url(post.post_id), "x-quoted", includeQuoted=True)
    assert job["status"] == "completed", job.get("error")
    kinds = [m["kind"] for m in job["media"]]
    assert kinds == [*post.expected_media, *post.quoted_media]
    assert [bool(m.get("quoted")) for m in job["media"]] == [False] * len(post.expected_media) + [True] * len(
        post.quoted_media
    )


@pytest.mark.parametrize(
    ("post_id", "strategy"),
    [
        ("1790100000000000011", "direct"),  # stale signature -> a fresh one from a re-extraction
        ("1790100000000000012", "cookies"),  # needs the page's guest cookie
        ("1790100000000000013", "browser"),  # hotlink protection only the page's own fetch passes
        ("1790100000000000014", "direct"),  # expired signed URL -> never fetched, a fresh one is
    ],
)
def test_the_retry_chain_takes_the_strategy_that_works(
    worker: Any, load_event: Any, xsite: XSite, sample_media: Path, post_id: str, strategy: str
) -> None:
    post = BY_ID[post_id]
    xsite.clear_requests()
    job = run(worker, load_event, xsite.post_url(post_id), f"x-chain-{post_id}")
    check_archived(job, post, sample_media)
    assert job["media"][0]["strategy"] == strategy
    if post_id == "1790100000000000014":
        # the expired URL was never requested: every signed request carried a future expiry
        expiries = [int(parse_qs(urlsplit(p).query)["Expires"][0]) for _, p, _ in xsite.requests if "Expires=" in p]
        assert expiries
        assert min(expiries) > time.time()
    if post_id == "1790100000000000012":
        sent = [{k.lower(): v for k, v in h.items()} for _, p, h in xsite.requests if "/ext_tw_video/" in p]
        assert any(GUEST_COOKIE in h.get("cookie", "") for h in sent)


def test_a_slow_media_server_still_completes_and_reports_progress(
    worker: Any, load_event: Any, xsite: XSite, sample_media: Path
) -> None:
    post = BY_ID["1790100000000000019"]
    job = run(worker, load_event, xsite.post_url(post.post_id), "x-slow")
    check_archived(job, post, sample_media)
