"""The Bluesky fixture site: its XRPC answers, media and pages, and the Bluesky fast path against it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin

import httpx
import pytest

from mediavault.errors import MediaVaultError
from mediavault.platforms import bluesky
from mediavault.platforms.base import PostInfo
from mediavault_local.samples.bsky import BSKY_POSTS, BskyPost, BskySite

pytestmark = pytest.mark.integration

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
ARCHIVED = [p for p in BSKY_POSTS if p.error is None]
FAILING = [p for p in BSKY_POSTS if p.error is not None]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_dir(sample_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample media, copied so that this module's HLS set is its own."""
    directory = tmp_path_factory.mktemp("bsky-media")
    for file in sample_media.iterdir():
        if file.is_file():
            shutil.copy2(file, directory / file.name)
    return directory


@pytest.fixture(scope="module")
def site(media_dir: Path) -> Iterator[BskySite]:
    with BskySite(media_dir) as running:
        yield running


@pytest.fixture
def client(site: BskySite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base_url, trust_env=False, timeout=10) as http:
        yield http


@pytest.fixture
def get_json(client: httpx.Client) -> Callable[[str], tuple[int, Any]]:
    """The getter the worker hands to ``fast_path``: status and parsed body (None when not JSON)."""

    def get(url: str) -> tuple[int, Any]:
        response = client.get(url)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    return get


def read(post: BskyPost, site: BskySite, get_json: Callable[[str], tuple[int, Any]]) -> PostInfo:
    info = bluesky.fast_path(post.post_id, site.api_base, get_json)
    assert info is not None, f"{post.path}: the fast path gave up"
    return info


def thread_of(client: httpx.Client, uri: str) -> httpx.Response:
    return client.get("/xrpc/app.bsky.feed.getPostThread", params={"uri": uri, "depth": 0, "parentHeight": 0})


def did_of(client: httpx.Client, handle: str) -> str:
    response = client.get("/xrpc/com.atproto.identity.resolveHandle", params={"handle": handle})
    assert response.status_code == 200
    return str(response.json()["did"])


# ---------------------------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------------------------


def test_the_catalogue_uses_real_identifier_syntax() -> None:
    for post in BSKY_POSTS:
        assert TID.match(post.rkey), post.rkey
        assert bluesky.post_id(post.path) == post.post_id
    assert len({p.path for p in BSKY_POSTS}) == len(BSKY_POSTS)
    codes = {p.error for p in FAILING}
    assert {"POST_NOT_FOUND", "POST_UNAVAILABLE", "LOGIN_REQUIRED", "UPSTREAM_UNAVAILABLE"} <= codes
    assert any(p.actor.startswith("did:plc:") for p in BSKY_POSTS)
    assert any(p.sensitive for p in BSKY_POSTS)


# ---------------------------------------------------------------------------------------------
# XRPC
# ---------------------------------------------------------------------------------------------


