"""The platform registry: URL recognition, configured hosts and API bases, archive keys."""

from __future__ import annotations

import pytest

from mediavault.jobs.service import dedupe_key
from mediavault.platforms import GENERIC, Platforms

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "platform", "post_id"),
    [
        ("https://x.com/someone/status/1790000000000000001", "x", "1790000000000000001"),
        ("https://twitter.com/i/status/1790000000000000001", "x", "1790000000000000001"),
        ("https://mobile.twitter.com/a/status/1790000000000000001/video/1", "x", "1790000000000000001"),
        ("https://fxtwitter.com/a/status/1790000000000000001", "x", "1790000000000000001"),
        ("https://x.com/someone", "x", None),
        ("https://bsky.app/profile/alice.bsky.social/post/3kabc2defgh2x", "bluesky", "alice.bsky.social/3kabc2defgh2x"),
        ("https://example.com/someone/status/1", GENERIC, None),
    ],
)  # fmt: skip
def test_known_hosts_are_recognised(url: str, platform: str, post_id: str | None) -> None:
    ref = Platforms().recognise(url)
    assert (ref.platform, ref.post_id) == (platform, post_id)


def test_the_same_post_under_different_urls_has_one_archive_key() -> None:
    registry = Platforms()
    urls = [
        "https://x.com/someone/status/1790000000000000001",
        "https://twitter.com/i/status/1790000000000000001",
        "https://vxtwitter.com/other/status/1790000000000000001/photo/2",
    ]
    keys = {dedupe_key("t1", url, registry.recognise(url)) for url in urls}
    assert keys == {"t1|post|x:1790000000000000001"}
    # ...while a page no platform knows is deduplicated by its URL, and tenants never share a key.
    assert dedupe_key("t1", "https://example.com/p", registry.recognise("https://example.com/p")) == (
        "t1|https://example.com/p"
    )
    assert dedupe_key("t2", urls[0], registry.recognise(urls[0])) != dedupe_key(
        "t1", urls[0], registry.recognise(urls[0])
    )


def test_configured_hosts_stand_in_for_a_platform_and_keep_their_own_page_url() -> None:
    registry = Platforms(hosts={"x": ["127.0.0.1:8123"]}, api={"x": "http://127.0.0.1:8123"})
    ref = registry.recognise("http://127.0.0.1:8123/someone/status/42")
    assert (ref.platform, ref.post_id, ref.api_base) == ("x", "42", "http://127.0.0.1:8123")
    assert ref.configured_host
    assert ref.page_url == "http://127.0.0.1:8123/someone/status/42"
    # Another port on the same address is not the platform.
    assert registry.recognise("http://127.0.0.1:9999/someone/status/42").platform == GENERIC


def test_mirror_hosts_open_the_original_post_and_use_the_default_api() -> None:
    ref = Platforms().recognise("https://fxtwitter.com/a/status/1790000000000000001")
    assert ref.page_url == "https://x.com/i/status/1790000000000000001"
    assert ref.api_base == "https://cdn.syndication.twimg.com"


def test_unknown_platform_names_in_the_configuration_are_refused() -> None:
    with pytest.raises(ValueError, match="youtube"):
        Platforms(hosts={"youtube": ["127.0.0.1:1"]})
    with pytest.raises(ValueError, match="nope"):
        Platforms(api={"nope": "http://127.0.0.1:1"})
