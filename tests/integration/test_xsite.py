"""The X-like fixture site: pages, GraphQL and syndication JSON in X's shapes, media under CDN-like
paths, and every failure mode its catalogue promises."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mediavault.errors import MediaVaultError
from mediavault.media.candidates import Candidate
from mediavault.platforms import x
from mediavault.platforms.base import PostInfo
from mediavault_local.samples.media import ANIMATED, CLIP_VARIANTS, PHOTO, generate_media
from mediavault_local.samples.xsite import (
    GUEST_COOKIE,
    SLOW_MEDIA_BPS,
    TWEET_DETAIL_QUERY_ID,
    TWEET_RESULT_QUERY_ID,
    X_POSTS,
    XSITE_AUTH_TOKEN,
    XPost,
    XSite,
    expected_token,
)

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
POSTS = {post.post_id: post for post in X_POSTS}
P = "17901000000000000"  # the catalogue's id prefix
VIDEO, GIF, MIXED, ORIG_404, QUOTING, QUOTED = P + "01", P + "02", P + "03", P + "04", P + "05", P + "15"
GRAPHQL_ONLY, PROTECTED, SENSITIVE, TOMBSTONE, MISSING = P + "06", P + "07", P + "08", P + "09", P + "10"
STALE_SIG, GUEST_ONLY, SAME_ORIGIN, EXPIRING = P + "11", P + "12", P + "13", P + "14"
HTML_BODY, EMPTY_BODY, TRUNCATED, SLOW = P + "16", P + "17", P + "18", P + "19"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("xsite-media")
    generate_media(directory)
    return directory


@pytest.fixture(scope="module")
def site(media_dir: Path) -> Iterator[XSite]:
    with XSite(media_dir) as running:
        yield running


@pytest.fixture
def client(site: XSite) -> Iterator[httpx.Client]:
    site.reset()
    site.clear_requests()
    with httpx.Client(base_url=site.base_url, trust_env=False, timeout=20) as http:
        yield http


def cookie_header(cookies: dict[str, str] | None) -> dict[str, str]:
    """Cookies for one request only (the client keeps none)."""
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}


def graphql(client: httpx.Client, post_id: str, *, cookies: dict[str, str] | None = None) -> httpx.Response:
    variables = json.dumps({"tweetId": post_id, "withCommunity": False, "includePromotedContent": False})
    return client.get(
        f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId",
        params={"variables": variables, "features": "{}"},
        headers=cookie_header(cookies),
    )


def detail(client: httpx.Client, post_id: str, *, cookies: dict[str, str] | None = None) -> httpx.Response:
    variables = json.dumps({"focalTweetId": post_id, "with_rux_injections": False})
    return client.get(
        f"/i/api/graphql/{TWEET_DETAIL_QUERY_ID}/TweetDetail",
        params={"variables": variables},
        headers=cookie_header(cookies),
    )


def extract(client: httpx.Client, post_id: str) -> PostInfo:
    """What the page's GraphQL answer says, as the platform module parses it."""
    response = graphql(client, post_id)
    info = x.parse_page_json(str(response.url), response.json(), post_id)
    assert info is not None
    return info


def best_video(info: PostInfo) -> Candidate:
    return max((c for c in info.candidates if c.kind == "video" and c.bitrate), key=lambda c: c.bitrate or 0)


def variant(info: PostInfo, height: int) -> Candidate:
    return next(c for c in info.candidates if c.height == height and c.content_type == "video/mp4")


def fetch_json(client: httpx.Client) -> Any:
    def get_json(url: str) -> tuple[int, Any]:
        response = client.get(url)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    return get_json


def outcome(post: XPost, info: PostInfo) -> tuple[list[str], list[str]]:
    """Kinds of the post's own items in order, and of the quoted post's."""
    own = {c.item: c.kind for c in info.candidates if not c.quoted}
    quoted = {c.item: c.kind for c in info.candidates if c.quoted}
    return [own[i] for i in sorted(own)], [quoted[i] for i in sorted(quoted)]


# --- the catalogue --------------------------------------------------------------------------------


