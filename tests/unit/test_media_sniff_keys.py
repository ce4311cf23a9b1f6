"""Content sniffing (what the bytes prove) and deterministic S3 keys."""

from __future__ import annotations

import pytest

from mediavault.media.keys import info_key, media_key, slugify, thumbnail_key
from mediavault.media.sniff import looks_like_text, sniff

pytestmark = pytest.mark.unit

TS_PACKET = b"\x47" + b"\x00" * 187


@pytest.mark.parametrize(
    ("head", "kind", "ext", "content_type"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "video", "mp4", "video/mp4"),
        (b"\x00\x00\x00\x20ftypmp42\x00\x00\x00\x00", "video", "mp4", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video", "mov", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "video", "webm", "video/webm"),
        (b"GIF87a\x01\x00\x01\x00", "gif", "gif", "image/gif"),
        (b"GIF89a\x01\x00\x01\x00", "gif", "gif", "image/gif"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "photo", "jpg", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo", "png", "image/png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "photo", "webp", "image/webp"),
        (TS_PACKET + TS_PACKET, "video", "ts", "video/mp2t"),
    ],
)
def test_sniff_recognises_media_from_its_first_bytes(head: bytes, kind: str, ext: str, content_type: str) -> None:
    sniffed = sniff(head)
    assert sniffed is not None
    assert (sniffed.kind, sniffed.ext, sniffed.content_type) == (kind, ext, content_type)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"<!DOCTYPE html><html>",
        b'{"error": "not found"}',
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # RIFF but not WebP
        TS_PACKET + b"\x00" * 10,  # one sync byte is not a transport stream
        b"\x00\x00\x00\x18ftyp",  # too short to carry a brand
    ],
)
def test_sniff_returns_none_for_what_is_not_known_media(head: bytes) -> None:
    assert sniff(head) is None


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html><body>Access denied</body></html>",
        b"<html><head><title>404</title>",
        b"\xef\xbb\xbf<!doctype html>",
        b"  \r\n\t<HTML>",
        b'{"error": {"code": 403}}',
        b"[1, 2, 3]",
        b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>",
    ],
)
def test_looks_like_text_spots_pages_whatever_their_label(head: bytes) -> None:
    # Given an error page that a CDN labelled video/mp4
    # Then the bytes alone give it away
    assert looks_like_text(head, "video/mp4") is True


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8", "Application/JSON", "text/plain"])
def test_looks_like_text_trusts_a_declared_text_type(content_type: str) -> None:
    assert looks_like_text(b"\x00\x00\x00\x18ftypisom", content_type) is True


def test_media_bytes_do_not_look_like_text() -> None:
    assert looks_like_text(b"\x00\x00\x00\x18ftypisom", "video/mp4") is False
    assert looks_like_text(b"\xff\xd8\xff\xe0", None) is False


# --- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("x", "@Some_User"), "x-some-user"),
        (("generic", "Café Ñandú"), "generic-cafe-nandu"),
        (("generic", "  lots   of   space  "), "generic-lots-of-space"),
        (("generic", None, "b"), "generic-b"),
        (("--A--", "..B.."), "a-b"),
    ],
)
def test_slugify_makes_lower_case_ascii_with_single_dashes(parts: tuple[str | None, ...], expected: str) -> None:
    assert slugify(*parts) == expected


def test_slugify_falls_back_when_nothing_is_left() -> None:
    assert slugify("日本語", "@@@") == "unknown"
    assert slugify(None, "", fallback="anon") == "anon"


def test_slugify_caps_the_length_without_a_trailing_dash() -> None:
    # Given a name whose 80th character would be a dash
    slug = slugify("a" * 79 + " " + "b" * 50)
    # Then the slug is at most 80 characters and does not end with a dash
    assert slug == "a" * 79
    assert len(slugify("x" * 500)) == 80


def test_keys_are_deterministic_paths_under_the_tenant() -> None:
    assert media_key("t-1", "generic-alice", "job-1", "mp4") == "tenants/t-1/downloads/generic-alice/job-1.mp4"
    assert (
        thumbnail_key("t-1", "generic-alice", "job-1", "jpg")
        == "tenants/t-1/downloads/generic-alice/thumbnails/job-1.jpg"
    )
    assert info_key("t-1", "generic-alice", "job-1") == "tenants/t-1/downloads/generic-alice/job-1.info.json"


def test_keys_carry_the_item_index_when_given() -> None:
    assert media_key("t", "s", "j", "mp4", index=0) == "tenants/t/downloads/s/j-0.mp4"
    assert thumbnail_key("t", "s", "j", "png", index=2) == "tenants/t/downloads/s/thumbnails/j-2.png"


@pytest.mark.parametrize("tenant", ["", "..", "a/b", "../other", "-lead", "a" * 65, "tenant\\x", "t.1", "ünï"])
def test_a_tenant_id_that_could_leave_its_prefix_is_refused(tenant: str) -> None:
    with pytest.raises(ValueError, match="tenant id"):
        media_key(tenant, "s", "j", "mp4")