def test_resolve_handle_answers_a_did_or_an_xrpc_error(client: httpx.Client) -> None:
    did = did_of(client, "harbour.test")
    assert re.fullmatch(r"did:plc:[a-z2-7]{24}", did)
    assert did_of(client, "HARBOUR.test") == did

    missing = client.get("/xrpc/com.atproto.identity.resolveHandle", params={"handle": "ghost.test"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "InvalidRequest", "message": "Unable to resolve handle"}
    no_param = client.get("/xrpc/com.atproto.identity.resolveHandle")
    assert no_param.status_code == 400
    assert no_param.json()["error"] == "InvalidRequest"


def test_get_post_thread_answers_a_faithful_post_view(client: httpx.Client) -> None:
    # Given the video post
    did = did_of(client, "harbour.test")
    uri = f"at://{did}/app.bsky.feed.post/{BSKY_POSTS[0].rkey}"
    # When its thread is read
    response = thread_of(client, uri)
    # Then it is a threadViewPost with every field a postView has
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    thread = response.json()["thread"]
    assert thread["$type"] == "app.bsky.feed.defs#threadViewPost"
    post = thread["post"]
    assert post["uri"] == uri
    assert post["cid"].startswith("bafyrei")
    assert {"indexedAt", "viewer", "labels", "likeCount", "repostCount", "replyCount", "quoteCount"} <= set(post)
    assert post["author"]["did"] == did
    assert post["author"]["handle"] == "harbour.test"
    assert post["record"]["$type"] == "app.bsky.feed.post"
    assert post["record"]["embed"]["$type"] == "app.bsky.embed.video"
    assert post["record"]["embed"]["video"]["ref"]["$link"] == post["embed"]["cid"]
    assert post["embed"]["$type"] == "app.bsky.embed.video#view"
    assert post["embed"]["playlist"].endswith("/playlist.m3u8")
    assert quote(did, safe="") in post["embed"]["playlist"]  # as video.bsky.app writes it


def test_get_post_thread_accepts_a_handle_in_the_uri(client: httpx.Client) -> None:
    response = thread_of(client, f"at://harbour.test/app.bsky.feed.post/{BSKY_POSTS[0].rkey}")
    assert response.status_code == 200
    assert response.json()["thread"]["post"]["author"]["handle"] == "harbour.test"


def test_quote_embeds_have_their_view_shapes(client: httpx.Client) -> None:
    quoter = next(p for p in BSKY_POSTS if p.actor == "quoter.test")
    post = thread_of(client, f"at://{quoter.actor}/app.bsky.feed.post/{quoter.rkey}").json()["thread"]["post"]
    assert post["record"]["embed"]["$type"] == "app.bsky.embed.recordWithMedia"
    embed = post["embed"]
    assert embed["$type"] == "app.bsky.embed.recordWithMedia#view"
    assert embed["media"]["$type"] == "app.bsky.embed.images#view"
    quoted = embed["record"]["record"]
    assert quoted["$type"] == "app.bsky.embed.record#viewRecord"
    assert quoted["embeds"][0]["$type"] == "app.bsky.embed.video#view"
    assert quoted["value"]["$type"] == "app.bsky.feed.post"

    only = next(p for p in BSKY_POSTS if p.actor == "commentator.test")
    post = thread_of(client, f"at://{only.actor}/app.bsky.feed.post/{only.rkey}").json()["thread"]["post"]
    assert post["embed"]["$type"] == "app.bsky.embed.record#view"
    assert post["embed"]["record"]["uri"] == quoted["uri"]


def test_get_post_thread_errors(client: httpx.Client) -> None:
    missing = next(p for p in FAILING if p.actor == "harbour.test")
    response = thread_of(client, f"at://harbour.test/app.bsky.feed.post/{missing.rkey}")
    assert response.status_code == 400
    assert response.json()["error"] == "NotFound"

    walled = next(p for p in FAILING if p.actor == "walled.test")
    blocked = thread_of(client, f"at://walled.test/app.bsky.feed.post/{walled.rkey}").json()["thread"]
    assert blocked["$type"] == "app.bsky.feed.defs#blockedPost"
    assert blocked["blocked"] is True

    hidden = next(p for p in FAILING if p.actor == "signedin.test")
    author = thread_of(client, f"at://signedin.test/app.bsky.feed.post/{hidden.rkey}").json()["thread"]["post"][
        "author"
    ]
    assert [label["val"] for label in author["labels"]] == ["!no-unauthenticated"]

    busy = next(p for p in FAILING if p.actor == "busy.test")
    overloaded = thread_of(client, f"at://busy.test/app.bsky.feed.post/{busy.rkey}")
    assert overloaded.status_code == 503
    assert overloaded.headers["retry-after"]

    assert thread_of(client, "https://not-an-at-uri").status_code == 400
    assert client.get("/xrpc/app.bsky.feed.getPostThread").status_code == 400
    unknown = client.get("/xrpc/app.bsky.feed.getTimeline")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "XRPCNotSupported"


def test_the_adult_post_carries_a_porn_label(client: httpx.Client) -> None:
    post = next(p for p in BSKY_POSTS if p.sensitive)
    view = thread_of(client, f"at://{post.actor}/app.bsky.feed.post/{post.rkey}").json()["thread"]["post"]
    (label,) = view["labels"]
    assert label["val"] == "porn"
    assert label["uri"] == view["uri"]
    assert label["src"].startswith("did:plc:")


# ---------------------------------------------------------------------------------------------
# the fast path against the site
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("post", ARCHIVED, ids=lambda p: p.post_id)
def test_fast_path_reads_every_archivable_post(
    post: BskyPost, site: BskySite, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    # When the post is read through the fixture's API
    info = read(post, site, get_json)
    # Then its items are the catalogue's, quoted ones numbered after the post's own
    own = {c.item: c.kind for c in info.candidates if not c.quoted}
    quoted = {c.item: c.kind for c in info.candidates if c.quoted}
    assert [own[i] for i in sorted(own)] == list(post.media)
    assert [quoted[i] for i in sorted(quoted)] == list(post.quoted_media)
    assert sorted(own) == list(range(len(post.media)))
    assert sorted(quoted) == list(range(len(post.media), len(post.media) + len(post.quoted_media)))
    assert info.sensitive is post.sensitive
    assert info.platform == "bluesky"
    assert info.site_name == "Bluesky"
    assert info.post_id is not None
    assert info.post_id.startswith("did:plc:")
    assert info.post_id.endswith("/" + post.rkey)
    assert info.url == f"https://bsky.app/profile/{info.author_handle}/post/{post.rkey}"
    assert info.caption
    assert info.posted_at
    assert set(info.counts) == {"likes", "reposts", "replies", "quotes"}
    assert (info.quoted_post_id is not None) is bool(post.quoted_media)


@pytest.mark.parametrize("post", FAILING, ids=lambda p: p.post_id)
def test_fast_path_maps_every_failing_post_to_its_error(
    post: BskyPost, site: BskySite, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    with pytest.raises(MediaVaultError) as caught:
        bluesky.fast_path(post.post_id, site.api_base, get_json)
    assert caught.value.code == post.error


def test_the_quoted_post_id_is_the_video_post(site: BskySite, get_json: Callable[[str], tuple[int, Any]]) -> None:
    video = read(BSKY_POSTS[0], site, get_json)
    for actor in ("quoter.test", "commentator.test"):
        quoting = read(next(p for p in BSKY_POSTS if p.actor == actor), site, get_json)
        assert quoting.quoted_post_id == video.post_id


def test_a_did_link_reads_the_same_post_without_resolving(
    site: BskySite, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    by_did = next(p for p in BSKY_POSTS if p.actor.startswith("did:"))
    site.clear_requests()
    info = read(by_did, site, get_json)
    assert site.paths_requested() == ["/xrpc/app.bsky.feed.getPostThread"]
    assert info.post_id == read(BSKY_POSTS[0], site, get_json).post_id


# ---------------------------------------------------------------------------------------------
# media
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("post", ARCHIVED, ids=lambda p: p.post_id)
def test_every_candidate_and_poster_is_served(
    post: BskyPost, site: BskySite, client: httpx.Client, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    info = read(post, site, get_json)
    photos: dict[int, bytes] = {}
    for cand in info.candidates:
        response = client.get(cand.url)
        assert response.status_code == 200, cand.url
        if cand.kind == "photo":
            assert response.headers["content-type"] == "image/jpeg"
            assert response.content.startswith(b"\xff\xd8")
            assert response.content.endswith(b"\xff\xd9")
            if cand.preference == 1:
                photos[cand.item] = response.content
        else:
            assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
            assert response.text.startswith("#EXTM3U")
        if cand.poster:
            poster = client.get(cand.poster)
            assert poster.status_code == 200
            assert poster.content.startswith(b"\xff\xd8")
    assert len(set(photos.values())) == len(photos)  # the images of a post are distinct files


def test_the_video_playlist_is_a_master_with_a_separate_audio_group(
    site: BskySite, client: httpx.Client, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    # Given the video post's playlist
    (cand,) = read(BSKY_POSTS[0], site, get_json).candidates
    master = client.get(cand.url).text
    # Then it names video-only variants and an AAC rendition, all by relative URI
    assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud"' in master
    variants = [line for line in master.splitlines() if line and not line.startswith("#")]
    assert len(variants) == 2
    audio = re.search(r'URI="([^"]+)"', master)
    assert audio is not None
    # And every media playlist and its first segment are served beneath the playlist's URL
    for uri in [*variants, audio.group(1)]:
        assert not uri.startswith(("http:", "https:", "/"))
        playlist_url = urljoin(cand.url, uri)
        playlist = client.get(playlist_url)
        assert playlist.status_code == 200
        segment = next(line for line in playlist.text.splitlines() if line and not line.startswith("#"))
        body = client.get(urljoin(playlist_url, segment))
        assert body.status_code == 200
        assert body.headers["content-type"] == "video/mp2t"
        assert body.content[:1] == b"\x47"  # MPEG-TS sync byte


def test_watch_urls_work_with_a_raw_or_encoded_did(
    site: BskySite, client: httpx.Client, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    info = read(BSKY_POSTS[0], site, get_json)
    (cand,) = info.candidates
    raw = cand.url.replace("%3A", ":")
    assert raw != cand.url
    assert client.get(raw).text == client.get(cand.url).text
    assert client.get(raw.replace("playlist.m3u8", "thumbnail.jpg")).headers["content-type"] == "image/jpeg"


def test_images_honour_head_and_range(
    site: BskySite, client: httpx.Client, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    gallery = next(p for p in BSKY_POSTS if p.actor == "gallery.test")
    url = read(gallery, site, get_json).candidates[0].url
    size = int(client.head(url).headers["content-length"])
    assert size > 10_000
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == client.get(url).content[:100]


@pytest.mark.parametrize(
    "path",
    [
        "/watch/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/bafkreinothere/playlist.m3u8",
        "/img/feed_fullsize/plain/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/bafkreinothere@jpeg",
        "/img/unknown_preset/plain/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/bafkreinothere@jpeg",
        "/nothing/here",
    ],
)
def test_unknown_media_and_paths_are_404(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_a_known_video_does_not_serve_files_outside_its_set(
    site: BskySite, client: httpx.Client, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    (cand,) = read(BSKY_POSTS[0], site, get_json).candidates
    base = cand.url.rsplit("/", 1)[0]
    assert client.get(f"{base}/..%2F..%2Fposter.jpg").status_code == 404
    assert client.get(f"{base}/nothing.m3u8").status_code == 404


# ---------------------------------------------------------------------------------------------
# pages
# ---------------------------------------------------------------------------------------------


def test_a_post_page_is_the_app_shell_calling_get_post_thread(site: BskySite, client: httpx.Client) -> None:
    page = client.get(BSKY_POSTS[0].path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/xrpc/app.bsky.feed.getPostThread?uri=" in page.text
    assert "/xrpc/com.atproto.identity.resolveHandle?handle=" in page.text
    assert '<meta property="og:title" content="Harbour Films (@harbour.test)">' in page.text
    assert "thumbnail.jpg" in page.text  # og:image


def test_a_hidden_or_missing_post_page_is_a_bare_shell(client: httpx.Client) -> None:
    for post in FAILING:
        page = client.get(post.path)
        assert page.status_code == 200  # the web app answers every route, the script finds out
        assert "og:title" not in page.text


def test_the_index_lists_the_catalogue(client: httpx.Client) -> None:
    index = client.get("/").text
    for post in BSKY_POSTS:
        assert post.path in index


def test_the_json_the_page_gets_parses_like_the_fast_path(
    site: BskySite, client: httpx.Client, get_json: Callable[[str], tuple[int, Any]]
) -> None:
    # Given the call the page's script makes (handle resolved, then the thread with replies)
    quoter = next(p for p in BSKY_POSTS if p.actor == "quoter.test")
    did = did_of(client, quoter.actor)
    uri = f"at://{did}/app.bsky.feed.post/{quoter.rkey}"
    url = site.url("/xrpc/app.bsky.feed.getPostThread?" + urlencode({"uri": uri, "depth": 6, "parentHeight": 80}))
    data = client.get(url).json()
    # When parsed as a page response
    info = bluesky.parse_page_json(url, data, quoter.post_id)
    # Then it is what the fast path reads
    assert info is not None
    assert info == read(quoter, site, get_json)
