"""Generic extraction from DOM snapshots, JSON-LD and player JSON (pure functions, no browser)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediavault.platforms.generic import parse_dom, parse_json_media, parse_jsonld

pytestmark = pytest.mark.unit

PAGE = "https://site.example/posts/42"


def snapshot(**parts: Any) -> dict[str, Any]:
    """A DOM snapshot as DOM_SNAPSHOT_JS returns it."""
    return {"url": PAGE, "title": None, "meta": {}, "videos": [], "jsonld": [], **parts}


def by_source(info: Any, source: str) -> list[Any]:
    return [c for c in info.candidates if c.source == source]


# --- og:video and twitter:player:stream --------------------------------------------------------


def test_og_video_with_a_video_type_is_a_candidate() -> None:
    # Given og:video declared as video/mp4 with its size, given relative to the page
    snap = snapshot(
        meta={
            "og:video": ["/media/clip.bin"],
            "og:video:type": ["video/mp4"],
            "og:video:width": ["1280"],
            "og:video:height": ["720"],
        }
    )
    # When parsed
    (cand,) = by_source(parse_dom(snap), "og:video")
    # Then the URL is absolute and the declared details are kept
    assert cand.url == "https://site.example/media/clip.bin"
    assert (cand.content_type, cand.width, cand.height) == ("video/mp4", 1280, 720)


def test_og_video_without_type_counts_only_with_a_video_extension() -> None:
    with_ext = parse_dom(snapshot(meta={"og:video": ["https://cdn.example/v/clip.webm?sig=1"]}))
    without_ext = parse_dom(snapshot(meta={"og:video": ["https://site.example/embed/42"]}))
    assert [c.url for c in with_ext.candidates] == ["https://cdn.example/v/clip.webm?sig=1"]
    assert without_ext.candidates == []


def test_og_video_declared_as_html_is_a_player_page_and_ignored() -> None:
    snap = snapshot(meta={"og:video": ["https://site.example/player/42.mp4"], "og:video:type": ["text/html"]})
    assert parse_dom(snap).candidates == []


def test_og_video_secure_url_is_preferred() -> None:
    snap = snapshot(
        meta={
            "og:video": ["http://cdn.example/a.mp4"],
            "og:video:secure_url": ["https://cdn.example/a.mp4"],
            "og:video:type": ["video/mp4"],
        }
    )
    assert [c.url for c in parse_dom(snap).candidates] == ["https://cdn.example/a.mp4"]


def test_twitter_player_stream_is_a_candidate() -> None:
    snap = snapshot(
        meta={
            "twitter:player:stream": ["/stream/42.mp4"],
            "twitter:player:stream:content_type": ["video/mp4; codecs=avc1"],
            "twitter:player:width": ["640"],
            "twitter:player:height": ["360"],
        }
    )
    (cand,) = by_source(parse_dom(snap), "twitter:player:stream")
    assert cand.url == "https://site.example/stream/42.mp4"
    assert (cand.content_type, cand.width, cand.height) == ("video/mp4; codecs=avc1", 640, 360)


# --- <video> ----------------------------------------------------------------------------------------


def test_video_sources_with_resolution_hints_become_sized_candidates() -> None:
    # Given a <video> with <source> children labelled by data-res
    snap = snapshot(
        videos=[
            {
                "src": None,
                "poster": "/img/poster.jpg",
                "width": None,
                "height": None,
                "sources": [
                    {"src": "/v/720.mp4", "type": "video/mp4", "res": "720p", "width": None, "height": None},
                    {"src": "/v/360.mp4", "type": "video/mp4", "res": "640x360", "width": None, "height": None},
                    {"src": "/v/raw.mp4", "type": None, "res": "HD", "width": 1920, "height": 1080},
                    {"src": None, "type": "video/mp4", "res": "1080p", "width": None, "height": None},
                ],
            }
        ]
    )
    # When parsed
    cands = by_source(parse_dom(snap), "video-tag")
    # Then each source with a src is a candidate with its size, absolute URL and the poster
    assert [(c.url, c.width, c.height) for c in cands] == [
        ("https://site.example/v/720.mp4", 1280, 720),
        ("https://site.example/v/360.mp4", 640, 360),
        ("https://site.example/v/raw.mp4", 1920, 1080),
    ]
    assert {c.poster for c in cands} == {"https://site.example/img/poster.jpg"}


def test_a_blob_video_src_is_ignored_but_a_real_one_is_kept() -> None:
    blob = {"src": "blob:https://site.example/uuid", "poster": None, "width": 1280, "height": 720, "sources": []}
    real = {"src": "clip.mp4", "poster": None, "width": 1280, "height": 720, "sources": []}
    info = parse_dom(snapshot(videos=[blob, real]))
    assert [(c.url, c.width, c.height) for c in info.candidates] == [("https://site.example/posts/clip.mp4", 1280, 720)]


# --- metadata -----------------------------------------------------------------------------------


def test_metadata_is_read_from_meta_tags() -> None:
    snap = snapshot(
        title="Document title",
        meta={
            "og:title": ["A day at the beach"],
            "og:description": ["Waves, mostly."],
            "twitter:creator": ["@alice_s"],
            "author": ["Alice S."],
            "article:published_time": ["2024-05-01T10:00:00Z"],
            "og:site_name": ["Site"],
            "og:image": ["/img/og.jpg"],
        },
    )
    info = parse_dom(snap)
    assert info.title == "A day at the beach"
    assert info.caption == "Waves, mostly."
    assert info.author_handle == "alice_s"
    assert info.author_name == "Alice S."
    assert info.posted_at == "2024-05-01T10:00:00Z"
    assert info.site_name == "Site"
    assert info.thumbnail_url == "https://site.example/img/og.jpg"


def test_og_image_is_a_photo_candidate_of_the_page() -> None:
    snap = snapshot(meta={"og:image": ["/img/photo.jpg"], "og:image:width": ["2048"], "og:image:height": ["1536"]})
    (cand,) = by_source(parse_dom(snap), "og:image")
    assert (cand.url, cand.kind, cand.width, cand.height) == ("https://site.example/img/photo.jpg", "photo", 2048, 1536)


def test_document_title_and_video_poster_are_the_fallbacks() -> None:
    video = {"src": "/v.mp4", "poster": "/poster.jpg", "width": None, "height": None, "sources": []}
    info = parse_dom(snapshot(title="Document title", meta={"og:title": ["   "]}, videos=[video]))
    assert info.title == "Document title"
    assert info.thumbnail_url == "https://site.example/poster.jpg"


def test_jsonld_blocks_of_the_snapshot_add_candidates_and_fill_gaps() -> None:
    block = json.dumps({"@type": "VideoObject", "contentUrl": "/ld.mp4", "name": "LD name", "description": "LD"})
    info = parse_dom(snapshot(meta={"og:title": ["OG name"]}, jsonld=[block]))
    assert info.title == "OG name"  # the page's own meta wins
    assert info.caption == "LD"  # JSON-LD fills what the meta tags did not say
    assert [c.url for c in by_source(info, "jsonld")] == ["https://site.example/ld.mp4"]


# --- JSON-LD ------------------------------------------------------------------------------------


def test_jsonld_video_object_gives_candidate_and_metadata() -> None:
    text = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": "Clip",
            "description": "A clip",
            "uploadDate": "2024-01-02",
            "contentUrl": "https://cdn.example/clip-1080.mp4",
            "encodingFormat": "video/mp4",
            "width": "1920",
            "height": 1080,
            "bitrate": "4.5M",
            "thumbnailUrl": ["", "https://cdn.example/t1.jpg", "https://cdn.example/t2.jpg"],
            "author": {"@type": "Person", "name": "Bob", "alternateName": "@bobby"},
        }
    )
    info = parse_jsonld(text, PAGE)
    (cand,) = info.candidates
    assert (cand.url, cand.source, cand.content_type) == ("https://cdn.example/clip-1080.mp4", "jsonld", "video/mp4")
    assert (cand.width, cand.height, cand.bitrate) == (1920, 1080, 4_500_000)
    assert info.thumbnail_url == "https://cdn.example/t1.jpg"
    assert (info.author_name, info.author_handle) == ("Bob", "bobby")
    assert (info.title, info.caption, info.posted_at) == ("Clip", "A clip", "2024-01-02")


def test_jsonld_graph_entries_are_found() -> None:
    text = json.dumps(
        {
            "@graph": [
                {"@type": "WebPage", "name": "page"},
                {"@type": ["VideoObject", "MediaObject"], "contentUrl": "/a.mp4"},
                {"@type": "VideoObject", "embedUrl": "https://player.example/embed/1"},
                {"@type": "VideoObject", "embedUrl": "https://cdn.example/b.mov"},
            ]
        }
    )
    assert [c.url for c in parse_jsonld(text, PAGE).candidates] == [
        "https://site.example/a.mp4",
        "https://cdn.example/b.mov",
    ]


@pytest.mark.parametrize("text", ["{not json", "", None, "[]", '"VideoObject"'])
def test_invalid_or_empty_jsonld_gives_no_candidates(text: Any) -> None:
    info = parse_jsonld(text, PAGE)
    assert info.candidates == []
    assert info.url == PAGE


# --- player JSON ----------------------------------------------------------------------------------

TWEET_LIKE = {
    "data": {
        "post": {
            "id": "1790000000000000000",
            "full_text": "look at this",
            "created_at": "2024-05-14T09:00:00Z",
            "author": {"screen_name": "@carol", "name": "Carol"},
            "media": [
                {
                    "type": "video",
                    "poster": "/thumb/1.jpg",
                    "variants": [
                        {"url": "https://video.example/1/320.mp4", "bitrate": 256000, "content_type": "video/mp4",
                         "width": 320, "height": 180},
                        {"url": "https://video.example/1/pl.m3u8", "content_type": "application/x-mpegURL"},
                        {"src": "/1/720.mp4", "bit_rate": "2176k", "type": "video/mp4", "width": 1280, "height": 720},
                        {"bitrate": 100},
                    ],
                },
                {"type": "animated_gif", "variants": [{"url": "https://video.example/2/loop.mp4", "bitrate": 0}]},
            ],
        }
    }
}  # fmt: skip


def test_player_json_variants_become_network_json_candidates() -> None:
    info = parse_json_media(TWEET_LIKE, "https://api.site.example/graphql")
    cands = [(c.url, c.kind, c.bitrate, c.content_type, c.width, c.height, c.item) for c in info.candidates]
    assert cands == [
        ("https://video.example/1/320.mp4", "video", 256_000, "video/mp4", 320, 180, 0),
        ("https://video.example/1/pl.m3u8", "video", None, "application/x-mpegURL", None, None, 0),
        ("https://api.site.example/1/720.mp4", "video", 2_176_000, "video/mp4", 1280, 720, 0),
        ("https://video.example/2/loop.mp4", "gif", None, None, None, None, 1),
    ]
    assert {c.source for c in info.candidates} == {"network-json"}
    assert info.candidates[0].poster == "https://api.site.example/thumb/1.jpg"


def test_player_json_metadata_comes_from_the_object_holding_author_and_text() -> None:
    info = parse_json_media(TWEET_LIKE, "https://api.site.example/graphql")
    assert info.thumbnail_url == "https://api.site.example/thumb/1.jpg"
    assert info.post_id == "1790000000000000000"
    assert info.caption == "look at this"
    assert info.posted_at == "2024-05-14T09:00:00Z"
    assert (info.author_handle, info.author_name) == ("carol", "Carol")


def test_player_json_without_variants_has_no_candidates() -> None:
    info = parse_json_media({"items": [{"url": "https://x/v.mp4"}], "variants": []}, PAGE)
    assert info.candidates == []


def test_player_json_numeric_id_is_kept_as_post_id() -> None:
    # Given a Twitter-style object whose id is a JSON number, with id_str alongside
    data = {"id": 1790000000000000000, "id_str": "1790000000000000000", "text": "hi", "user": {"screen_name": "d"}}
    # When parsed
    info = parse_json_media(data, PAGE)
    # Then the post id is known
    assert info.post_id == "1790000000000000000"
