"""Candidate ranking: which of the URLs a post offers is downloaded first."""

from __future__ import annotations

import pytest

from mediavault.media.candidates import Candidate, rank

pytestmark = pytest.mark.unit


def urls(candidates: list[Candidate]) -> list[str]:
    return [c.url for c in candidates]


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate(url="https://cdn.example/master.m3u8"),
        Candidate(url="https://cdn.example/MASTER.M3U8?token=1"),
        Candidate(url="https://cdn.example/manifest.mpd"),
        Candidate(url="https://cdn.example/play", content_type="application/x-mpegURL"),
        Candidate(url="https://cdn.example/play2", content_type="application/vnd.apple.mpegurl"),
        Candidate(url="https://cdn.example/dash", content_type="application/dash+xml"),
    ],
)
def test_streaming_manifests_are_left_out(candidate: Candidate) -> None:
    # Given a manifest next to a real file
    file = Candidate(url="https://cdn.example/v.mp4")
    # When ranked
    # Then only the file remains
    assert urls(rank([candidate, file])) == ["https://cdn.example/v.mp4"]


@pytest.mark.parametrize(
    "url", ["blob:https://site.example/1234", "data:video/mp4;base64,AAAA", "ftp://x/v.mp4", "/v.mp4"]
)
def test_non_http_urls_are_left_out(url: str) -> None:
    assert rank([Candidate(url=url)]) == []


def test_videos_come_before_gifs_before_photos_whatever_their_quality() -> None:
    # Given a huge photo, a high-bitrate GIF and a small video
    photo = Candidate(url="https://x/p.jpg", kind="photo", width=8000, height=6000)
    gif = Candidate(url="https://x/g.mp4", kind="gif", bitrate=9_000_000)
    video = Candidate(url="https://x/v.mp4", kind="video", width=320, height=180)
    # When ranked
    ranked = rank([photo, gif, video])
    # Then the kind decides first
    assert urls(ranked) == ["https://x/v.mp4", "https://x/g.mp4", "https://x/p.jpg"]


def test_higher_bitrate_comes_first() -> None:
    low = Candidate(url="https://x/256k.mp4", bitrate=256_000)
    high = Candidate(url="https://x/2m.mp4", bitrate=2_176_000)
    mid = Candidate(url="https://x/832k.mp4", bitrate=832_000)
    assert urls(rank([low, high, mid])) == ["https://x/2m.mp4", "https://x/832k.mp4", "https://x/256k.mp4"]


def test_more_pixels_come_first_when_no_bitrate_is_known() -> None:
    sd = Candidate(url="https://x/480.mp4", width=854, height=480)
    hd = Candidate(url="https://x/1080.mp4", width=1920, height=1080)
    unknown = Candidate(url="https://x/what.mp4")
    assert urls(rank([sd, unknown, hd])) == ["https://x/1080.mp4", "https://x/480.mp4", "https://x/what.mp4"]


def test_a_known_bitrate_outranks_a_bigger_resolution_without_one() -> None:
    # quality() is (bitrate, pixels, source trust): bitrate is compared first, unknown counts as 0.
    small_with_rate = Candidate(url="https://x/360.mp4", width=640, height=360, bitrate=500_000)
    big_without_rate = Candidate(url="https://x/1080.mp4", width=1920, height=1080)
    assert urls(rank([big_without_rate, small_with_rate])) == ["https://x/360.mp4", "https://x/1080.mp4"]


def test_the_more_trusted_source_breaks_a_tie() -> None:
    network = Candidate(url="https://x/a.mp4", source="network", width=1280, height=720)
    og = Candidate(url="https://x/b.mp4", source="og:video", width=1280, height=720)
    player_json = Candidate(url="https://x/c.mp4", source="network-json", width=1280, height=720)
    assert urls(rank([network, og, player_json])) == ["https://x/c.mp4", "https://x/b.mp4", "https://x/a.mp4"]


def test_duplicates_keep_the_better_described_copy() -> None:
    # Given the same URL seen bare on the network and described by the page's JSON-LD
    bare = Candidate(url="https://x/v.mp4", source="network")
    described = Candidate(url="https://x/v.mp4", source="jsonld", width=1920, height=1080, bitrate=4_000_000)
    # When ranked in either order
    # Then one copy remains, the described one
    for order in ([bare, described], [described, bare]):
        (kept,) = rank(order)
        assert (kept.source, kept.bitrate) == ("jsonld", 4_000_000)


def test_equally_described_duplicates_keep_the_more_trusted_source() -> None:
    og = Candidate(url="https://x/v.mp4", source="og:video", content_type="video/mp4")
    tag = Candidate(url="https://x/v.mp4", source="video-tag", content_type="video/mp4")
    (kept,) = rank([og, tag])
    assert kept.source == "video-tag"


def test_streaming_property_ignores_the_query_string() -> None:
    assert Candidate(url="https://x/v.mp4?format=.m3u8").is_streaming_manifest is False
    assert Candidate(url="https://x/list.m3u8?sig=abc").is_streaming_manifest is True


def test_og_image_is_media_only_when_nothing_moves() -> None:
    # Given a page preview image
    preview = Candidate(url="https://x/og.jpg", kind="photo", source="og:image")
    video = Candidate(url="https://x/v.mp4", kind="video", source="video-tag")
    photo = Candidate(url="https://x/p.jpg", kind="photo", source="jsonld")
    # Then it is dropped next to a video, kept in a photo post
    assert urls(rank([preview, video])) == ["https://x/v.mp4"]
    assert urls(rank([preview, photo])) == ["https://x/p.jpg", "https://x/og.jpg"]
