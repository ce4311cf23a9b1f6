"""URL normalisation: one canonical http(s) form, or INVALID_URL."""

from __future__ import annotations

import ipaddress

import pytest

from mediavault.errors import InvalidUrl
from mediavault.safety.urls import MAX_URL_LENGTH, host_and_port, normalize_url, parse_ip_literal

pytestmark = pytest.mark.unit


def test_scheme_and_host_are_lower_cased_but_the_path_is_not() -> None:
    # Given a URL shouted in capitals
    raw = "HTTPS://WWW.Example.COM/Some/Path"
    # When it is normalised
    url = normalize_url(raw)
    # Then scheme and host are lower case, the path keeps its case
    assert url == "https://www.example.com/Some/Path"


def test_unicode_host_is_idna_encoded() -> None:
    assert normalize_url("https://Bücher.example/x") == "https://xn--bcher-kva.example/x"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
    ],
)
def test_only_the_default_port_of_the_scheme_is_removed(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_fragment_is_removed_and_an_empty_path_becomes_slash() -> None:
    assert normalize_url("https://example.com#section-2") == "https://example.com/"


def test_tracking_parameters_are_dropped_and_the_others_keep_their_order() -> None:
    # Given a shared link carrying campaign and click trackers between real parameters
    raw = "https://example.com/post?b=2&utm_source=tw&UTM_Medium=x&a=1&fbclid=abc&gclid=g&si=s&igshid=i&z=9"
    # When it is normalised
    url = normalize_url(raw)
    # Then only the real parameters remain, in their original order
    assert url == "https://example.com/post?b=2&a=1&z=9"


def test_a_query_of_only_trackers_disappears() -> None:
    assert normalize_url("https://example.com/p?utm_campaign=spring&mc_cid=1") == "https://example.com/p"


def test_trailing_dot_of_the_host_is_dropped_and_surrounding_whitespace_ignored() -> None:
    assert normalize_url("  https://example.com./v  ") == "https://example.com/v"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://0x7f000001/", "http://127.0.0.1/"),
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
    ],
)
def test_ip_literals_are_written_in_their_canonical_form(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "https://example.com/a\r\nSet-Cookie: x=1",
        "https://example.com/a\x00b",
        "https://example.com/a\x1bb",
        "https://example.com/a\x7fb",
    ],
)
def test_control_characters_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUrl, match="control characters"):
        normalize_url(raw)


def test_a_url_over_the_length_limit_is_refused() -> None:
    # Given a URL one character over the limit
    raw = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/") + 1)
    assert len(raw) == MAX_URL_LENGTH + 1
    # When / Then
    with pytest.raises(InvalidUrl, match="longer than"):
        normalize_url(raw)


def test_a_url_at_the_length_limit_is_accepted() -> None:
    raw = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))
    assert normalize_url(raw) == raw


def test_the_canonical_url_also_respects_the_length_limit() -> None:
    # Given a URL under the limit whose query is non-ASCII text (each character becomes %XX%XX%XX)
    raw = "https://example.com/search?q=" + "中" * 1000
    assert len(raw) <= MAX_URL_LENGTH
    # When it is normalised, Then the result is refused or stays within the limit
    try:
        url = normalize_url(raw)
    except InvalidUrl:
        return
    assert len(url) <= MAX_URL_LENGTH


@pytest.mark.parametrize(
    "raw",
    [
        "https://user:secret@example.com/",
        "https://user@example.com/",
        "https://:@example.com/",
    ],
)
def test_credentials_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUrl, match="credentials"):
        normalize_url(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://example.com/file.mp4",
        "data:text/html,<script>alert(1)</script>",
        "example.com/post",
        "//example.com/post",
    ],
)
def test_anything_but_an_absolute_http_url_is_refused(raw: str) -> None:
    with pytest.raises(InvalidUrl, match="http:// or https://"):
        normalize_url(raw)


@pytest.mark.parametrize("raw", ["https:///path", "http://:80/", "https://./"])
def test_a_url_without_host_is_refused(raw: str) -> None:
    with pytest.raises(InvalidUrl, match="no host"):
        normalize_url(raw)


@pytest.mark.parametrize("raw", ["", "   ", None, 42])
def test_empty_or_non_text_input_is_refused(raw: object) -> None:
    with pytest.raises(InvalidUrl):
        normalize_url(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["https://example.com:99999/", "https://example.com:abc/"])
def test_an_invalid_port_is_refused(raw: str) -> None:
    with pytest.raises(InvalidUrl, match="malformed"):
        normalize_url(raw)


def test_an_invalid_domain_name_is_refused() -> None:
    with pytest.raises(InvalidUrl, match="not a valid domain"):
        normalize_url("https://" + "a" * 64 + ".example/")


def test_invalid_url_carries_its_stable_code() -> None:
    with pytest.raises(InvalidUrl) as caught:
        normalize_url("ftp://example.com/")
    assert caught.value.code == "INVALID_URL"
    assert caught.value.http_status == 400


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "2130706433", "0177.0.0.1"])
def test_parse_ip_literal_reads_every_spelling_of_loopback(host: str) -> None:
    assert parse_ip_literal(host) == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(("host", "expected"), [("[::1]", "::1"), ("::ffff:10.0.0.1", "::ffff:a00:1")])
def test_parse_ip_literal_reads_ipv6(host: str, expected: str) -> None:
    assert parse_ip_literal(host) == ipaddress.IPv6Address(expected)


@pytest.mark.parametrize("host", ["example.com", "cafe.de", "a1.be", "localhost", "999.1.1.1", ""])
def test_parse_ip_literal_returns_none_for_names(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Example.com./a", ("example.com", 443)),
        ("http://example.com/a", ("example.com", 80)),
        ("http://example.com:8123/a", ("example.com", 8123)),
    ],
)
def test_host_and_port_fills_in_the_default_port(url: str, expected: tuple[str, int]) -> None:
    assert host_and_port(url) == expected
