"""Expired signed media URLs are recognised from the URL alone."""

from __future__ import annotations

import pytest

from mediavault.media.signed import expires_at, is_expired

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://d111.cloudfront.net/v.mp4?Expires=1700000000&Signature=abc&Key-Pair-Id=K", 1_700_000_000),
        ("https://b.s3.amazonaws.com/v.mp4?X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=f",
         1_704_067_200 + 3600),
        ("https://scontent.cdninstagram.com/v/t50/x.mp4?oh=00_ab&oe=65A1B2C3", 0x65A1B2C3),
        ("https://cdn.example/v.mp4?hdnts=st=1700000000~exp=1700003600~acl=/*~hmac=ab", 1_700_003_600),
        ("https://rr1.googlevideo.com/videoplayback?expire=1700000000&ei=x", 1_700_000_000),
        ("https://cdn.example/v.mp4?exp=1700000000", 1_700_000_000),
        ("https://storage.googleapis.com/b/o?Expires=1700000000&GoogleAccessId=a", 1_700_000_000),
    ],
)  # fmt: skip
def test_expiry_is_read_from_the_query(url: str, expected: int) -> None:
    assert expires_at(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://video.example/v.mp4",
        "https://video.example/v.mp4?tag=12",
        "https://video.example/v.mp4?e=abc",  # not a timestamp
        "https://video.example/v.mp4?exp=123",  # too short to be an epoch second
        "https://b.s3.amazonaws.com/v.mp4?X-Amz-Date=garbage&X-Amz-Expires=60",
        "https://scontent.example/x.mp4?oe=zz",
    ],
)
def test_urls_without_a_readable_expiry_are_never_expired(url: str) -> None:
    assert not is_expired(url, now=NOW)


def test_expired_past_and_within_the_margin_but_not_in_the_future() -> None:
    assert is_expired(f"https://c.example/v.mp4?Expires={int(NOW) - 1}", now=NOW)
    assert is_expired(f"https://c.example/v.mp4?Expires={int(NOW) + 10}", now=NOW, margin=30)
    assert not is_expired(f"https://c.example/v.mp4?Expires={int(NOW) + 3600}", now=NOW)
