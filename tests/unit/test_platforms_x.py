"""X: post URLs, the syndication token, and parsing of syndication and GraphQL answers (pure)."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest

from mediavault.errors import LoginRequired, PostNotFound, PostPrivate, PostUnavailable, UpstreamUnavailable
from mediavault.media.candidates import Candidate, rank
from mediavault.platforms import x
from mediavault.platforms.base import PostInfo

pytestmark = pytest.mark.unit

POST = "1790312345678901248"
QUOTED = "1780000000000000777"
CDN = "https://video.twimg.com"
PBS = "https://pbs.twimg.com"
GRAPHQL = "https://x.com/i/api/graphql/Vg2Akr5FzUmF0sTplA5k6g/TweetResultByRestId"
DETAIL = "https://x.com/i/api/graphql/nBS-WpgA6ZG0CyNHD517JQ/TweetDetail"


# --- builders of X-shaped JSON ---------------------------------------------------------------


def video_entity(media_id: str = "1790312345000000001", *, tco: str = "https://t.co/vid123") -> dict[str, Any]:
    base = f"{CDN}/ext_tw_video/{media_id}/pu"
    return {
        "display_url": "pic.x.com/vid123",
        "expanded_url": f"https://x.com/harbourcam/status/{POST}/video/1",
        "id_str": media_id,
        "media_key": f"7_{media_id}",
        "media_url_https": f"{PBS}/ext_tw_video_thumb/{media_id}/pu/img/AbCdEf.jpg",
        "type": "video",
        "url": tco,
        "ext_media_availability": {"status": "Available"},
        "original_info": {"height": 1080, "width": 1920, "focus_rects": []},
        "video_info": {
            "aspect_ratio": [16, 9],
            "duration_millis": 12345,
            "variants": [
                {"bitrate": 2176000, "content_type": "video/mp4", "url": f"{base}/vid/avc1/1280x720/AbCdEf.mp4?tag=12"},
                {"content_type": "application/x-mpegURL", "url": f"{base}/pl/AbCdEf.m3u8?tag=12&v=4f1"},
                {"bitrate": 832000, "content_type": "video/mp4", "url": f"{base}/vid/640x360/AbCdEf.mp4?tag=12"},
                {
                    "bitrate": 10368000,
                    "content_type": "video/mp4",
                    "url": f"{base}/vid/avc1/1920x1080/AbCdEf.mp4?tag=12",
                },
            ],
        },
    }


def gif_entity(name: str = "GifName01") -> dict[str, Any]:
    return {
        "id_str": "1790312345000000002",
        "media_key": "16_1790312345000000002",
        "media_url_https": f"{PBS}/tweet_video_thumb/{name}.jpg",
        "type": "animated_gif",
        "url": "https://t.co/gif123",
        "original_info": {"height": 270, "width": 480, "focus_rects": []},
        "video_info": {
            "aspect_ratio": [16, 9],
            "variants": [{"bitrate": 0, "content_type": "video/mp4", "url": f"{CDN}/tweet_video/{name}.mp4"}],
        },
    }


def photo_entity(name: str = "GPhotoAbc12345", *, ext: str = "jpg", width: int = 6000, height: int = 4000) -> dict:
    return {
        "id_str": "1790312345000000003",
        "media_key": "3_1790312345000000003",
        "media_url_https": f"{PBS}/media/{name}.{ext}",
        "type": "photo",
        "url": "https://t.co/pic123",
        "original_info": {"height": height, "width": width, "focus_rects": []},
        "sizes": {"large": {"h": 1365, "w": 2048, "resize": "fit"}},
    }


def legacy_user(rest_id: str = "1500000000000000001") -> dict[str, Any]:
    return {
        "__typename": "User",
        "rest_id": rest_id,
        "is_blue_verified": False,
        "legacy": {"name": "Harbour Cam", "screen_name": "harbourcam", "followers_count": 10},
    }


def core_user(rest_id: str = "1500000000000000002") -> dict[str, Any]:
    return {
        "__typename": "User",
        "rest_id": rest_id,
        "avatar": {"image_url": f"{PBS}/profile_images/1/a_normal.jpg"},
        "core": {"created_at": "Sat Jan 01 17:50:03 +0000 2011", "name": "Tide Watcher", "screen_name": "tidewatcher"},
        "legacy": {"description": "", "followers_count": 10},
    }


def gql_tweet(
    tweet_id: str = POST,
    *,
    media: list[dict[str, Any]] | None = None,
    user: dict[str, Any] | None = None,
    text: str = "Fish &amp; chips at the harbour https://t.co/vid123",
    **legacy_extra: Any,
) -> dict[str, Any]:
    media = [video_entity()] if media is None else media
    legacy: dict[str, Any] = {
        "bookmark_count": 5,
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "conversation_id_str": tweet_id,
        "entities": {"hashtags": [], "urls": [], "user_mentions": [], **({"media": media[:1]} if media else {})},
        "favorite_count": 128,
        "full_text": text,
        "lang": "en",
        "possibly_sensitive": False,
        "quote_count": 3,
        "reply_count": 9,
        "retweet_count": 12,
        "user_id_str": "1500000000000000001",
        "id_str": tweet_id,
        **legacy_extra,
    }
    if media:
        legacy["extended_entities"] = {"media": media}
    return {
        "__typename": "Tweet",
        "rest_id": tweet_id,
        "core": {"user_results": {"result": user or legacy_user()}},
        "views": {"count": "4096", "state": "EnabledWithCount"},
        "legacy": legacy,
    }


def by_result(result: dict[str, Any] | None) -> dict[str, Any]:
    """A ``TweetResultByRestId`` answer."""
    return {"data": {"tweetResult": {"result": result} if result is not None else {}}}


def result_url(tweet_id: str = POST) -> str:
    variables = json.dumps({"tweetId": tweet_id, "withCommunity": False})
    return f"{GRAPHQL}?variables={quote(variables)}&features=%7B%7D"


def detail_url(tweet_id: str = POST) -> str:
    return f"{DETAIL}?variables={quote(json.dumps({'focalTweetId': tweet_id}))}"


def detail(*entries: dict[str, Any]) -> dict[str, Any]:
    """A ``TweetDetail`` answer with ``entries``."""
    instructions = [{"type": "TimelineClearCache"}, {"type": "TimelineAddEntries", "entries": list(entries)}]
    return {"data": {"threaded_conversation_with_injections_v2": {"instructions": instructions}}}


def item_entry(entry_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "entryId": entry_id,
        "content": {
            "entryType": "TimelineTimelineItem",
            "itemContent": {"itemType": "TimelineTweet", "tweet_results": {"result": result}},
        },
    }


def module_entry(entry_id: str, *results: dict[str, Any]) -> dict[str, Any]:
    items = [{"item": {"itemContent": {"itemType": "TimelineTweet", "tweet_results": {"result": r}}}} for r in results]
    return {"entryId": entry_id, "content": {"entryType": "TimelineTimelineModule", "items": items}}


def syndication(tweet_id: str = POST, *, media: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    media = [video_entity()] if media is None else media
    data: dict[str, Any] = {
        "__typename": "Tweet",
        "lang": "en",
        "favorite_count": 77,
        "conversation_count": 4,
        "possibly_sensitive": False,
        "created_at": "2024-05-01T18:30:00.000Z",
        "id_str": tweet_id,
        "text": "Fish &amp; chips at the harbour https://t.co/vid123",
        "user": {"id_str": "1500000000000000001", "name": "Harbour Cam", "screen_name": "harbourcam"},
        **extra,
    }
    if media:
        data["mediaDetails"] = media
    return data


def item_of(info: PostInfo, item: int, *, quoted: bool = False) -> list[Candidate]:
    return [c for c in info.candidates if c.item == item and c.quoted == quoted]


# --- hosts and URLs ---------------------------------------------------------------------------


def test_module_constants() -> None:
    assert x.NAME == "x"
    assert x.API_BASE == "https://cdn.syndication.twimg.com"
    assert x.REFRESH_ON_403 is True
    for host in (
        "x.com",
        "www.x.com",
        "mobile.x.com",
        "twitter.com",
        "www.twitter.com",
        "mobile.twitter.com",
        "fxtwitter.com",
        "d.fxtwitter.com",
        "vxtwitter.com",
        "fixupx.com",
        "fixvx.com",
        "www.fixupx.com",
    ):
        assert host in x.HOSTS
    assert "example.com" not in x.HOSTS
    assert "xx.com" not in x.HOSTS


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/harbourcam/status/{POST}", POST),
        (f"/harbourcam/statuses/{POST}", POST),
        (f"/i/status/{POST}", POST),
        (f"/i/web/status/{POST}", POST),
        (f"/harbourcam/status/{POST}/", POST),
        (f"/harbourcam/status/{POST}/video/1", POST),
        (f"/harbourcam/status/{POST}/photo/4", POST),
        (f"/harbourcam/status/{POST}?s=20&t=abc", POST),
        ("/Some_User9/status/20#frag", "20"),
        ("/harbourcam", None),
        ("/home", None),
        ("/", None),
        ("/harbourcam/status/", None),
        ("/harbourcam/status/abc", None),
        ("/harbourcam/status/123abc", None),
        (f"/harbourcam/status/{POST}/analytics", None),
        (f"/harbourcam/likes/{POST}", None),
        ("/i/spaces/1YqKDqRXXrqxV", None),
    ],
)
def test_post_id(path: str, expected: str | None) -> None:
    assert x.post_id(path) == expected


def test_canonical_url_and_syndication_url() -> None:
    assert x.canonical_url(POST) == f"https://x.com/i/status/{POST}"
    url = x.syndication_url("20", "http://127.0.0.1:8123/")
    assert url == "http://127.0.0.1:8123/tweet-result?id=20&token=6dq1a2xwd93&lang=en"


# Computed with node: ((Number(id) / 1e15) * Math.PI).toString(36).replace(/(0+|\.)/g, "")
@pytest.mark.parametrize(
    ("post_id", "token"),
    [
        ("20", "6dq1a2xwd93"),
        ("1", "bhi2ay3f28n"),
        ("1234567890", "6iio5bzbwyw"),
        ("1000000000000000", "353i5ab8p5f"),
        ("463440424141459456", "14fxvks611f"),
        ("999999999999999999", "2f9lc2ug9mm"),
        ("1629307668568633344", "3y6mctgwzxo"),
        ("1712345678901234567", "45fhqezna5p"),
        ("1783948201029384756", "4bofsdkzqpe"),
        ("1800000000000000001", "4d2v7cbm2xj"),
        ("1890000000000000000", "4kxlypje6oe"),
    ],
)
def test_syndication_token_matches_javascript(post_id: str, token: str) -> None:
    assert x.syndication_token(post_id) == token


@pytest.mark.parametrize("bad", ["", "12a", "-5", "1.5"])
def test_syndication_token_wants_a_numeric_id(bad: str) -> None:
    with pytest.raises(ValueError, match="not a post id"):
        x.syndication_token(bad)


# Computed with node: value.toString(radix)
@pytest.mark.parametrize(
    ("value", "radix", "expected"),
    [
        (0.5, 36, "0.i"),
        (255.5, 16, "ff.8"),
        (-7.25, 2, "-111.01"),
        (0.1, 3, "0.0022002200220022002200220022002201"),
        (123.456, 36, "3f.gez4w97ry"),
        (1e21, 36, "5v1j4f4ds7c000"),
        (9007199254740994.0, 36, "2gosa7pa2gy"),
        (5e-324, 36, "0." + "0" * 207 + "3"),
        (0.0, 36, "0"),
        (float("nan"), 36, "NaN"),
        (float("-inf"), 36, "-Infinity"),
    ],
)
def test_radix_conversion_of_doubles_matches_v8(value: float, radix: int, expected: str) -> None:
    assert x._js_radix_string(value, radix) == expected


def test_radix_conversion_writes_zeros_beyond_53_bits() -> None:
    # Given the largest double (node: 1a1e4vngaiqo followed by 187 zeros)
    text = x._js_radix_string(1.7976931348623157e308, 36)
    assert text.startswith("1a1e4vngaiqo")
    assert set(text[12:]) == {"0"}
    assert len(text) == 199


# --- the syndication fast path ----------------------------------------------------------------


class FakeSyndication:
    """``get_json`` answering one canned response and remembering the URLs asked for."""

    def __init__(self, status: int, data: Any) -> None:
        self.status, self.data = status, data
        self.urls: list[str] = []

    def __call__(self, url: str) -> tuple[int, Any]:
        self.urls.append(url)
        return self.status, self.data


def test_fast_path_reads_the_syndication_answer() -> None:
    # Given the endpoint answers with a video post
    get_json = FakeSyndication(200, syndication())
    # When the fast path runs against a configured base
    info = x.fast_path(POST, "http://127.0.0.1:9/", get_json)
    # Then it asked the right URL and got a post
    assert get_json.urls == [f"http://127.0.0.1:9/tweet-result?id={POST}&token={x.syndication_token(POST)}&lang=en"]
    assert info is not None
    assert info.platform == "x"
    assert info.post_id == POST
    assert info.url == f"https://x.com/i/status/{POST}"
    assert info.site_name == "X"
    assert info.author_handle == "harbourcam"
    assert info.author_name == "Harbour Cam"
    assert info.author_id == "1500000000000000001"
    assert info.caption == "Fish & chips at the harbour"
    assert info.title == 'Harbour Cam on X: "Fish & chips at the harbour"'
    assert info.posted_at == "2024-05-01T18:30:00Z"
    assert info.extra["created_at"] == "2024-05-01T18:30:00.000Z"
    assert info.extra["source"] == "syndication"
    assert info.counts == {"likes": 77, "replies": 4}
    assert info.sensitive is False
    assert info.thumbnail_url == video_entity()["media_url_https"]


def test_fast_path_video_variants_all_become_candidates() -> None:
    info = x.fast_path(POST, x.API_BASE, FakeSyndication(200, syndication()))
    assert info is not None
    by_bitrate = {c.bitrate: c for c in info.candidates}
    assert set(by_bitrate) == {832000, 2176000, 10368000, None}
    assert (by_bitrate[10368000].width, by_bitrate[10368000].height) == (1920, 1080)
    assert (by_bitrate[832000].width, by_bitrate[832000].height) == (640, 360)
    hls = by_bitrate[None]
    assert hls.content_type == "application/x-mpegURL"
    assert hls.is_streaming_manifest
    for cand in info.candidates:
        assert cand.kind == "video"
        assert cand.source == "platform"
        assert cand.item == 0
        assert cand.duration == pytest.approx(12.345)
        assert cand.poster == video_entity()["media_url_https"]
    assert rank(info.candidates)[0].bitrate == 10368000


@pytest.mark.parametrize(
    ("status", "data"),
    [(404, None), (404, {"errors": "not found"}), (200, {}), (200, None), (200, []), (400, None), (403, {})],
)
def test_fast_path_defers_to_the_page_when_the_answer_says_nothing(status: int, data: Any) -> None:
    assert x.fast_path(POST, x.API_BASE, FakeSyndication(status, data)) is None


def test_fast_path_defers_to_the_page_for_a_post_without_media() -> None:
    data = syndication(media=[], text="just words")
    assert x.fast_path(POST, x.API_BASE, FakeSyndication(200, data)) is None


def test_fast_path_ignores_an_answer_about_another_post() -> None:
    assert x.fast_path(POST, x.API_BASE, FakeSyndication(200, syndication("42"))) is None


def test_fast_path_tombstone_is_unavailable() -> None:
    tombstone = {
        "__typename": "TweetTombstone",
        "tombstone": {"text": {"text": "This Post was deleted by the author."}},
    }
    with pytest.raises(PostUnavailable) as caught:
        x.fast_path(POST, x.API_BASE, FakeSyndication(200, tombstone))
    assert caught.value.code == "POST_UNAVAILABLE"
    assert "deleted" in caught.value.message


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_fast_path_throttling_and_server_errors_are_retryable(status: int) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        x.fast_path(POST, x.API_BASE, FakeSyndication(status, None))
    assert caught.value.retryable


def test_syndication_photos_gif_and_quoted_tweet() -> None:
    # Given two photos and a GIF, quoting a post with a video
    quoted = syndication(QUOTED, media=[video_entity("1780000000000000001", tco="https://t.co/q")])
    data = syndication(media=[photo_entity("GOne"), photo_entity("GTwo", ext="png"), gif_entity()], quoted_tweet=quoted)
    # When parsed
    info = x.parse_syndication(data, "https://cdn.syndication.twimg.com/tweet-result?id=1")
    # Then items 0..2 are the post's own, item 3 the quoted video
    assert info is not None
    assert info.quoted_post_id == QUOTED
    assert item_of(info, 0)[0].url == f"{PBS}/media/GOne?format=jpg&name=orig"
    assert item_of(info, 1)[0].url == f"{PBS}/media/GTwo?format=png&name=orig"
    assert item_of(info, 1)[0].content_type == "image/png"
    (gif,) = item_of(info, 2)
    assert (gif.kind, gif.url, gif.bitrate) == ("gif", f"{CDN}/tweet_video/GifName01.mp4", 0)
    quoted_items = [c for c in info.candidates if c.quoted]
    assert {c.item for c in quoted_items} == {3}
    assert all(c.kind == "video" for c in quoted_items)
    assert not any(c.quoted for c in info.candidates if c.item < 3)
    assert info.extra["source_url"] == "https://cdn.syndication.twimg.com/tweet-result?id=1"


def test_syndication_without_media_details_uses_photos_and_video_summaries() -> None:
    # Given an answer that has only the summary fields
    data = syndication(
        media=[],
        photos=[{"url": f"{PBS}/media/GSummary.jpg", "width": 1200, "height": 800, "expandedUrl": "x"}],
        video={
            "contentType": "media_entity",
            "durationMs": 3000,
            "poster": f"{PBS}/ext_tw_video_thumb/1/pu/img/p.jpg",
            "variants": [
                {"type": "application/x-mpegURL", "src": f"{CDN}/ext_tw_video/1/pu/pl/p.m3u8"},
                {"type": "video/mp4", "src": f"{CDN}/ext_tw_video/1/pu/vid/avc1/1280x720/p.mp4"},
            ],
        },
    )
    # When parsed
    info = x.parse_syndication(data, "u")
    # Then the photo is item 0 and the video item 1, with what the summaries tell
    assert info is not None
    assert item_of(info, 0)[0].url == f"{PBS}/media/GSummary?format=jpg&name=orig"
    assert (item_of(info, 0)[0].width, item_of(info, 0)[0].height) == (1200, 800)
    mp4 = next(c for c in item_of(info, 1) if c.content_type == "video/mp4")
    assert (mp4.width, mp4.height, mp4.duration) == (1280, 720, 3.0)
    assert mp4.poster == f"{PBS}/ext_tw_video_thumb/1/pu/img/p.jpg"
    assert info.thumbnail_url == f"{PBS}/media/GSummary.jpg"  # the first item's picture


def test_syndication_gif_summary_is_a_gif() -> None:
    data = syndication(
        media=[],
        video={"contentType": "gif", "variants": [{"type": "video/mp4", "src": f"{CDN}/tweet_video/G.mp4"}]},
    )
    info = x.parse_syndication(data, "u")
    assert info is not None
    assert [c.kind for c in info.candidates] == ["gif"]


@pytest.mark.parametrize(
    "data",
    [{}, {"__typename": "TweetTombstone"}, {"id_str": POST}, {"__typename": "Tweet", "text": "no id"}],
)
def test_parse_syndication_without_a_post_with_media_is_none(data: dict[str, Any]) -> None:
    assert x.parse_syndication(data, "u") is None


def test_syndication_sensitive_flag() -> None:
    info = x.parse_syndication(syndication(possibly_sensitive=True), "u")
    assert info is not None
    assert info.sensitive is True


# --- GraphQL: TweetResultByRestId --------------------------------------------------------------


def test_graphql_tweet_with_the_older_user_shape() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet()), POST)
    assert info is not None
    assert (info.platform, info.post_id, info.url) == ("x", POST, f"https://x.com/i/status/{POST}")
    assert (info.author_handle, info.author_name, info.author_id) == (
        "harbourcam",
        "Harbour Cam",
        "1500000000000000001",
    )
    assert info.caption == "Fish & chips at the harbour"
    assert info.posted_at == "2018-10-10T20:19:24Z"
    assert info.extra["created_at"] == "Wed Oct 10 20:19:24 +0000 2018"
    assert info.extra["source"] == "graphql"
    assert info.counts == {"likes": 128, "reposts": 12, "replies": 9, "quotes": 3, "bookmarks": 5, "views": 4096}
    assert info.sensitive is False
    assert info.quoted_post_id is None
    assert info.site_name == "X"
    assert info.thumbnail_url == video_entity()["media_url_https"]
    assert len(info.candidates) == 4


def test_graphql_tweet_with_the_newer_user_shape() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(user=core_user())), POST)
    assert info is not None
    assert (info.author_handle, info.author_name, info.author_id) == (
        "tidewatcher",
        "Tide Watcher",
        "1500000000000000002",
    )


def test_graphql_user_without_rest_id_falls_back_to_user_id_str() -> None:
    user = legacy_user()
    del user["rest_id"]
    info = x.parse_page_json(result_url(), by_result(gql_tweet(user=user)), POST)
    assert info is not None
    assert info.author_id == "1500000000000000001"


def test_graphql_note_tweet_text_wins_over_the_truncated_full_text() -> None:
    tweet = gql_tweet(text="A long post that X cut sho\u2026 https://t.co/vid123")
    tweet["note_tweet"] = {
        "is_expandable": True,
        "note_tweet_results": {"result": {"text": "A long post & all of it."}},
    }
    info = x.parse_page_json(result_url(), by_result(tweet), POST)
    assert info is not None
    assert info.caption == "A long post & all of it."


def test_graphql_views_missing_or_without_count() -> None:
    tweet = gql_tweet()
    tweet["views"] = {"state": "Enabled"}
    info = x.parse_page_json(result_url(), by_result(tweet), POST)
    assert info is not None
    assert "views" not in info.counts


def test_graphql_sensitive_flag() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(possibly_sensitive=True)), POST)
    assert info is not None
    assert info.sensitive is True


def test_graphql_video_variants_sizes_and_hls() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet()), POST)
    assert info is not None
    sizes = {(c.bitrate, c.content_type): (c.width, c.height) for c in info.candidates}
    assert sizes == {
        (2176000, "video/mp4"): (1280, 720),  # /vid/avc1/1280x720/
        (832000, "video/mp4"): (640, 360),  # /vid/640x360/
        (10368000, "video/mp4"): (1920, 1080),
        (None, "application/x-mpegURL"): (1920, 1080),  # no size in the URL: original_info
    }
    assert all(c.duration == pytest.approx(12.345) and c.kind == "video" for c in info.candidates)


def test_graphql_variant_without_size_in_url_uses_original_info() -> None:
    entity = video_entity()
    entity["video_info"]["variants"] = [
        {"bitrate": 950000, "content_type": "video/mp4", "url": f"{CDN}/amplify_video/1/vid/plain.mp4"}
    ]
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=[entity])), POST)
    assert info is not None
    (cand,) = info.candidates
    assert (cand.width, cand.height, cand.bitrate) == (1920, 1080, 950000)


def test_graphql_photo_fallback_chain() -> None:
    # Given a 6000x4000 photo
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=[photo_entity("GBig")])), POST)
    assert info is not None
    # Then one item with four ways to download it, best first by preference
    chain = item_of(info, 0)
    assert [(c.url, c.preference) for c in chain] == [
        (f"{PBS}/media/GBig?format=jpg&name=orig", 3),
        (f"{PBS}/media/GBig?format=jpg&name=4096x4096", 2),
        (f"{PBS}/media/GBig?format=jpg&name=large", 1),
        (f"{PBS}/media/GBig.jpg", 0),
    ]
    assert [(c.width, c.height) for c in chain] == [(6000, 4000), (4096, 2731), (2048, 1365), (None, None)]
    assert all(c.kind == "photo" and c.content_type == "image/jpeg" and c.source == "platform" for c in chain)
    assert [c.url for c in rank(chain)] == [c.url for c in chain]
    assert info.thumbnail_url == f"{PBS}/media/GBig.jpg"


def test_graphql_small_photo_sizes_are_not_scaled_up() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=[photo_entity(width=800, height=600)])), POST)
    assert info is not None
    assert [(c.width, c.height) for c in info.candidates[:3]] == [(800, 600)] * 3


def test_graphql_photo_url_with_format_query() -> None:
    entity = photo_entity()
    entity["media_url_https"] = f"{PBS}/media/GQuery?format=webp&name=small"
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=[entity])), POST)
    assert info is not None
    assert info.candidates[0].url == f"{PBS}/media/GQuery?format=webp&name=orig"
    assert info.candidates[0].content_type == "image/webp"


def test_graphql_animated_gif() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=[gif_entity()])), POST)
    assert info is not None
    (gif,) = info.candidates
    assert (gif.kind, gif.content_type, gif.bitrate, gif.duration) == ("gif", "video/mp4", 0, None)
    assert (gif.width, gif.height) == (480, 270)
    assert gif.poster == f"{PBS}/tweet_video_thumb/GifName01.jpg"


def test_graphql_mixed_media_items_are_numbered_in_order() -> None:
    media = [photo_entity("GA"), photo_entity("GB"), video_entity(), gif_entity()]
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=media)), POST)
    assert info is not None
    kinds = {c.item: c.kind for c in info.candidates}
    assert kinds == {0: "photo", 1: "photo", 2: "video", 3: "gif"}


def test_graphql_entities_media_is_the_fallback() -> None:
    tweet = gql_tweet(media=[])
    tweet["legacy"]["entities"]["media"] = [photo_entity("GOld")]
    info = x.parse_page_json(result_url(), by_result(tweet), POST)
    assert info is not None
    assert info.candidates[0].url == f"{PBS}/media/GOld?format=jpg&name=orig"


def test_graphql_post_without_media_is_still_the_post() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(media=[], text="words only")), POST)
    assert info is not None
    assert info.candidates == []
    assert info.caption == "words only"


def test_graphql_quoted_tweet_media_is_flagged_and_numbered_after() -> None:
    # Given a post with a photo quoting a post with a video
    quoted = gql_tweet(QUOTED, media=[video_entity("1780000000000000001")], user=core_user())
    tweet = gql_tweet(media=[photo_entity()], quoted_status_id_str=QUOTED, is_quote_status=True)
    tweet["quoted_status_result"] = {"result": quoted}
    # When parsed
    info = x.parse_page_json(result_url(), by_result(tweet), POST)
    # Then the photo is item 0 and the quoted video item 1, flagged quoted
    assert info is not None
    assert info.quoted_post_id == QUOTED
    assert {c.item for c in info.candidates if not c.quoted} == {0}
    quoted_cands = [c for c in info.candidates if c.quoted]
    assert {c.item for c in quoted_cands} == {1}
    assert {c.kind for c in quoted_cands} == {"video"}
    assert info.author_handle == "harbourcam"  # the quoting post's author, not the quoted one's


def test_graphql_quoted_tweet_with_visibility_results_is_unwrapped() -> None:
    quoted = {"__typename": "TweetWithVisibilityResults", "tweet": gql_tweet(QUOTED, media=[gif_entity()])}
    tweet = gql_tweet(media=[])
    tweet["quoted_status_result"] = {"result": quoted}
    info = x.parse_page_json(result_url(), by_result(tweet), POST)
    assert info is not None
    assert info.quoted_post_id == QUOTED
    assert [(c.kind, c.item, c.quoted) for c in info.candidates] == [("gif", 0, True)]


def test_graphql_unreadable_quoted_tweet_keeps_its_id_only() -> None:
    tweet = gql_tweet(quoted_status_id_str=QUOTED)
    tweet["quoted_status_result"] = {"result": {"__typename": "TweetTombstone", "tombstone": {}}}
    info = x.parse_page_json(result_url(), by_result(tweet), POST)
    assert info is not None
    assert info.quoted_post_id == QUOTED
    assert not any(c.quoted for c in info.candidates)


def test_graphql_tweet_with_visibility_results_is_unwrapped() -> None:
    wrapped = {"__typename": "TweetWithVisibilityResults", "tweet": gql_tweet(), "tweetInterstitial": {}}
    info = x.parse_page_json(result_url(), by_result(wrapped), POST)
    assert info is not None
    assert info.post_id == POST
    assert len(info.candidates) == 4


def test_graphql_posted_at_converts_offsets_to_utc() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(created_at="Thu Feb 29 23:30:00 -0230 2024")), POST)
    assert info is not None
    assert info.posted_at == "2024-03-01T02:00:00Z"


def test_graphql_unparseable_date_is_kept_raw_only() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(created_at="yesterday")), POST)
    assert info is not None
    assert info.posted_at is None
    assert info.extra["created_at"] == "yesterday"


def test_graphql_long_text_makes_a_short_title() -> None:
    info = x.parse_page_json(result_url(), by_result(gql_tweet(text="word " * 60)), POST)
    assert info is not None
    assert info.title is not None
    assert info.title.startswith('Harbour Cam on X: "word word')
    assert info.title.endswith('\u2026"')
    assert len(info.title) < 130


# --- GraphQL: failures of the focal post ------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "error", "code"),
    [
        ({"__typename": "TweetUnavailable", "reason": "Protected"}, PostPrivate, "POST_PRIVATE"),
        ({"__typename": "TweetUnavailable", "reason": "NsfwLoggedOut"}, LoginRequired, "LOGIN_REQUIRED"),
        ({"__typename": "TweetUnavailable", "reason": "NsfwViewerHasNoStatedAge"}, LoginRequired, "LOGIN_REQUIRED"),
        ({"__typename": "TweetUnavailable", "reason": "NsfwViewerIsUnderage"}, LoginRequired, "LOGIN_REQUIRED"),
        ({"__typename": "TweetUnavailable", "reason": "Suspended"}, PostUnavailable, "POST_UNAVAILABLE"),
        ({"__typename": "TweetUnavailable", "reason": "Unavailable"}, PostUnavailable, "POST_UNAVAILABLE"),
        ({"__typename": "TweetUnavailable"}, PostUnavailable, "POST_UNAVAILABLE"),
        (
            {"__typename": "TweetTombstone", "tombstone": {"text": {"text": "This Post was deleted."}}},
            PostUnavailable,
            "POST_UNAVAILABLE",
        ),
    ],
)
def test_graphql_unreadable_focal_post_raises(result: dict[str, Any], error: type[Exception], code: str) -> None:
    with pytest.raises(error) as caught:
        x.parse_page_json(result_url(), by_result(result), POST)
    assert caught.value.code == code  # type: ignore[attr-defined]


def test_graphql_empty_result_is_not_found() -> None:
    with pytest.raises(PostNotFound):
        x.parse_page_json(result_url(), by_result(None), POST)
    with pytest.raises(PostNotFound):
        x.parse_page_json(result_url(), {"data": {"tweetResult": {"result": {}}}}, POST)


def test_graphql_result_for_another_post_is_none() -> None:
    # A request that names another post: not about this one, even when it failed
    assert x.parse_page_json(result_url("42"), by_result(gql_tweet("42")), POST) is None
    assert x.parse_page_json(result_url("42"), by_result(None), POST) is None
    assert x.parse_page_json(result_url("42"), by_result({"__typename": "TweetTombstone"}), POST) is None
    # A response whose URL does not say: the tweet's own id decides
    assert x.parse_page_json("https://x.com/other.json", by_result(gql_tweet("42")), POST) is None


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "text",
        {},
        {"data": {}},
        {"data": {"user": {"result": {"__typename": "User"}}}},
        {"guest_token": "123"},
    ],
)
def test_other_json_is_none(data: Any) -> None:
    assert x.parse_page_json("https://x.com/i/api/1.1/guest/activate.json", data, POST) is None
    assert x.parse_page_json(result_url(), data, POST) is None


def test_graphql_errors_about_the_post() -> None:
    missing = {"errors": [{"message": "_Missing: No status found with that ID.", "code": 144}], "data": {}}
    with pytest.raises(PostNotFound):
        x.parse_page_json(detail_url(), missing, POST)
    private = {"errors": [{"message": "Sorry, you are not authorized to see this status.", "code": 179}]}
    with pytest.raises(PostPrivate):
        x.parse_page_json(result_url(), private, POST)
    # The same errors from an unrelated endpoint say nothing about the post
    assert x.parse_page_json("https://x.com/i/api/graphql/q/UserByScreenName", missing, POST) is None


# --- GraphQL: TweetDetail ----------------------------------------------------------------------


def test_tweet_detail_picks_the_focal_tweet() -> None:
    # Given the conversation: a parent, the focal post, a reply module
    parent = gql_tweet("1790000000000000001", media=[gif_entity()], user=core_user())
    reply = gql_tweet("1790400000000000000", media=[photo_entity()], user=core_user())
    data = detail(
        item_entry("tweet-1790000000000000001", parent),
        item_entry(f"tweet-{POST}", gql_tweet()),
        module_entry("conversationthread-1790400000000000000", reply),
    )
    # When parsed for the focal post
    info = x.parse_page_json(detail_url(), data, POST)
    # Then only its own media is there
    assert info is not None
    assert info.post_id == POST
    assert {c.kind for c in info.candidates} == {"video"}
    # And the reply can be read for its own id
    reply_info = x.parse_page_json(detail_url("1790400000000000000"), data, "1790400000000000000")
    assert reply_info is not None
    assert reply_info.author_handle == "tidewatcher"


def test_tweet_detail_focal_tweet_inside_a_module_and_wrapped() -> None:
    wrapped = {"__typename": "TweetWithVisibilityResults", "tweet": gql_tweet()}
    data = detail(module_entry("conversationthread-1", gql_tweet("1"), wrapped))
    info = x.parse_page_json(detail_url(), data, POST)
    assert info is not None
    assert info.post_id == POST


def test_tweet_detail_without_the_focal_tweet_is_none() -> None:
    data = detail(item_entry("tweet-1", gql_tweet("1")))
    assert x.parse_page_json("https://x.com/i/api/graphql/q/TweetDetail", data, POST) is None


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ({"__typename": "TweetUnavailable", "reason": "NsfwLoggedOut"}, LoginRequired),
        ({"__typename": "TweetUnavailable", "reason": "Protected"}, PostPrivate),
        ({"__typename": "TweetTombstone", "tombstone": {"text": {"text": "gone"}}}, PostUnavailable),
    ],
)
def test_tweet_detail_unreadable_focal_entry_raises(result: dict[str, Any], error: type[Exception]) -> None:
    data = detail(item_entry("tweet-1", gql_tweet("1")), item_entry(f"tweet-{POST}", result))
    with pytest.raises(error):
        x.parse_page_json(detail_url(), data, POST)


def test_tweet_detail_unreadable_other_entries_are_ignored() -> None:
    data = detail(
        item_entry("tweet-1", {"__typename": "TweetTombstone"}),
        item_entry(f"tweet-{POST}", gql_tweet()),
    )
    info = x.parse_page_json(detail_url(), data, POST)
    assert info is not None


def test_parsing_does_not_modify_its_input() -> None:
    data = by_result(gql_tweet(media=[photo_entity(), video_entity(), gif_entity()]))
    before = copy.deepcopy(data)
    x.parse_page_json(result_url(), data, POST)
    assert data == before
