"""The download retry chain: direct -> cookies -> browser -> re-extract, expired URLs, last cause."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mediavault.errors import InvalidMedia, UpstreamUnavailable
from mediavault.media.candidates import Candidate
from mediavault.media.sniff import Sniffed
from mediavault.platforms import Platforms
from mediavault.platforms.base import PostInfo
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader, Stored
from mediavault.worker.extract import BrowserBody, PageResult
from mediavault.worker.fetch import ItemFetch, cookie_header
from mediavault.worker.sources import PostSource
from tests.unit.fakes import FakeStore

pytestmark = pytest.mark.unit

POST = "https://example.com/posts/1"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(range(256)) * 48
HTML = b"<!doctype html><html><body>Access denied</body></html>"
NOW = 1_800_000_000.0

Handler = Callable[[httpx.Request], httpx.Response]


def video(url: str, *, bitrate: int = 2_000_000, item: int = 0) -> Candidate:
    return Candidate(url=url, source="platform", content_type="video/mp4", bitrate=bitrate, item=item)


class ScriptedExtractor:
    """Each extraction answers the next post of ``posts``; ``fetch`` is the browser-driven download."""

    def __init__(self, posts: list[PostInfo], *, cookies: list[dict[str, Any]] | None = None,
                 browser_body: bytes | None = None) -> None:  # fmt: skip
        self.posts = posts
        self.cookies = cookies or []
        self.browser_body = browser_body
        self.extractions = 0
        self.fetched: list[str] = []

    def extract(self, url: str, *, cookies: Any = (), parse_json: Any = None) -> PageResult:
        post = self.posts[min(self.extractions, len(self.posts) - 1)]
        self.extractions += 1
        return PageResult(info=post.model_copy(deep=True), cookies=self.cookies, user_agent="Chromium/1")

    def fetch(self, page_url: str, media_url: str, consume: Callable[[BrowserBody], Stored], *,
              cookies: Any = (), session_cookies: Any = ()) -> Stored:  # fmt: skip
        self.fetched.append(media_url)
        if self.browser_body is None:
            body = BrowserBody(media_url, 403, "text/html", len(HTML), iter([HTML]))
        else:
            chunks: Iterator[bytes] = iter([self.browser_body[:100], self.browser_body[100:]])
            body = BrowserBody(media_url, 200, "video/mp4", len(self.browser_body), chunks)
        return consume(body)


class Rig:
    def __init__(self, extractor: ScriptedExtractor, handler: Handler) -> None:
        self.store = FakeStore()
        self.requests: list[httpx.Request] = []

        def recording(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        client = httpx.Client(transport=httpx.MockTransport(recording))
        self.extractor = extractor
        self.source = PostSource(Platforms().recognise(POST), extractor=extractor, client=client)
        self.first = self.source.extract()
        self.fetch = ItemFetch(
            source=self.source, downloader=Downloader(client, self.store, max_bytes=10**9), hls=None,
            extractor=extractor, key_for=lambda s: f"k/job.{s.ext}", min_bytes=10 * 1024,
            deadline=Deadline(lambda: 600_000, margin_seconds=30), progress=None, clock=lambda: NOW,
        )  # fmt: skip

    def run(self) -> Any:
        return self.fetch.run(0, self.first.candidates)

    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]

    def strategies(self) -> list[str]:
        return [a["strategy"] for a in self.fetch.attempts]


def ok(body: bytes = MP4, ctype: str = "video/mp4") -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": ctype})


def forbidden() -> httpx.Response:
    return httpx.Response(403, content=HTML, headers={"content-type": "text/html"})


def test_a_working_url_is_downloaded_directly_and_nothing_else_is_tried() -> None:
    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[video("https://cdn.example/a.mp4")])]),
              lambda r: ok())  # fmt: skip
    fetched = rig.run()
    assert fetched.strategy == "direct"
    assert rig.strategies() == ["direct"]
    assert rig.store.objects == {"k/job.mp4": MP4}


def test_a_url_that_needs_the_page_cookies_succeeds_on_the_cookies_strategy() -> None:
    # Given a CDN that answers 403 unless the page's session cookie comes along
    jar = [{"name": "guest_id", "value": "v1", "domain": "cdn.example", "path": "/"}]

    def cdn(request: httpx.Request) -> httpx.Response:
        return ok() if "guest_id=v1" in request.headers.get("cookie", "") else forbidden()

    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[video("https://cdn.example/a.mp4")])],
                                cookies=jar), cdn)  # fmt: skip
    fetched = rig.run()
    assert fetched.strategy == "cookies"
    assert rig.strategies() == ["direct", "cookies"]
    assert rig.store.objects == {"k/job.mp4": MP4}
    # the 403 body never reached the store: no upload was opened for it
    assert [u.key for u in rig.store.uploads] == ["k/job.mp4"]


def test_when_cookies_do_not_help_the_browser_downloads_it() -> None:
    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[video("https://cdn.example/a.mp4")])],
                                browser_body=MP4), lambda r: forbidden())  # fmt: skip
    fetched = rig.run()
    assert fetched.strategy == "browser"
    assert rig.strategies() == ["direct", "cookies", "browser"]
    assert rig.extractor.fetched == ["https://cdn.example/a.mp4"]
    assert rig.store.objects["k/job.mp4"] == MP4


def test_a_stale_signature_is_replaced_by_a_fresh_url_from_a_new_extraction() -> None:
    # Given the first extraction hands out a URL that keeps answering 403, the second a fresh one
    stale = video("https://cdn.example/a.mp4?sig=1")
    fresh = video("https://cdn.example/a.mp4?sig=2")
    posts = [PostInfo(url=POST, candidates=[stale]), PostInfo(url=POST, candidates=[fresh])]
    rig = Rig(ScriptedExtractor(posts), lambda r: ok() if r.url.params.get("sig") == "2" else forbidden())
    fetched = rig.run()
    assert fetched.candidate.url.endswith("sig=2")
    assert rig.strategies() == ["direct", "cookies", "browser", "re-extract", "direct"]
    assert rig.extractor.extractions == 2


def test_an_expired_signed_url_is_never_fetched() -> None:
    expired = video(f"https://cdn.example/a.mp4?Expires={int(NOW) - 60}&Signature=x")
    fresh = video(f"https://cdn.example/a.mp4?Expires={int(NOW) + 3600}&Signature=y")
    posts = [PostInfo(url=POST, candidates=[expired]), PostInfo(url=POST, candidates=[fresh])]
    rig = Rig(ScriptedExtractor(posts), lambda r: ok())
    fetched = rig.run()
    assert fetched.candidate.url == fresh.url
    assert rig.urls() == [fresh.url]  # the expired one was not requested at all


def test_an_html_page_as_the_best_variant_falls_through_to_an_untried_variant() -> None:
    best, next_best = video("https://cdn.example/1080.mp4", bitrate=5_000_000), video("https://cdn.example/720.mp4")

    def cdn(request: httpx.Request) -> httpx.Response:
        return ok(HTML) if "1080" in request.url.path else ok()

    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[best, next_best])], browser_body=HTML), cdn)
    fetched = rig.run()
    assert fetched.candidate.url == next_best.url
    assert rig.store.objects == {"k/job.mp4": MP4}
    assert all(not u.completed for u in rig.store.uploads if u.key != "k/job.mp4")


def test_when_every_strategy_fails_the_last_cause_is_raised() -> None:
    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[video("https://cdn.example/a.mp4")])]),
              lambda r: ok(b"\x00" * 100))  # fmt: skip
    with pytest.raises(InvalidMedia):
        rig.run()
    assert rig.store.objects == {}
    assert rig.extractor.extractions == 3  # the first extraction and two re-extractions, then it gives up


def test_an_upstream_outage_is_not_mistaken_for_a_bad_url() -> None:
    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[video("https://cdn.example/a.mp4")])]),
              lambda r: httpx.Response(503))  # fmt: skip
    with pytest.raises(UpstreamUnavailable):
        rig.run()
    assert "browser" not in rig.strategies()


def test_cookie_header_matches_domain_path_and_secure_like_a_browser() -> None:
    jar: list[dict[str, object]] = [
        {"name": "a", "value": "1", "domain": ".example.com", "path": "/"},
        {"name": "b", "value": "2", "domain": "cdn.example.com", "path": "/media"},
        {"name": "c", "value": "3", "domain": "other.com", "path": "/"},
        {"name": "d", "value": "4", "domain": "example.com", "path": "/", "secure": True},
        {"name": "e", "value": "5", "domain": "cdn.example.com", "path": "/private"},
    ]
    assert cookie_header(jar, "http://cdn.example.com/media/v.mp4") == "a=1; b=2"
    assert cookie_header(jar, "https://cdn.example.com/media/v.mp4") == "a=1; b=2; d=4"
    assert cookie_header(jar, "https://notexample.com/") == ""


def test_key_for_receives_the_sniffed_type() -> None:
    seen: list[Sniffed] = []
    rig = Rig(ScriptedExtractor([PostInfo(url=POST, candidates=[video("https://cdn.example/a.mp4")])]),
              lambda r: ok())  # fmt: skip
    rig.fetch.key_for = lambda s: seen.append(s) or f"k/{s.ext}"  # type: ignore[func-returns-value]
    rig.run()
    assert [s.ext for s in seen] == ["mp4"]


class _ShortLivedUrls:
    """A platform whose media URLs expire quickly: each fast-path answer signs the URL anew."""

    NAME, HOSTS, API_BASE, REFRESH_ON_403 = "shortlived", frozenset({"short.example"}), "http://api", True

    def __init__(self) -> None:
        self.answers = 0

    def canonical_url(self, post_id: str) -> str:
        return POST

    def fast_path(self, post_id: str, api_base: str, get_json: Any) -> PostInfo:
        self.answers += 1
        return PostInfo(url=POST, candidates=[video(f"https://cdn.example/a.mp4?sig={self.answers}")])


def test_a_platform_with_short_lived_urls_asks_for_a_fresh_url_before_cookies_or_the_browser() -> None:
    from mediavault.platforms import PostRef

    module = _ShortLivedUrls()
    extractor = ScriptedExtractor([PostInfo(url=POST)])
    client = httpx.Client(transport=httpx.MockTransport(lambda r: ok() if r.url.params["sig"] == "2" else forbidden()))
    ref = PostRef(url=POST, platform="shortlived", post_id="1", module=module, api_base="http://api")  # type: ignore[arg-type]
    source = PostSource(ref, extractor=extractor, client=client)
    first = source.extract()
    fetch = ItemFetch(
        source=source, downloader=Downloader(client, FakeStore(), max_bytes=10**9), hls=None, extractor=extractor,
        key_for=lambda s: f"k.{s.ext}", min_bytes=10 * 1024, deadline=Deadline(lambda: 600_000, margin_seconds=30),
        progress=None, clock=lambda: NOW,
    )  # fmt: skip
    fetched = fetch.run(0, first.candidates)
    assert fetched.candidate.url.endswith("sig=2")
    assert [a["strategy"] for a in fetch.attempts] == ["direct", "re-extract", "direct"]
    assert extractor.extractions == 0  # the page was never opened: no cookies or browser step was needed
