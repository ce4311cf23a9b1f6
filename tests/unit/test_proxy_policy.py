"""The pure parts of the browser's egress proxy and of the extractor's navigation rules (no sockets)."""

from __future__ import annotations

import pytest

from mediavault.errors import EgressBlocked
from mediavault.safety.proxy import (
    BlockedHop,
    ProxyRequestError,
    _ResponseHeads,
    authority_of,
    parse_request_head,
    refusal,
    rewrite_response_head,
    target_of,
    upstream_request_head,
)
from mediavault.worker.browser import CHROMIUM_ARGS, PROXY_BYPASS, proxy_args
from mediavault.worker.extract import refuse_navigation

pytestmark = pytest.mark.unit


def head(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


# --- parsing what the browser sends ---------------------------------------------------------------


def test_a_forward_request_names_its_url_host_port_and_origin_form_path() -> None:
    parsed = parse_request_head(head("GET http://cdn.example:8080/v.mp4?x=1#frag HTTP/1.1\nHost: cdn.example:8080"))
    target = target_of(parsed)
    assert (target.tunnel, target.host, target.port, target.path) == (False, "cdn.example", 8080, "/v.mp4?x=1")
    assert target.url == "http://cdn.example:8080/v.mp4?x=1"
    assert target.authority == "cdn.example:8080"


def test_a_connect_request_is_checked_as_the_url_of_its_port() -> None:
    https = target_of(parse_request_head(head("CONNECT cdn.example:443 HTTP/1.1\nHost: cdn.example:443")))
    assert (https.tunnel, https.url, https.port) == (True, "https://cdn.example:443/", 443)
    other = target_of(parse_request_head(head("CONNECT [::1]:8123 HTTP/1.1")))
    assert (other.url, other.host, other.port) == ("http://[::1]:8123/", "::1", 8123)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("GET http://a.example/ HTTP/1.1\nHost: a\x00b", 400),  # NUL
        ("GET http://a.example/\rX HTTP/1.1", 400),  # bare CR in the request line
        ("GET http://a.example/ HTTP/1.1\n folded: header", 400),
        ("GET http://a.example/ HTTP/2.0", 400),
        ("GET  http://a.example/ HTTP/1.1", 400),
        ("G(T http://a.example/ HTTP/1.1", 400),
        ("GET http://a.example/" + "a" * 9000 + " HTTP/1.1", 414),
        ("GET http://a.example/\x7f HTTP/1.1", 400),
    ],
)
def test_malformed_heads_are_refused(raw: str, status: int) -> None:
    with pytest.raises(ProxyRequestError) as caught:
        parse_request_head(raw.replace("\n", "\r\n").encode("latin-1"))
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("GET /relative HTTP/1.1", 400),  # not a proxy request
        ("GET https://a.example/ HTTP/1.1", 400),  # https goes through CONNECT
        ("GET ftp://a.example/ HTTP/1.1", 400),
        ("GET http://user:pw@a.example/ HTTP/1.1", 403),  # no userinfo
        ("CONNECT a.example HTTP/1.1", 400),  # no port
        ("CONNECT a.example:443/path HTTP/1.1", 400),
        ("CONNECT user@a.example:443 HTTP/1.1", 400),
        ("CONNECT a.example:99999 HTTP/1.1", 400),
    ],
)
def test_targets_other_than_absolute_http_or_host_port_are_refused(request_line: str, status: int) -> None:
    with pytest.raises(ProxyRequestError) as caught:
        target_of(parse_request_head(head(request_line)))
    assert caught.value.status == status


# --- what goes upstream and back ---------------------------------------------------------------------


def test_the_upstream_request_drops_proxy_headers_and_closes() -> None:
    parsed = parse_request_head(
        head(
            "GET http://cdn.example/v.mp4 HTTP/1.1\nHost: evil.example\nProxy-Connection: keep-alive\n"
            "Proxy-Authorization: Basic eA==\nConnection: keep-alive, X-Secret\nX-Secret: 1\nRange: bytes=0-"
        )
    )
    sent = upstream_request_head(parsed, target_of(parsed)).decode()
    lines = sent.split("\r\n")
    assert lines[0] == "GET /v.mp4 HTTP/1.1"
    assert "Host: cdn.example" in lines  # from the URL, not the client's Host header
    assert "Range: bytes=0-" in lines
    assert "Connection: close" in lines
    assert not any(line.lower().startswith(("proxy-", "x-secret", "host: evil")) for line in lines)
    assert sent.endswith("\r\n\r\n")


