"""Login cookie parsing: clear errors that never show a cookie's value."""

from __future__ import annotations

import pytest

from mediavault.logins import LoginCookiesInvalid, NoCookies, cookie_source, parse_cookies

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"cookies": "x"}', "must be a list"),
        ('[{"name": "a", "value": 1, "domain": "x"}]', "string name, value and domain"),
        ("example.com\tFALSE\t/\tsecret-value", "7 tab-separated fields"),
    ],
)
def test_bad_cookies_are_refused_without_showing_them(text: str, problem: str) -> None:
    with pytest.raises(LoginCookiesInvalid) as caught:
        parse_cookies(text)
    assert problem in caught.value.message
    assert "secret-value" not in caught.value.message
    assert caught.value.code == "LOGIN_COOKIES_INVALID"
    assert caught.value.retryable is False


def test_empty_text_is_no_cookies_and_expiry_is_kept() -> None:
    assert parse_cookies("  \n") == []
    (cookie,) = parse_cookies('[{"name": "a", "value": "b", "domain": ".x.com", "expires": 1900000000}]')
    assert cookie.for_playwright() == {
        "name": "a", "value": "b", "domain": ".x.com", "path": "/", "secure": False, "httpOnly": False,
        "expires": 1900000000.0,
    }  # fmt: skip


def test_no_source_configured_means_no_cookies() -> None:
    source = cookie_source(secret_prefix=None, file=None)
    assert isinstance(source, NoCookies)
    assert source.for_tenant("anyone") == []