def test_catalogue_is_complete_and_consistent(media_dir: Path) -> None:
    assert len(POSTS) == len(X_POSTS)
    for post in X_POSTS:
        assert re.fullmatch(r"\d{19}", post.post_id)
        assert post.description
        assert x.post_id(post.path) == post.post_id
        if post.expected_error is None or post.needs_login:
            assert post.expected_media
            assert len(post.expected_files) == len(post.expected_media)
            for name in post.expected_files:
                assert (media_dir / name).is_file()
        else:
            assert not post.expected_media
    errors = {p.expected_error for p in X_POSTS if p.expected_error}
    assert errors == {"POST_PRIVATE", "LOGIN_REQUIRED", "POST_UNAVAILABLE", "POST_NOT_FOUND"}


@pytest.mark.parametrize("post", X_POSTS, ids=lambda p: p.post_id[-2:])
def test_graphql_answer_matches_the_catalogue(client: httpx.Client, post: XPost) -> None:
    response = graphql(client, post.post_id)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    if post.expected_error:
        with pytest.raises(MediaVaultError) as caught:
            x.parse_page_json(str(response.url), response.json(), post.post_id)
        assert caught.value.code == post.expected_error
        return
    info = x.parse_page_json(str(response.url), response.json(), post.post_id)
    assert info is not None
    own, quoted = outcome(post, info)
    assert tuple(own) == post.expected_media
    assert tuple(quoted) == post.quoted_media


@pytest.mark.parametrize("post", X_POSTS, ids=lambda p: p.post_id[-2:])
def test_syndication_answer_matches_the_catalogue(site: XSite, client: httpx.Client, post: XPost) -> None:
    if post.post_id == TOMBSTONE:
        with pytest.raises(MediaVaultError) as caught:
            x.fast_path(post.post_id, site.base_url, fetch_json(client))
        assert caught.value.code == post.expected_error == "POST_UNAVAILABLE"
        return
    info = x.fast_path(post.post_id, site.base_url, fetch_json(client))
    assert (info is not None) == post.syndication
    if info is not None:
        own, quoted = outcome(post, info)
        assert tuple(own) == post.expected_media
        assert tuple(quoted) == post.quoted_media


def test_sensitive_post_needs_the_login_cookie(client: httpx.Client) -> None:
    auth = {"auth_token": XSITE_AUTH_TOKEN}
    # Logged out: NsfwLoggedOut
    body = graphql(client, SENSITIVE).json()
    assert body["data"]["tweetResult"]["result"] == {"__typename": "TweetUnavailable", "reason": "NsfwLoggedOut"}
    # A wrong token is logged out too
    body = graphql(client, SENSITIVE, cookies={"auth_token": "nope"}).json()
    assert body["data"]["tweetResult"]["result"]["reason"] == "NsfwLoggedOut"
    # Logged in: the tweet, behind a sensitive-content interstitial
    response = graphql(client, SENSITIVE, cookies=auth)
    result = response.json()["data"]["tweetResult"]["result"]
    assert result["__typename"] == "TweetWithVisibilityResults"
    assert result["tweet"]["legacy"]["possibly_sensitive"] is True
    info = x.parse_page_json(str(response.url), response.json(), SENSITIVE)
    assert info is not None
    assert info.sensitive is True
    assert outcome(POSTS[SENSITIVE], info)[0] == ["video"]