def test_a_websocket_upgrade_keeps_its_upgrade_headers() -> None:
    parsed = parse_request_head(
        head("GET http://ws.example/chat HTTP/1.1\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Key: k")
    )
    lines = upstream_request_head(parsed, target_of(parsed)).decode().split("\r\n")
    assert "Upgrade: websocket" in lines
    assert "Connection: Upgrade" in lines
    assert "Connection: close" not in lines


def test_a_response_head_is_told_to_close_but_a_101_is_left_alone() -> None:
    rewritten, status = rewrite_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive")
    assert status == 200
    assert rewritten == b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\nProxy-Connection: close\r\n\r\n"
    raw = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket"
    assert rewrite_response_head(raw) == (raw + b"\r\n\r\n", 101)
    assert rewrite_response_head(b"garbage") == (b"garbage\r\n\r\n", None)


def test_response_heads_are_rewritten_across_chunks_and_interim_heads_pass() -> None:
    heads = _ResponseHeads()
    out = heads.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConn")
    out += heads.feed(b"ection: keep-alive\r\nContent-Length: 4\r\n\r\nbo")
    out += heads.feed(b"dy")
    assert out == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\nProxy-Connection: close\r\n\r\nbody"
    )


def test_a_refusal_is_a_complete_closing_response() -> None:
    raw = refusal(403, "127.0.0.1 is not a public address")
    head_part, body = raw.split(b"\r\n\r\n", 1)
    assert head_part.startswith(b"HTTP/1.1 403 Forbidden")
    assert f"Content-Length: {len(body)}".encode() in head_part
    assert b"Connection: close" in head_part


# --- naming a refused hop --------------------------------------------------------------------------


def test_a_forward_refusal_matches_its_url_and_a_tunnel_refusal_its_authority() -> None:
    forward = BlockedHop("GET", "http://127.0.0.1:9/x", "127.0.0.1:9", "not public")
    assert forward.matches("http://127.0.0.1:9/x#frag")
    assert not forward.matches("http://127.0.0.1:9/y")
    tunnel = BlockedHop("CONNECT", "127.0.0.1:443", "127.0.0.1:443", "not public")
    assert tunnel.matches("https://127.0.0.1/a")
    assert tunnel.matches("wss://127.0.0.1/socket")
    assert not tunnel.matches("https://127.0.0.1:8443/")
    assert authority_of("ws://[::1]/") == "[::1]:80"


# --- the browser's switches and navigations --------------------------------------------------------


def test_the_browser_sends_loopback_through_the_proxy_and_no_udp_around_it() -> None:
    assert proxy_args("http://127.0.0.1:1234") == (
        "--proxy-server=http://127.0.0.1:1234",
        "--proxy-bypass-list=<-loopback>",
    )
    assert PROXY_BYPASS == "<-loopback>"
    assert "--webrtc-ip-handling-policy=disable_non_proxied_udp" in CHROMIUM_ARGS
    assert "--disable-quic" in CHROMIUM_ARGS


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/html,<script>fetch('http://169.254.169.254/')</script>",
        "chrome://settings",
        "javascript:alert(1)",
        "about:config",
        "blob:http://a.example/1",
        "view-source:http://a.example/",
        "ftp://a.example/",
        " http://a.example/",
        "no-scheme",
    ],
)
def test_navigations_other_than_http_are_refused_before_the_browser(url: str) -> None:
    with pytest.raises(EgressBlocked):
        refuse_navigation(url)


@pytest.mark.parametrize("url", ["http://a.example/", "HTTPS://a.example/p", "about:blank"])
def test_http_and_about_blank_may_be_opened(url: str) -> None:
    refuse_navigation(url)
