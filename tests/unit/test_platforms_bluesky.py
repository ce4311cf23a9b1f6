"""Bluesky: post links, getPostThread answers and their embed views (pure functions, no network)."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mediavault.errors import LoginRequired, PostNotFound, PostUnavailable, UpstreamUnavailable
from mediavault.platforms import bluesky
from mediavault.platforms.bluesky import canonical_url, fast_path, parse_page_json, parse_thread, post_id

pytestmark = pytest.mark.unit

DID = "did:plc:z72i7hdynmk6r22z27h6tvur"
QUOTED_DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
RKEY = "3l3y37peak2dh"
QUOTED_RKEY = "3l2abcdefgh2k"
URI = f"at://{DID}/app.bsky.feed.post/{RKEY}"
QUOTED_URI = f"at://{QUOTED_DID}/app.bsky.feed.post/{QUOTED_RKEY}"
URL = f"https://bsky.app/profile/alice.bsky.social/post/{RKEY}"
CDN = "https://cdn.bsky.app/img"
API = "https://public.api.bsky.app"


# --- JSON in the AppView's shapes ---------------------------------------------------------------


def label(val: str, src: str = "did:plc:ar7c4by46qjdydhdevvrndac", **more: Any) -> dict[str, Any]:
    return {"src": src, "uri": URI, "cid": "bafyreilabel", "val": val, "cts": "2024-09-12T18:31:00.000Z", **more}


def author(
    did: str = DID, handle: str = "alice.bsky.social", name: str | None = "Alice", **more: Any
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "did": did,
        "handle": handle,
        "avatar": f"{CDN}/avatar/plain/{did}/bafkreiavatar@jpeg",
        "associated": {"chat": {"allowIncoming": "following"}},
        "viewer": {"muted": False, "blockedBy": False},
        "labels": [],
        "createdAt": "2023-05-01T10:00:00.000Z",
    }
    if name is not None:
        view["displayName"] = name
    return view | more


def video_view(did: str = DID, cid: str = "bafkreivideo") -> dict[str, Any]:
    watch = f"https://video.bsky.app/watch/{did.replace(':', '%3A')}/{cid}"
    return {
        "$type": "app.bsky.embed.video#view",
        "cid": cid,
        "playlist": f"{watch}/playlist.m3u8",
        "thumbnail": f"{watch}/thumbnail.jpg",
        "aspectRatio": {"width": 1920, "height": 1080},
    }


def images_view(count: int, did: str = DID) -> dict[str, Any]:
    return {
        "$type": "app.bsky.embed.images#view",
        "images": [
            {
                "thumb": f"{CDN}/feed_thumbnail/plain/{did}/bafkreiimg{n}@jpeg",
                "fullsize": f"{CDN}/feed_fullsize/plain/{did}/bafkreiimg{n}@jpeg",
                "alt": f"picture {n}",
                "aspectRatio": {"width": 2000, "height": 1500},
            }
            for n in range(count)
        ],
    }


def external_view(uri: str, thumb: str | None = None) -> dict[str, Any]:
    external: dict[str, Any] = {"uri": uri, "title": "A link", "description": "Alt: a dancing cat"}
    if thumb:
        external["thumb"] = thumb
    return {"$type": "app.bsky.embed.external#view", "external": external}


def view_record(embeds: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "$type": "app.bsky.embed.record#viewRecord",
        "uri": QUOTED_URI,
        "cid": "bafyreiquoted",
        "author": author(QUOTED_DID, "bob.example.com", "Bob"),
        "value": {"$type": "app.bsky.feed.post", "createdAt": "2024-09-01T08:00:00.000Z", "text": "the original"},
        "labels": [],
        "likeCount": 5,
        "replyCount": 0,
        "repostCount": 1,
        "quoteCount": 1,
        "indexedAt": "2024-09-01T08:00:01.000Z",
        "embeds": embeds or [],
    } | more


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    return {"$type": "app.bsky.embed.record#view", "record": record}


def record_with_media_view(media: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    return {"$type": "app.bsky.embed.recordWithMedia#view", "record": {"record": record}, "media": media}


def post_view(embed: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "uri": URI,
        "cid": "bafyreipost",
        "author": author(),
        "record": {
            "$type": "app.bsky.feed.post",
            "createdAt": "2024-09-12T18:30:00.000Z",
            "langs": ["en"],
            "text": "Harbour at dusk",
        },
        "replyCount": 9,
        "repostCount": 17,
        "likeCount": 128,
        "quoteCount": 2,
        "indexedAt": "2024-09-12T18:30:01.412Z",
        "viewer": {"threadMuted": False, "embeddingDisabled": False},
        "labels": [],
    }
    if embed is not None:
        view["embed"] = embed
    return view | more


def thread(post: dict[str, Any]) -> dict[str, Any]:
    return {"thread": {"$type": "app.bsky.feed.defs#threadViewPost", "post": post, "replies": []}}


def parse(embed: dict[str, Any] | None = None, **more: Any) -> Any:
    return parse_thread(thread(post_view(embed, **more)), URL)


# --- links ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/profile/alice.bsky.social/post/{RKEY}", f"alice.bsky.social/{RKEY}"),
        (f"/profile/Alice.BSKY.social/post/{RKEY}/", f"alice.bsky.social/{RKEY}"),
        (f"/profile/{DID}/post/{RKEY}", f"{DID}/{RKEY}"),
        (f"/profile/{DID.replace(':', '%3A')}/post/{RKEY}", f"{DID}/{RKEY}"),
        (f"/profile/did:web:example.com/post/{RKEY}", f"did:web:example.com/{RKEY}"),
        (f"/profile/alice.test/post/{RKEY}?ref_src=embed", f"alice.test/{RKEY}"),
        ("/profile/alice.bsky.social/post/self", "alice.bsky.social/self"),  # any record key syntax
        ("/profile/alice.bsky.social/post/a:b~c_d.e-f", "alice.bsky.social/a:b~c_d.e-f"),
    ],
)
def test_post_paths_give_the_actor_and_record_key(path: str, expected: str) -> None:
    assert post_id(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/profile/alice.bsky.social",
        "/profile/alice.bsky.social/feed/whats-hot",
        "/profile/alice.bsky.social/lists/3kabc",
        "/profile/alice.bsky.social/post/",
        f"/profile/alice.bsky.social/post/{RKEY}/liked-by",
        "/profile/alice.bsky.social/post/..",
        "/profile/alice.bsky.social/post/bad!key",
        "/profile/alice.bsky.social/post/" + "a" * 513,
        f"/profile/alice/post/{RKEY}",  # a handle is a DNS name
        f"/profile/-alice.bsky.social/post/{RKEY}",
        f"/profile/did:key:z6Mkabc/post/{RKEY}",  # not a DID method Bluesky accepts
        f"/profile/did:plc:short/post/{RKEY}",
        f"/post/{RKEY}",
        "/",
    ],
)
def test_other_paths_are_not_posts(path: str) -> None:
    assert post_id(path) is None


def test_canonical_url_and_constants() -> None:
    assert canonical_url(f"alice.bsky.social/{RKEY}") == URL
    assert canonical_url(f"{DID}/{RKEY}") == f"https://bsky.app/profile/{DID}/post/{RKEY}"
    assert bluesky.NAME == "bluesky"
    assert {"bsky.app", "www.bsky.app", "main.bsky.dev", "staging.bsky.app"} <= bluesky.HOSTS
    assert bluesky.API_BASE == API
    assert bluesky.REFRESH_ON_403 is False


def test_a_malformed_post_id_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Bluesky post id"):
        canonical_url("no-slash")


# --- metadata -------------------------------------------------------------------------------------


def test_post_metadata_comes_from_the_post_view() -> None:
    # Given a text-only post
    info = parse()
    # Then every field comes from the view, the id names the DID, the URL the handle
    assert info.platform == "bluesky"
    assert info.post_id == f"{DID}/{RKEY}"
    assert info.url == URL
    assert info.site_name == "Bluesky"
    assert info.author_id == DID
    assert info.author_handle == "alice.bsky.social"
    assert info.author_name == "Alice"
    assert info.title == "Alice (@alice.bsky.social)"
    assert info.caption == "Harbour at dusk"
    assert info.posted_at == "2024-09-12T18:30:00.000Z"
    assert info.counts == {"likes": 128, "reposts": 17, "replies": 9, "quotes": 2}
    assert info.sensitive is False
    assert info.candidates == []
    assert info.quoted_post_id is None
    assert info.extra["uri"] == URI
    assert info.extra["cid"] == "bafyreipost"
    assert info.extra["langs"] == ["en"]


def test_an_invalid_handle_links_by_did_and_a_missing_name_titles_by_handle() -> None:
    info = parse(author=author(handle="handle.invalid", name=None))
    assert info.author_handle is None
    assert info.url == f"https://bsky.app/profile/{DID}/post/{RKEY}"
    assert info.title == f"@{DID}"
    assert parse(author=author(name=None)).title == "@alice.bsky.social"


def test_counts_keep_only_numbers() -> None:
    info = parse(likeCount=3, repostCount=None, replyCount="7", quoteCount=True)
    assert info.counts == {"likes": 3}


def test_a_reply_names_its_parent() -> None:
    record = post_view()["record"] | {"reply": {"parent": {"uri": QUOTED_URI, "cid": "x"}, "root": {"uri": "y"}}}
    assert parse(record=record).extra["reply_to"] == QUOTED_URI


# --- labels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["porn", "sexual", "nudity", "graphic-media", "gore"])
def test_adult_and_graphic_labels_on_the_post_make_it_sensitive(value: str) -> None:
    info = parse(labels=[label(value)])
    assert info.sensitive is True
    assert info.extra["labels"] == [value]


def test_an_author_label_makes_the_post_sensitive() -> None:
    assert parse(author=author(labels=[label("porn", src=DID)])).sensitive is True


def test_a_self_label_in_the_record_makes_the_post_sensitive() -> None:
    record = post_view()["record"] | {
        "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]}
    }
    assert parse(record=record).sensitive is True


def test_negated_and_other_labels_are_not_sensitive() -> None:
    assert parse(labels=[label("porn", neg=True)]).sensitive is False
    assert parse(labels=[label("!warn"), label("spam")]).sensitive is False


def test_an_author_who_hides_from_signed_out_viewers_requires_login() -> None:
    hidden = author(labels=[label("!no-unauthenticated", src=DID)])
    with pytest.raises(LoginRequired, match="signed-in"):
        parse(embed=video_view(), author=hidden)


# --- embeds ---------------------------------------------------------------------------------------


def test_a_video_view_is_its_hls_playlist_with_the_thumbnail_as_poster() -> None:
    view = video_view()
    info = parse(view)
    (cand,) = info.candidates
    assert cand.url == view["playlist"]
    assert cand.kind == "video"
    assert cand.source == "platform"
    assert cand.content_type == "application/x-mpegURL"
    assert cand.is_streaming_manifest
    assert cand.poster == view["thumbnail"]
    assert (cand.width, cand.height) == (None, None)  # the aspect ratio is not the resolution
    assert (cand.item, cand.quoted) == (0, False)
    assert info.thumbnail_url == view["thumbnail"]
    (item,) = info.extra["media"]
    assert item == {
        "item": 0,
        "kind": "video",
        "quoted": False,
        "aspect_ratio": {"width": 1920, "height": 1080},
        "cid": "bafkreivideo",
    }


def test_an_images_view_gives_fullsize_then_thumb_per_image() -> None:
    # Given four images
    info = parse(images_view(4))
    # Then each item has a full-size candidate preferred over its thumbnail
    assert len(info.candidates) == 8
    for n in range(4):
        full, thumb = (c for c in info.candidates if c.item == n)
        assert full.url == f"{CDN}/feed_fullsize/plain/{DID}/bafkreiimg{n}@jpeg"
        assert thumb.url == f"{CDN}/feed_thumbnail/plain/{DID}/bafkreiimg{n}@jpeg"
        assert full.kind == thumb.kind == "photo"
        assert full.preference > thumb.preference
        assert full.poster == thumb.url
        assert full.content_type == "image/jpeg"
        assert (full.width, full.height) == (None, None)
    assert [m["alt"] for m in info.extra["media"]] == [f"picture {n}" for n in range(4)]
    assert info.extra["media"][0]["aspect_ratio"] == {"width": 2000, "height": 1500}
    assert info.thumbnail_url == f"{CDN}/feed_thumbnail/plain/{DID}/bafkreiimg0@jpeg"


def test_an_image_without_urls_is_skipped_and_numbering_stays_dense() -> None:
    view = images_view(3)
    view["images"][1] = {"alt": "broken"}
    info = parse(view)
    assert sorted({c.item for c in info.candidates}) == [0, 1]


def test_an_external_tenor_gif_is_a_gif_candidate() -> None:
    uri = "https://media.tenor.com/abcDEF12345AAAAC/cat-dance.gif?hh=280&ww=498"
    info = parse(external_view(uri, thumb=f"{CDN}/feed_thumbnail/plain/{DID}/bafkreigif@jpeg"))
    (cand,) = info.candidates
    assert (cand.url, cand.kind, cand.content_type) == (uri, "gif", "image/gif")
    assert (cand.width, cand.height) == (498, 280)
    assert cand.poster == f"{CDN}/feed_thumbnail/plain/{DID}/bafkreigif@jpeg"
    assert info.extra["external"]["uri"] == uri


def test_a_giphy_gif_is_a_gif_candidate_without_size() -> None:
    (cand,) = parse(external_view("https://media.giphy.com/media/xT9IgG50Fb7Mi0prBC/giphy.gif")).candidates
    assert cand.kind == "gif"
    assert (cand.width, cand.height) == (None, None)


@pytest.mark.parametrize(
    "uri",
    ["https://example.com/article", "https://example.com/cat.gif", "https://tenor.com/view/cat-dance-123"],
)
def test_an_external_link_has_no_media(uri: str) -> None:
    thumb = f"{CDN}/feed_thumbnail/plain/{DID}/bafkreicard@jpeg"
    info = parse(external_view(uri, thumb=thumb))
    assert info.candidates == []
    assert info.extra["external"] == {"uri": uri, "title": "A link", "description": "Alt: a dancing cat"}
    assert info.thumbnail_url == thumb


def test_record_with_media_numbers_the_quoted_items_after_the_own_ones() -> None:
    # Given two images of its own quoting a post with a video
    quoted = view_record([video_view(QUOTED_DID, "bafkreiquotedvideo")])
    info = parse(record_with_media_view(images_view(2), quoted))
    # Then the own photos are items 0-1, the quoted video item 2, flagged quoted
    own = [c for c in info.candidates if not c.quoted]
    assert {(c.kind, c.item) for c in own} == {("photo", 0), ("photo", 1)}
    (video,) = [c for c in info.candidates if c.quoted]
    assert (video.kind, video.item) == ("video", 2)
    assert "bafkreiquotedvideo" in video.url
    assert info.quoted_post_id == f"{QUOTED_DID}/{QUOTED_RKEY}"
    assert info.thumbnail_url == f"{CDN}/feed_thumbnail/plain/{DID}/bafkreiimg0@jpeg"
    assert [(m["item"], m["kind"], m["quoted"]) for m in info.extra["media"]] == [
        (0, "photo", False),
        (1, "photo", False),
        (2, "video", True),
    ]
    quoted_summary = info.extra["quoted"]
    assert quoted_summary["uri"] == QUOTED_URI
    assert quoted_summary["author_handle"] == "bob.example.com"
    assert quoted_summary["text"] == "the original"
    assert quoted_summary["sensitive"] is False


def test_record_with_media_accepts_a_typed_inner_record_view() -> None:
    embed = {
        "$type": "app.bsky.embed.recordWithMedia#view",
        "record": record_view(view_record([images_view(1, QUOTED_DID)])),
        "media": video_view(),
    }
    info = parse(embed)
    assert [(c.kind, c.item, c.quoted) for c in info.candidates] == [
        ("video", 0, False),
        ("photo", 1, True),
        ("photo", 1, True),
    ]


def test_a_quote_only_post_has_only_quoted_media_from_item_0() -> None:
    info = parse(record_view(view_record([video_view(QUOTED_DID)])))
    (cand,) = info.candidates
    assert (cand.kind, cand.item, cand.quoted) == ("video", 0, True)
    assert info.quoted_post_id == f"{QUOTED_DID}/{QUOTED_RKEY}"
    assert info.thumbnail_url == cand.poster


def test_a_quote_of_a_quote_keeps_only_the_quoted_posts_own_media() -> None:
    inner = record_with_media_view(images_view(1, QUOTED_DID), view_record([video_view("did:plc:" + "c" * 24)]))
    info = parse(record_view(view_record([inner])))
    assert [(c.kind, c.item, c.quoted) for c in info.candidates] == [("photo", 0, True), ("photo", 0, True)]


@pytest.mark.parametrize(
    ("record", "status"),
    [
        ({"$type": "app.bsky.embed.record#viewNotFound", "uri": QUOTED_URI, "notFound": True}, "not-found"),
        (
            {
                "$type": "app.bsky.embed.record#viewBlocked",
                "uri": QUOTED_URI,
                "blocked": True,
                "author": {"did": QUOTED_DID, "viewer": {"blockedBy": True}},
            },
            "blocked",
        ),
        ({"$type": "app.bsky.embed.record#viewDetached", "uri": QUOTED_URI, "detached": True}, "detached"),
    ],
)
def test_an_unavailable_quoted_post_is_named_without_media(record: dict[str, Any], status: str) -> None:
    info = parse(record_with_media_view(images_view(1), record))
    assert all(not c.quoted for c in info.candidates)
    assert info.quoted_post_id == f"{QUOTED_DID}/{QUOTED_RKEY}"
    assert info.extra["quoted"]["status"] == status


def test_a_quoted_author_hidden_from_signed_out_viewers_gives_no_quoted_media() -> None:
    hidden = author(QUOTED_DID, "bob.example.com", labels=[label("!no-unauthenticated", src=QUOTED_DID)])
    info = parse(record_view(view_record([video_view(QUOTED_DID)], author=hidden)))
    assert info.candidates == []
    assert info.quoted_post_id == f"{QUOTED_DID}/{QUOTED_RKEY}"
    assert info.extra["quoted"]["status"] == "login-required"


def test_a_sensitive_quoted_post_is_flagged_in_extra_only() -> None:
    info = parse(record_view(view_record([images_view(1, QUOTED_DID)], labels=[label("gore")])))
    assert info.sensitive is False
    assert info.extra["quoted"]["sensitive"] is True


def test_a_quoted_feed_generator_is_not_a_quoted_post() -> None:
    feed = {
        "$type": "app.bsky.feed.defs#generatorView",
        "uri": f"at://{QUOTED_DID}/app.bsky.feed.generator/whats-hot",
        "displayName": "What's Hot",
    }
    info = parse(record_view(feed))
    assert info.quoted_post_id is None
    assert info.candidates == []


def test_the_records_blob_references_are_not_media() -> None:
    # Given a record embed of blob refs and no view (the AppView has not processed it)
    record = post_view()["record"] | {
        "embed": {
            "$type": "app.bsky.embed.video",
            "video": {"$type": "blob", "ref": {"$link": "bafkreivideo"}, "mimeType": "video/mp4", "size": 1},
        }
    }
    assert parse(record=record).candidates == []


# --- thread answers -------------------------------------------------------------------------------


def test_a_not_found_thread_is_post_not_found() -> None:
    data = {"thread": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": URI, "notFound": True}}
    with pytest.raises(PostNotFound, match="does not exist"):
        parse_thread(data, URL)


def test_a_blocked_thread_is_post_unavailable() -> None:
    data = {
        "thread": {
            "$type": "app.bsky.feed.defs#blockedPost",
            "uri": URI,
            "blocked": True,
            "author": {"did": DID, "viewer": {"blockedBy": True}},
        }
    }
    with pytest.raises(PostUnavailable, match="block"):
        parse_thread(data, URL)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"thread": None},
        {"thread": {"$type": "app.bsky.feed.defs#somethingNew"}},
        {"thread": {"$type": "app.bsky.feed.defs#threadViewPost", "post": {"uri": "not-an-at-uri"}}},
        {"thread": {"post": post_view(uri=f"at://{DID}/app.bsky.feed.like/{RKEY}")}},
    ],
)
def test_something_else_than_a_thread_is_a_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not"):
        parse_thread(data, URL)


# --- the fast path --------------------------------------------------------------------------------


class FakeApi:
    """``get_json`` over canned answers keyed by XRPC method; records the URLs asked."""

    def __init__(self, **answers: tuple[int, Any]) -> None:
        self.answers = {
            "com.atproto.identity.resolveHandle": (200, {"did": DID}),
            "app.bsky.feed.getPostThread": (200, thread(post_view(video_view()))),
        } | {k.replace("_", "."): v for k, v in answers.items()}
        self.urls: list[str] = []

    def __call__(self, url: str) -> tuple[int, Any]:
        self.urls.append(url)
        method = urlsplit(url).path.rsplit("/", 1)[-1]
        return copy.deepcopy(self.answers[method])


def answers(resolve: tuple[int, Any] | None = None, thread_: tuple[int, Any] | None = None) -> FakeApi:
    api = FakeApi()
    if resolve is not None:
        api.answers["com.atproto.identity.resolveHandle"] = resolve
    if thread_ is not None:
        api.answers["app.bsky.feed.getPostThread"] = thread_
    return api


def test_fast_path_resolves_the_handle_then_reads_the_thread() -> None:
    # Given a post linked by handle
    api = answers()
    # When read
    info = fast_path(f"alice.bsky.social/{RKEY}", API + "/", api)
    # Then the handle is resolved, and the thread is asked for by DID, without replies or parents
    assert info is not None
    resolve, read = (urlsplit(u) for u in api.urls)
    assert resolve.path == "/xrpc/com.atproto.identity.resolveHandle"
    assert parse_qs(resolve.query) == {"handle": ["alice.bsky.social"]}
    assert read.geturl().startswith(f"{API}/xrpc/app.bsky.feed.getPostThread?uri=at%3A%2F%2Fdid%3Aplc%3A")
    assert parse_qs(read.query) == {"uri": [URI], "depth": ["0"], "parentHeight": ["0"]}
    assert info.post_id == f"{DID}/{RKEY}"
    assert [c.kind for c in info.candidates] == ["video"]


def test_fast_path_with_a_did_needs_no_resolution() -> None:
    api = answers()
    info = fast_path(f"{DID}/{RKEY}", API, api)
    assert info is not None
    assert len(api.urls) == 1
    assert "getPostThread" in api.urls[0]


def test_a_handle_that_does_not_resolve_is_post_not_found_naming_it() -> None:
    api = answers(resolve=(400, {"error": "InvalidRequest", "message": "Unable to resolve handle"}))
    with pytest.raises(PostNotFound, match=r"@ghost\.bsky\.social") as caught:
        fast_path(f"ghost.bsky.social/{RKEY}", API, api)
    assert caught.value.code == "POST_NOT_FOUND"
    assert len(api.urls) == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((400, {"error": "NotFound", "message": f"Post not found: {URI}"}), PostNotFound),
        ((200, {"thread": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": URI, "notFound": True}}), PostNotFound),
        ((200, {"thread": {"$type": "app.bsky.feed.defs#blockedPost", "uri": URI, "blocked": True}}), PostUnavailable),
        ((400, {"error": "BlockedActor", "message": "blocked"}), PostUnavailable),
        ((400, {"error": "AccountTakedown", "message": "taken down"}), PostUnavailable),
        ((401, {"error": "AuthMissing", "message": "Authentication Required"}), LoginRequired),
        ((403, None), LoginRequired),
        ((200, thread(post_view(author=author(labels=[label("!no-unauthenticated", src=DID)])))), LoginRequired),
        ((429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}), UpstreamUnavailable),
        ((500, {"error": "InternalServerError", "message": "Internal Server Error"}), UpstreamUnavailable),
        ((502, None), UpstreamUnavailable),
        ((503, None), UpstreamUnavailable),
    ],
)
def test_thread_answers_map_to_the_error_taxonomy(answer: tuple[int, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        fast_path(f"alice.bsky.social/{RKEY}", API, answers(thread_=answer))
    assert type(caught.value) is error


@pytest.mark.parametrize(
    ("answer", "error"),
    [((401, None), LoginRequired), ((429, None), UpstreamUnavailable), ((504, None), UpstreamUnavailable)],
)
def test_handle_resolution_failures_map_to_the_error_taxonomy(answer: tuple[int, Any], error: type[Exception]) -> None:
    api = answers(resolve=answer)
    with pytest.raises(error):
        fast_path(f"alice.bsky.social/{RKEY}", API, api)
    assert len(api.urls) == 1


def test_upstream_failures_are_retryable() -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        fast_path(f"{DID}/{RKEY}", API, answers(thread_=(503, None)))
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "answer",
    [
        (404, {"error": "XRPCNotSupported", "message": "XRPCNotSupported"}),
        (400, {"error": "SomethingNew", "message": "?"}),
        (200, None),
        (200, {"feed": []}),
        (200, {"thread": {"$type": "app.bsky.feed.defs#somethingNew"}}),
        (302, None),
    ],
)
def test_unusable_thread_answers_leave_it_to_the_browser(answer: tuple[int, Any]) -> None:
    assert fast_path(f"alice.bsky.social/{RKEY}", API, answers(thread_=answer)) is None


@pytest.mark.parametrize(
    "answer", [(200, {}), (200, {"did": "not-a-did"}), (200, None), (404, None), (400, {"message": "no error name"})]
)
def test_unusable_handle_resolutions_leave_it_to_the_browser(answer: tuple[int, Any]) -> None:
    api = answers(resolve=answer)
    assert fast_path(f"alice.bsky.social/{RKEY}", API, api) is None
    assert len(api.urls) == 1


# --- JSON a browser page received -----------------------------------------------------------------


def thread_url(uri: str = URI, base: str = API) -> str:
    return f"{base}/xrpc/app.bsky.feed.getPostThread?" + urlencode({"uri": uri, "depth": 6, "parentHeight": 80})


@pytest.mark.parametrize("actor", ["alice.bsky.social", DID])
def test_the_pages_own_thread_call_is_parsed(actor: str) -> None:
    info = parse_page_json(thread_url(), thread(post_view(images_view(2))), f"{actor}/{RKEY}")
    assert info is not None
    assert info.post_id == f"{DID}/{RKEY}"
    assert len(info.candidates) == 4


def test_a_thread_about_another_post_is_not_this_post() -> None:
    other = f"at://{DID}/app.bsky.feed.post/3kotherpost22"
    assert parse_page_json(thread_url(other), thread(post_view()), f"{DID}/{RKEY}") is None
    # a thread for another account's post with the same record key
    assert parse_page_json(thread_url(), thread(post_view()), f"carol.example.com/{RKEY}") is None
    elsewhere = f"at://{QUOTED_DID}/app.bsky.feed.post/{RKEY}"
    assert parse_page_json(thread_url(elsewhere), thread(post_view()), f"{DID}/{RKEY}") is None


def test_a_not_found_answer_the_page_received_is_post_not_found() -> None:
    with pytest.raises(PostNotFound):
        parse_page_json(thread_url(), {"error": "NotFound", "message": "Post not found"}, f"{DID}/{RKEY}")
    with pytest.raises(PostNotFound):
        parse_page_json(
            thread_url(),
            {"thread": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": URI, "notFound": True}},
            f"alice.bsky.social/{RKEY}",
        )


def test_a_get_posts_answer_holding_the_post_is_parsed() -> None:
    url = f"{API}/xrpc/app.bsky.feed.getPosts?uris={URI}"
    other = post_view(uri=f"at://{QUOTED_DID}/app.bsky.feed.post/{QUOTED_RKEY}", author=author(QUOTED_DID, "b.test"))
    info = parse_page_json(url, {"posts": [other, post_view(video_view())]}, f"alice.bsky.social/{RKEY}")
    assert info is not None
    assert info.post_id == f"{DID}/{RKEY}"
    assert parse_page_json(url, {"posts": [other]}, f"alice.bsky.social/{RKEY}") is None


@pytest.mark.parametrize(
    ("url", "data"),
    [
        (f"{API}/xrpc/app.bsky.actor.getProfile?actor={DID}", {"did": DID, "handle": "alice.bsky.social"}),
        ("https://bsky.app/manifest.json", {"thread": {}}),
        (thread_url(), ["not", "an", "object"]),
        (thread_url(), {"error": "InternalServerError"}),
        (thread_url(), {"thread": {"$type": "app.bsky.feed.defs#somethingNew"}}),
    ],
)
def test_other_json_is_not_about_the_post(url: str, data: Any) -> None:
    assert parse_page_json(url, data, f"{DID}/{RKEY}") is None


def test_a_thread_asked_by_handle_is_matched_by_its_author() -> None:
    by_handle = f"at://alice.bsky.social/app.bsky.feed.post/{RKEY}"
    assert parse_page_json(thread_url(by_handle), thread(post_view()), f"{DID}/{RKEY}") is not None
    assert parse_page_json(thread_url(by_handle), thread(post_view()), f"{QUOTED_DID}/{RKEY}") is None
    other_handle = f"at://carol.example.com/app.bsky.feed.post/{RKEY}"
    assert parse_page_json(thread_url(other_handle), thread(post_view()), f"alice.bsky.social/{RKEY}") is None