# --- post pages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [f"/harbourcam/status/{VIDEO}", f"/i/status/{VIDEO}", f"/i/web/status/{VIDEO}/video/1"]
)
def test_post_page_is_an_app_shell_with_a_guest_cookie(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.startswith("<!DOCTYPE html>")
    assert f'data-post-id="{VIDEO}"' in page
    assert f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId" not in page  # built by the script
    assert TWEET_RESULT_QUERY_ID in page
    assert "TweetResultByRestId" in page
    assert 'data-viewer="guest"' in page
    # No media URL in the HTML as served
    for marker in (".mp4", ".m3u8", ".jpg", "/ext_tw_video/", "/tweet_video", "/media/"):
        assert marker not in page
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{GUEST_COOKIE}=v1%3A")
    assert "Path=/" in cookie


def test_post_page_for_a_logged_in_viewer_reads_tweet_detail(client: httpx.Client) -> None:
    response = client.get(f"/tidewatcher/status/{SENSITIVE}", headers=cookie_header({"auth_token": XSITE_AUTH_TOKEN}))
    assert response.status_code == 200
    assert 'data-viewer="user"' in response.text
    assert TWEET_DETAIL_QUERY_ID in response.text
    assert "set-cookie" not in response.headers


def test_every_status_page_is_200_like_the_real_app(client: httpx.Client) -> None:
    for post_id in (MISSING, PROTECTED, TOMBSTONE, "1234567890123456789"):
        assert client.get(f"/someone/status/{post_id}").status_code == 200


def test_guest_cookie_is_reused_not_reissued(client: httpx.Client) -> None:
    first = client.get(f"/i/status/{VIDEO}")
    guest = first.cookies[GUEST_COOKIE]
    second = client.get(f"/i/status/{VIDEO}", headers=cookie_header({GUEST_COOKIE: guest}))
    assert "set-cookie" not in second.headers


def test_index_and_unknown_paths(client: httpx.Client) -> None:
    index = client.get("/")
    assert index.status_code == 200
    for post in X_POSTS:
        assert post.path in index.text
    assert client.get("/explore/tabs/for-you").status_code == 404
    assert client.get("/harbourcam/status/abc").status_code == 404


# --- GraphQL --------------------------------------------------------------------------------------


def test_graphql_shapes(client: httpx.Client) -> None:
    result = graphql(client, VIDEO).json()["data"]["tweetResult"]["result"]
    assert result["__typename"] == "Tweet"
    assert result["rest_id"] == VIDEO
    assert result["views"] == {"count": "4096", "state": "EnabledWithCount"}
    assert result["note_tweet"]["note_tweet_results"]["result"]["text"].startswith("Evening at the harbour")
    legacy = result["legacy"]
    assert legacy["full_text"].endswith("\u2026 " + legacy["extended_entities"]["media"][0]["url"])
    assert re.fullmatch(r"\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} \+0000 \d{4}", legacy["created_at"])
    (video,) = legacy["extended_entities"]["media"]
    assert video["type"] == "video"
    assert legacy["entities"]["media"] == [video]
    types = [v["content_type"] for v in video["video_info"]["variants"]]
    assert sorted(types) == ["application/x-mpegURL", "video/mp4", "video/mp4", "video/mp4"]
    for v in video["video_info"]["variants"]:
        path = urlsplit(v["url"]).path
        if v["content_type"] == "video/mp4":
            assert re.fullmatch(r"/ext_tw_video/\d+/pu/vid/avc1/\d+x\d+/\w+\.mp4", path)
        else:
            assert re.fullmatch(r"/ext_tw_video/\d+/pu/pl/\w+\.m3u8", path)
    # The older user shape on this post, the newer one on another
    user = result["core"]["user_results"]["result"]
    assert user["legacy"]["screen_name"] == "harbourcam"
    assert "core" not in user
    other = graphql(client, GIF).json()["data"]["tweetResult"]["result"]["core"]["user_results"]["result"]
    assert other["core"]["screen_name"] == "tidewatcher"
    assert "screen_name" not in other["legacy"]


def test_graphql_full_text_is_escaped_like_x(client: httpx.Client) -> None:
    legacy = graphql(client, MIXED).json()["data"]["tweetResult"]["result"]["legacy"]
    assert "clip &amp; a loop" in legacy["full_text"]
    assert extract(client, MIXED).caption == "Harbour walk: four stills, a clip & a loop"


def test_graphql_quoted_post(client: httpx.Client) -> None:
    result = graphql(client, QUOTING).json()["data"]["tweetResult"]["result"]
    assert result["legacy"]["quoted_status_id_str"] == QUOTED
    assert result["quoted_status_result"]["result"]["rest_id"] == QUOTED
    info = extract(client, QUOTING)
    assert info.quoted_post_id == QUOTED


def test_graphql_failures(client: httpx.Client) -> None:
    assert graphql(client, MISSING).json() == {"data": {"tweetResult": {}}}
    assert graphql(client, "1999999999999999999").json() == {"data": {"tweetResult": {}}}
    protected = graphql(client, PROTECTED).json()["data"]["tweetResult"]["result"]
    assert protected == {"__typename": "TweetUnavailable", "reason": "Protected"}
    tombstone = graphql(client, TOMBSTONE).json()["data"]["tweetResult"]["result"]
    assert tombstone["__typename"] == "TweetTombstone"
    assert "deleted" in tombstone["tombstone"]["text"]["text"]


def test_graphql_bad_requests(client: httpx.Client) -> None:
    assert client.get("/i/api/graphql/WrongQueryId/TweetResultByRestId?variables={}").status_code == 404
    bad = client.get(f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId", params={"variables": "{"})
    assert bad.status_code == 400
    assert "errors" in bad.json()
    no_vars = client.get(f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId")
    assert no_vars.status_code == 400


def test_tweet_detail_conversation(client: httpx.Client) -> None:
    auth = {"auth_token": XSITE_AUTH_TOKEN}
    response = detail(client, VIDEO, cookies=auth)
    body = response.json()
    instructions = body["data"]["threaded_conversation_with_injections_v2"]["instructions"]
    entries = next(i for i in instructions if i["type"] == "TimelineAddEntries")["entries"]
    assert entries[0]["entryId"] == f"tweet-{VIDEO}"
    assert entries[1]["content"]["entryType"] == "TimelineTimelineModule"
    info = x.parse_page_json(str(response.url), body, VIDEO)
    assert info is not None
    assert info.post_id == VIDEO
    assert outcome(POSTS[VIDEO], info)[0] == ["video"]
    # The focal post's failures, in TweetDetail's shapes
    missing = detail(client, MISSING, cookies=auth)
    with pytest.raises(MediaVaultError) as caught:
        x.parse_page_json(str(missing.url), missing.json(), MISSING)
    assert caught.value.code == "POST_NOT_FOUND"
    assert missing.json()["errors"][0]["code"] == 144
    protected = detail(client, PROTECTED, cookies=auth)
    with pytest.raises(MediaVaultError) as caught:
        x.parse_page_json(str(protected.url), protected.json(), PROTECTED)
    assert caught.value.code == "POST_PRIVATE"


# --- syndication ----------------------------------------------------------------------------------


def test_syndication_checks_the_token(client: httpx.Client) -> None:
    good = x.syndication_token(VIDEO)
    assert client.get("/tweet-result", params={"id": VIDEO, "token": good, "lang": "en"}).status_code == 200
    assert client.get("/tweet-result", params={"id": VIDEO, "token": good + "x"}).status_code == 400
    assert client.get("/tweet-result", params={"id": VIDEO}).status_code == 400
    assert client.get("/tweet-result", params={"id": "abc", "token": good}).status_code == 400
    # The token of another post does not open this one (ids a few apart share a token: the double is the same)
    other = x.syndication_token("1629307668568633344")
    assert client.get("/tweet-result", params={"id": VIDEO, "token": other}).status_code == 400


def test_fixture_token_is_independent_and_agrees() -> None:
    # Vectors computed with node, and random snowflake-sized ids checked against the platform module
    assert expected_token("1712345678901234567") == "45fhqezna5p"
    assert expected_token("1629307668568633344") == "3y6mctgwzxo"
    rng = random.Random(20)
    ids = [p.post_id for p in X_POSTS] + [str(rng.randint(10**16, 2 * 10**18)) for _ in range(300)]
    for post_id in ids:
        assert expected_token(post_id) == x.syndication_token(post_id), post_id


def test_syndication_shapes(site: XSite, client: httpx.Client) -> None:
    data = client.get(x.syndication_url(MIXED, site.base_url)).json()
    assert data["__typename"] == "Tweet"
    assert data["id_str"] == MIXED
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z", data["created_at"])
    assert set(data["user"]) >= {"id_str", "name", "screen_name"}
    assert [m["type"] for m in data["mediaDetails"]] == ["photo"] * 4 + ["video", "animated_gif"]
    assert len(data["photos"]) == 4
    assert data["video"]["contentType"] == "media_entity"
    assert {v["type"] for v in data["video"]["variants"]} == {"video/mp4", "application/x-mpegURL"}
    assert data["video"]["poster"].endswith(".jpg")
    assert data["conversation_count"] == 9
    quoting = client.get(x.syndication_url(QUOTING, site.base_url)).json()
    assert quoting["quoted_tweet"]["id_str"] == QUOTED
    assert client.get(x.syndication_url(VIDEO, site.base_url)).json()["note_tweet"]["id"]


def test_syndication_failures(site: XSite, client: httpx.Client) -> None:
    for post_id in (PROTECTED, MISSING, "1999999999999999999"):
        response = client.get(x.syndication_url(post_id, site.base_url))
        assert response.status_code == 404
        assert response.content == b""
    for post_id in (GRAPHQL_ONLY, SENSITIVE):
        assert client.get(x.syndication_url(post_id, site.base_url)).json() == {}
    assert client.get(x.syndication_url(TOMBSTONE, site.base_url)).json()["__typename"] == "TweetTombstone"


# --- media ----------------------------------------------------------------------------------------


def test_best_variants_are_the_generated_files(client: httpx.Client, media_dir: Path) -> None:
    info = extract(client, VIDEO)
    for spec in CLIP_VARIANTS:
        cand = variant(info, spec.height)
        response = client.get(cand.url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        assert response.content == (media_dir / spec.filename).read_bytes()
    assert best_video(info).height == 1080


def test_media_supports_range_and_head(client: httpx.Client, media_dir: Path) -> None:
    url = best_video(extract(client, VIDEO)).url
    size = (media_dir / "clip-1080p.mp4").stat().st_size
    partial = client.get(url, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206
    assert partial.headers["content-range"] == f"bytes 100-199/{size}"
    assert partial.content == (media_dir / "clip-1080p.mp4").read_bytes()[100:200]
    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size)
    assert head.headers["accept-ranges"] == "bytes"
    assert head.content == b""
    assert client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416


def test_gif_and_posters(client: httpx.Client, media_dir: Path) -> None:
    info = extract(client, GIF)
    (gif,) = info.candidates
    assert urlsplit(gif.url).path.startswith("/tweet_video/")
    assert client.get(gif.url).content == (media_dir / ANIMATED.filename).read_bytes()
    assert gif.poster is not None
    poster = client.get(gif.poster)
    assert (poster.status_code, poster.headers["content-type"]) == (200, "image/jpeg")
    video_poster = best_video(extract(client, VIDEO)).poster
    assert video_poster is not None
    assert client.get(video_poster).status_code == 200


def test_photo_sizes(client: httpx.Client, media_dir: Path) -> None:
    info = extract(client, MIXED)
    photos = [c for c in info.candidates if c.kind == "photo" and c.item == 0]
    assert [c.preference for c in photos] == [3, 2, 1, 0]
    for cand in photos:
        response = client.get(cand.url)
        assert response.status_code == 200, cand.url
        assert response.content == (media_dir / PHOTO).read_bytes()
    base = photos[0].url.split("?")[0]
    assert client.get(base, params={"format": "jpg", "name": "small"}).status_code == 200
    assert client.get(base, params={"format": "jpg", "name": "huge"}).status_code == 400


def test_photo_whose_original_is_missing(client: httpx.Client) -> None:
    info = extract(client, ORIG_404)
    statuses = {c.preference: client.get(c.url).status_code for c in info.candidates}
    assert statuses == {3: 404, 2: 200, 1: 200, 0: 200}


def test_hls_playlist(client: httpx.Client) -> None:
    info = extract(client, VIDEO)
    (hls,) = [c for c in info.candidates if c.is_streaming_manifest]
    playlist = client.get(hls.url)
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/x-mpegURL"
    lines = playlist.text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert sum(line.startswith("#EXT-X-STREAM-INF") for line in lines) == 3
    rendition = next(line for line in lines if line and not line.startswith("#"))
    assert client.get(rendition).status_code == 404
    assert client.get("/ext_tw_video/1/pu/pl/unknown.m3u8").status_code == 404


def test_unknown_media_is_404(client: httpx.Client) -> None:
    for path in ("/media/GNope?format=jpg&name=orig", "/tweet_video/nope.mp4", "/ext_tw_video/1/pu/vid/avc1/1x1/a.mp4"):
        assert client.get(path).status_code == 404


# --- failure modes of the download retry chain ------------------------------------------------------


def test_stale_signature_needs_a_re_extraction(site: XSite, client: httpx.Client) -> None:
    # Given the first extraction's best URL
    first = best_video(extract(client, STALE_SIG)).url
    assert "sig=" in first
    # Then its first download is refused, and so is every retry of it
    assert client.get(first).status_code == 403
    assert client.get(first).status_code == 403
    # When the post is extracted again (here: through syndication)
    again = x.fast_path(STALE_SIG, site.base_url, fetch_json(client))
    assert again is not None
    fresh = best_video(again).url
    # Then the fresh URL works and the stale one still does not
    assert fresh != first
    assert client.get(fresh).status_code == 200
    assert client.get(fresh, headers={"Range": "bytes=0-9"}).status_code == 206
    assert client.get(first).status_code == 403
    assert site.extractions(STALE_SIG) == 2
    # Other variants are unsigned and fine
    assert client.get(variant(extract(client, STALE_SIG), 720).url).status_code == 200
    # And reset starts the story over
    site.reset()
    assert site.extractions(STALE_SIG) == 0
    assert client.get(best_video(extract(client, STALE_SIG)).url).status_code == 403


def test_guest_cookie_media(client: httpx.Client) -> None:
    info = extract(client, GUEST_ONLY)
    best = best_video(info).url
    assert client.get(best).status_code == 403
    assert (
        client.get(best, headers=cookie_header({GUEST_COOKIE: "v1%3A123"})).status_code == 403
    )  # not one the site issued
    guest = client.get(f"/tidewatcher/status/{GUEST_ONLY}").cookies[GUEST_COOKIE]
    assert client.get(best, headers=cookie_header({GUEST_COOKIE: guest})).status_code == 200
    assert client.get(variant(info, 720).url).status_code == 200


def test_same_origin_media(client: httpx.Client) -> None:
    info = extract(client, SAME_ORIGIN)
    best = best_video(info).url
    guest = client.get(f"/pierpost/status/{SAME_ORIGIN}").cookies[GUEST_COOKIE]
    assert client.get(best).status_code == 403
    assert client.get(best, headers=cookie_header({GUEST_COOKIE: guest})).status_code == 403
    assert client.get(best, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    # What the browser sends for a fetch made by the page's own script
    assert client.get(best, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get(variant(info, 720).url).status_code == 200


def test_expired_signature_then_a_fresh_one(client: httpx.Client) -> None:
    first = best_video(extract(client, EXPIRING)).url
    expires = int(re.search(r"Expires=(\d+)", first).group(1))  # type: ignore[union-attr]
    assert expires < time.time()
    assert "Signature=" in first
    assert client.get(first).status_code == 403
    fresh = best_video(extract(client, EXPIRING)).url
    assert int(re.search(r"Expires=(\d+)", fresh).group(1)) > time.time()  # type: ignore[union-attr]
    assert client.get(fresh).status_code == 200
    tampered = re.sub(r"Signature=(\w)", lambda m: "Signature=" + ("1" if m.group(1) == "0" else "0"), fresh)
    assert tampered != fresh
    assert client.get(tampered).status_code == 403
    extended = re.sub(r"Expires=(\d+)", lambda m: f"Expires={int(m.group(1)) + 60}", fresh)
    assert client.get(extended).status_code == 403


def test_html_body_served_as_video(client: httpx.Client) -> None:
    info = extract(client, HTML_BODY)
    response = client.get(best_video(info).url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content.lstrip().lower().startswith(b"<!doctype html")
    assert client.get(variant(info, 720).url).content[4:8] == b"ftyp"


def test_empty_body(client: httpx.Client) -> None:
    info = extract(client, EMPTY_BODY)
    response = client.get(best_video(info).url)
    assert (response.status_code, response.headers["content-length"], response.content) == (200, "0", b"")
    assert client.get(variant(info, 720).url).content[4:8] == b"ftyp"


def test_truncated_body(client: httpx.Client, media_dir: Path) -> None:
    info = extract(client, TRUNCATED)
    response = client.get(best_video(info).url)
    assert response.status_code == 200
    assert len(response.content) == 5 * 1024
    assert response.content == (media_dir / "clip-1080p.mp4").read_bytes()[: 5 * 1024]
    assert client.get(variant(info, 720).url).content[4:8] == b"ftyp"


def test_slow_post_media_is_throttled(client: httpx.Client) -> None:
    url = best_video(extract(client, SLOW)).url
    size = SLOW_MEDIA_BPS // 2
    started = time.monotonic()
    response = client.get(url, headers={"Range": f"bytes=0-{size - 1}"})
    elapsed = time.monotonic() - started
    assert response.status_code == 206
    assert len(response.content) == size
    assert elapsed >= 0.4
    # Other posts are not throttled
    started = time.monotonic()
    client.get(best_video(extract(client, VIDEO)).url, headers={"Range": f"bytes=0-{size - 1}"})
    assert time.monotonic() - started < 0.4


def test_site_throttle_applies_to_all_media(media_dir: Path) -> None:
    with XSite(media_dir, throttle_bps=200_000) as slow, httpx.Client(trust_env=False, timeout=20) as http:
        response = http.get(slow.url(f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId"), params={
            "variables": json.dumps({"tweetId": VIDEO})
        })  # fmt: skip
        info = x.parse_page_json(str(response.url), response.json(), VIDEO)
        assert info is not None
        started = time.monotonic()
        http.get(best_video(info).url, headers={"Range": "bytes=0-99999"})
        assert time.monotonic() - started >= 0.35


# --- bookkeeping --------------------------------------------------------------------------------


def test_request_log_and_reset(site: XSite, client: httpx.Client) -> None:
    client.get(f"/i/status/{VIDEO}", headers={"User-Agent": "probe/1"})
    graphql(client, VIDEO)
    assert site.paths_requested("GET")[-2:] == [
        f"/i/status/{VIDEO}",
        f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId",
    ]
    method, path, headers = site.requests[-2]
    assert (method, path, headers["User-Agent"]) == ("GET", f"/i/status/{VIDEO}", "probe/1")
    assert site.extractions(VIDEO) == 1
    site.reset()
    assert site.extractions(VIDEO) == 0
    assert site.post_url(VIDEO) == site.url(f"/harbourcam/status/{VIDEO}")


def test_urls_follow_the_host_header(site: XSite, client: httpx.Client) -> None:
    response = client.get(
        f"/i/api/graphql/{TWEET_RESULT_QUERY_ID}/TweetResultByRestId",
        params={"variables": json.dumps({"tweetId": VIDEO})},
        headers={"Host": f"localhost:{site.port}"},
    )
    info = x.parse_page_json(str(response.url), response.json(), VIDEO)
    assert info is not None
    assert all(c.url.startswith(f"http://localhost:{site.port}/") for c in info.candidates)


# --- in a real browser ----------------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_chromium_renders_the_post_and_only_its_own_fetch_passes_hotlink_protection(site: XSite) -> None:
    from playwright.sync_api import sync_playwright

    site.reset()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_context().new_page()
            answers: list[tuple[str, Any]] = []
            page.on("response", lambda r: answers.append((r.url, r.json())) if "/i/api/graphql/" in r.url else None)
            page.goto(site.post_url(SAME_ORIGIN))
            page.wait_for_selector("body[data-loaded='1']", timeout=15_000)
            assert page.title().startswith('Pier Post on X: "Hotlink protected"')
            assert page.locator("video[poster]").count() == 1
            assert GUEST_COOKIE in {c["name"] for c in page.context.cookies()}
            # The page's GraphQL answer is what the platform module reads
            ((url, body),) = answers
            info = x.parse_page_json(url, body, SAME_ORIGIN)
            assert info is not None
            best = best_video(info).url
            fetched = page.evaluate("async (u) => (await fetch(u)).status", best)
            assert fetched == 200
            with httpx.Client(trust_env=False) as http:
                assert http.get(best).status_code == 403

            # Logged out, the sensitive post shows the age notice
            page.goto(site.post_url(SENSITIVE))
            page.wait_for_selector("body[data-loaded='1']", timeout=15_000)
            assert "Age-restricted" in page.inner_text("#timeline")
        finally:
            browser.close()
