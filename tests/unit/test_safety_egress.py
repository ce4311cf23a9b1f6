"""The egress policy: public addresses only, checked on the resolved address and on every hop."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from mediavault.errors import EgressBlocked, InvalidUrl, MediaTooLarge, UpstreamUnavailable
from mediavault.safety.egress import EgressPolicy, EgressTransport, egress_client, is_public

pytestmark = pytest.mark.unit

PUBLIC_V4 = "93.184.216.34"


def resolver_of(table: dict[str, list[str]]):
    """A fake DNS: answers from ``table``, NXDOMAIN (``OSError``) for anything else; records lookups."""
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return list(table[host])

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"DNS lookup of {host} was not expected")


# --- is_public ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "0.1.2.3",  # 0/8 "this network"
        "10.1.2.3",  # RFC 1918
        "100.64.0.1",  # carrier-grade NAT
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",  # cloud metadata (link-local)
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "198.18.0.1",  # benchmarking
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "::",
        "::1",
        "fd00:ec2::254",  # ULA (EC2 IMDS over IPv6)
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", PUBLIC_V4, "2606:4700:4700::1111", "2002:808:808::"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address)) is True


def test_nat64_form_of_a_public_ipv4_is_public() -> None:
    # Given what DNS64 answers for 8.8.8.8 on an IPv6-only network
    address = ipaddress.ip_address("64:ff9b::808:808")
    # Then it is as public as 8.8.8.8
    assert is_public(address) is True


# --- EgressPolicy.resolve ----------------------------------------------------------------------


def test_resolve_returns_the_public_answers() -> None:
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4, "2606:4700:4700::1111"]}))
    assert policy.resolve("https://cdn.example/v.mp4") == [PUBLIC_V4, "2606:4700:4700::1111"]


def test_resolve_refuses_a_name_that_resolves_to_a_private_address() -> None:
    # Given a public-looking name pointing at the metadata service (DNS rebinding style)
    policy = EgressPolicy(resolver=resolver_of({"evil.example": ["169.254.169.254"]}))
    # When / Then
    with pytest.raises(EgressBlocked, match=r"169\.254\.169\.254"):
        policy.resolve("http://evil.example/")


def test_resolve_refuses_when_any_answer_is_private() -> None:
    policy = EgressPolicy(resolver=resolver_of({"mixed.example": [PUBLIC_V4, "10.0.0.5"]}))
    with pytest.raises(EgressBlocked, match=r"10\.0\.0\.5"):
        policy.resolve("https://mixed.example/")


def test_resolve_fails_closed_when_dns_fails() -> None:
    policy = EgressPolicy(resolver=resolver_of({}))
    with pytest.raises(EgressBlocked, match="could not be resolved"):
        policy.resolve("https://nowhere.example/")


def test_resolve_fails_closed_on_an_empty_answer() -> None:
    policy = EgressPolicy(resolver=resolver_of({"empty.example": []}))
    with pytest.raises(EgressBlocked, match="no address"):
        policy.resolve("https://empty.example/")


@pytest.mark.parametrize("url", ["https://cdn.example:8443/", "http://cdn.example:22/"])
def test_resolve_refuses_ports_other_than_80_and_443(url: str) -> None:
    resolve = resolver_of({"cdn.example": [PUBLIC_V4]})
    policy = EgressPolicy(resolver=resolve)
    with pytest.raises(EgressBlocked, match="port"):
        policy.resolve(url)
    assert resolve.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["ftp://cdn.example/a", "file:///etc/passwd", "gopher://cdn.example/", "ws://x/"])
def test_resolve_refuses_other_schemes(url: str) -> None:
    with pytest.raises(EgressBlocked, match="scheme"):
        EgressPolicy(resolver=no_dns).resolve(url)


@pytest.mark.parametrize("url", ["http://localhost/", "http://LOCALHOST./", "http://api.localhost/"])
def test_resolve_refuses_localhost_names_without_asking_dns(url: str) -> None:
    with pytest.raises(EgressBlocked):
        EgressPolicy(resolver=no_dns).resolve(url)


def test_resolve_of_a_literal_private_address_does_not_ask_dns() -> None:
    with pytest.raises(EgressBlocked):
        EgressPolicy(resolver=no_dns).resolve("http://0x7f000001/")


def test_an_exemption_allows_exactly_its_host_and_port() -> None:
    # Given the local sample site allowed on 127.0.0.1:8123
    policy = EgressPolicy(allow=frozenset({"127.0.0.1:8123"}), resolver=no_dns)
    # Then that host:port resolves to itself
    assert policy.resolve("http://127.0.0.1:8123/posts/1") == ["127.0.0.1"]
    # And neither another port of the same host nor the same port of another host is allowed
    with pytest.raises(EgressBlocked):
        policy.resolve("http://127.0.0.1:8124/")
    with pytest.raises(EgressBlocked):
        policy.resolve("http://127.0.0.1/")
    with pytest.raises(EgressBlocked):
        policy.resolve("http://127.0.0.2:8123/")


def test_an_exempt_name_is_resolved_and_its_private_answer_accepted() -> None:
    policy = EgressPolicy(allow=frozenset({"localhost:9"}), resolver=resolver_of({"localhost": ["127.0.0.1"]}))
    assert policy.resolve("http://localhost:9/x") == ["127.0.0.1"]


def test_a_url_without_host_is_invalid_rather_than_blocked() -> None:
    with pytest.raises(InvalidUrl):
        EgressPolicy(resolver=no_dns).resolve("https:///nohost")


# --- EgressPolicy.check_literal ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://localhost/",
        "http://foo.localhost/",
    ],
)
def test_check_literal_refuses_private_literals_in_any_spelling(url: str) -> None:
    with pytest.raises(EgressBlocked):
        EgressPolicy(resolver=no_dns).check_literal(url)


def test_check_literal_accepts_names_and_public_literals_without_dns() -> None:
    # Given a resolver that fails the test if called
    policy = EgressPolicy(resolver=no_dns)
    # When / Then: nothing is raised, and the resolver was never consulted
    policy.check_literal("https://private-looking-but-unresolved.example/post")
    policy.check_literal(f"https://{PUBLIC_V4}/post")


def test_check_literal_refuses_bad_ports_and_schemes() -> None:
    policy = EgressPolicy(resolver=no_dns)
    with pytest.raises(EgressBlocked, match="port"):
        policy.check_literal("https://example.com:8443/")
    with pytest.raises(EgressBlocked, match="scheme"):
        policy.check_literal("javascript:alert(1)")


def test_check_literal_honours_exemptions() -> None:
    EgressPolicy(allow=frozenset({"127.0.0.1:8123"}), resolver=no_dns).check_literal("http://127.0.0.1:8123/")


# --- EgressTransport ----------------------------------------------------------------------------


class RecordingTransport(httpx.BaseTransport):
    """The inner transport: records each request as it would go on the wire, answers via ``respond``."""

    def __init__(self, respond=None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (lambda request: httpx.Response(200, content=b"ok"))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)


def test_transport_connects_to_the_checked_address_and_keeps_the_name() -> None:
    # Given a name that resolves to a public address
    inner = RecordingTransport()
    transport = EgressTransport(EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4]})), inner=inner)
    # When a request for it goes through the transport
    response = transport.handle_request(httpx.Request("GET", "https://cdn.example/v.mp4?x=1"))
    # Then the wire request goes to the pinned IP, with Host and SNI still naming the host
    assert response.status_code == 200
    (sent,) = inner.requests
    assert sent.url.host == PUBLIC_V4
    assert sent.url.path == "/v.mp4"
    assert sent.url.query == b"x=1"
    assert sent.headers["host"] == "cdn.example"
    assert sent.extensions["sni_hostname"] == "cdn.example"


def test_transport_pins_ipv6_answers() -> None:
    inner = RecordingTransport()
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": ["2606:4700:4700::1111"]}))
    EgressTransport(policy, inner=inner).handle_request(httpx.Request("GET", "https://cdn.example/a"))
    (sent,) = inner.requests
    assert sent.url.host == "2606:4700:4700::1111"
    assert sent.headers["host"] == "cdn.example"


def test_transport_refuses_a_forbidden_hop_before_the_inner_transport_is_called() -> None:
    inner = RecordingTransport()
    transport = EgressTransport(EgressPolicy(resolver=resolver_of({"evil.example": ["10.0.0.1"]})), inner=inner)
    with pytest.raises(EgressBlocked):
        transport.handle_request(httpx.Request("GET", "http://evil.example/"))
    assert inner.requests == []


def test_a_redirect_to_a_private_address_is_refused_at_the_second_hop() -> None:
    # Given a public CDN that redirects to loopback
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://127.0.0.1/admin"})

    inner = RecordingTransport(respond)
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4]}))
    # When an httpx client following redirects fetches through the egress transport
    # Then the redirect hop is refused, and only the first hop reached the wire
    with (
        httpx.Client(transport=EgressTransport(policy, inner=inner), follow_redirects=True) as client,
        pytest.raises(EgressBlocked),
    ):
        client.get("https://cdn.example/v.mp4")
    assert [r.url.host for r in inner.requests] == [PUBLIC_V4]


def test_a_redirect_to_a_name_that_resolves_privately_is_refused() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://internal.example/secret"})

    inner = RecordingTransport(respond)
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4], "internal.example": ["192.168.0.10"]}))
    with (
        httpx.Client(transport=EgressTransport(policy, inner=inner), follow_redirects=True) as client,
        pytest.raises(EgressBlocked, match=r"192\.168\.0\.10"),
    ):
        client.get("https://cdn.example/v.mp4")
    assert len(inner.requests) == 1


def test_a_redirect_to_another_public_host_is_followed_with_that_hosts_name() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "cdn.example":
            return httpx.Response(302, headers={"location": "https://media.example/v.mp4"})
        return httpx.Response(200, content=b"media")

    inner = RecordingTransport(respond)
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4], "media.example": ["1.1.1.1"]}))
    with httpx.Client(transport=EgressTransport(policy, inner=inner), follow_redirects=True) as client:
        response = client.get("https://cdn.example/v.mp4")
    assert response.content == b"media"
    second = inner.requests[1]
    assert (second.url.host, second.headers["host"], second.extensions["sni_hostname"]) == (
        "1.1.1.1",
        "media.example",
        "media.example",
    )


def test_a_relative_redirect_on_an_exempt_name_stays_allowed() -> None:
    # Given a local site allowed by name, which redirects relatively (/a -> /b)
    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/a":
            return httpx.Response(302, headers={"location": "/b"})
        return httpx.Response(200, content=b"ok")

    inner = RecordingTransport(respond)
    policy = EgressPolicy(allow=frozenset({"localhost:9"}), resolver=resolver_of({"localhost": ["127.0.0.1"]}))
    # When the client follows the redirect
    with httpx.Client(transport=EgressTransport(policy, inner=inner), follow_redirects=True) as client:
        response = client.get("http://localhost:9/a")
    # Then the second hop is allowed like the first (same host, same port)
    assert response.status_code == 200


# --- exemptions by address, credentials, control characters -----------------------------------------


def test_a_name_that_resolves_to_an_exempt_address_and_port_is_allowed_and_nothing_else_is() -> None:
    # Given the local site exempted as 127.0.0.1:8123, and names pointing at it or next to it
    dns = resolver_of({"site.test": ["127.0.0.1"], "beside.test": ["127.0.0.2"], "pub.test": [PUBLIC_V4]})
    policy = EgressPolicy(allow=frozenset({"127.0.0.1:8123"}), resolver=dns)
    # Then a name reaching exactly that address and port passes
    assert policy.resolve("http://site.test:8123/") == ["127.0.0.1"]
    # And another loopback address on that port does not, nor the exempt address on another port
    with pytest.raises(EgressBlocked, match=r"127\.0\.0\.2"):
        policy.resolve("http://beside.test:8123/")
    with pytest.raises(EgressBlocked, match="port"):
        policy.resolve("http://site.test:8124/")
    # And the exempt port is no opening for public addresses either
    with pytest.raises(EgressBlocked, match="port 8123"):
        policy.resolve("http://pub.test:8123/")


def test_an_exempt_address_in_another_spelling_is_exempt() -> None:
    policy = EgressPolicy(allow=frozenset({"127.0.0.1:8123"}), resolver=no_dns)
    assert policy.resolve("http://0x7f000001:8123/") == ["127.0.0.1"]
    policy.check_literal("http://127.1:8123/")


def test_an_ipv6_exemption_may_be_written_with_brackets() -> None:
    policy = EgressPolicy(allow=frozenset({"[::1]:8123"}), resolver=no_dns)
    assert policy.resolve("http://[::1]:8123/") == ["::1"]


@pytest.mark.parametrize("url", ["http://user:pw@cdn.example/", "http://user@cdn.example/"])
def test_urls_with_credentials_are_refused(url: str) -> None:
    with pytest.raises(EgressBlocked, match="credentials"):
        EgressPolicy(resolver=no_dns).resolve(url)


@pytest.mark.parametrize(
    "url", ["http://cdn.example/a\r\nHost: x", "http://cdn.example/\x00", "http://cdn.example/" + "a" * 9000]
)
def test_control_characters_and_over_long_urls_are_invalid(url: str) -> None:
    with pytest.raises(InvalidUrl):
        EgressPolicy(resolver=no_dns).resolve(url)


def test_a_non_address_answer_fails_closed() -> None:
    with pytest.raises(EgressBlocked, match="not an address"):
        EgressPolicy(resolver=resolver_of({"odd.example": ["not-an-ip"]})).resolve("http://odd.example/")


# --- the transport's pinning and caps ---------------------------------------------------------------------


def test_transport_pins_literals_in_any_spelling_to_the_checked_address() -> None:
    inner = RecordingTransport()
    policy = EgressPolicy(allow=frozenset({"127.0.0.1:8123"}), resolver=no_dns)
    EgressTransport(policy, inner=inner).handle_request(httpx.Request("GET", "http://127.1:8123/a"))
    (sent,) = inner.requests
    assert sent.url.host == "127.0.0.1"
    assert "sni_hostname" not in sent.extensions


class ExplodingStream(httpx.SyncByteStream):
    """A body that must never be read."""

    def __iter__(self):  # type: ignore[override]
        raise AssertionError("the redirect body was read")
        yield b""  # pragma: no cover


def test_a_redirect_body_is_never_read() -> None:
    # Given a CDN whose redirect carries a (huge) body, and a final hop with the media
    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/a":
            return httpx.Response(
                302, headers={"location": "/b", "content-length": "5000000000"}, stream=ExplodingStream()
            )
        return httpx.Response(200, content=b"media")

    inner = RecordingTransport(respond)
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4]}))
    # When the client follows the redirect
    with httpx.Client(transport=EgressTransport(policy, inner=inner), follow_redirects=True) as client:
        response = client.get("https://cdn.example/a")
    # Then the media arrives and the redirect's body was not touched
    assert response.content == b"media"


def test_the_transport_caps_bytes_per_hop() -> None:
    inner = RecordingTransport(lambda request: httpx.Response(200, content=b"x" * 100))
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4]}))
    with (
        httpx.Client(transport=EgressTransport(policy, inner=inner, max_bytes=99)) as client,
        pytest.raises(MediaTooLarge),
    ):
        client.get("https://cdn.example/a")


def test_the_transport_caps_time_per_hop() -> None:
    inner = RecordingTransport(lambda request: httpx.Response(200, content=b"x" * 100))
    policy = EgressPolicy(resolver=resolver_of({"cdn.example": [PUBLIC_V4]}))
    with (
        httpx.Client(transport=EgressTransport(policy, inner=inner, max_seconds=0.0)) as client,
        pytest.raises(UpstreamUnavailable, match="time limit"),
    ):
        client.get("https://cdn.example/a")


def test_the_egress_client_follows_at_most_five_redirects_and_ignores_proxy_environment() -> None:
    client = egress_client(EgressPolicy(resolver=no_dns), timeout=5)
    assert client.max_redirects == 5
    assert client.trust_env is False
    client.close()
