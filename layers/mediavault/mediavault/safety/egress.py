"""The egress policy: every fetch of a user-supplied URL passes through it.

http and https only; the resolved address must be globally routable (IPv4-mapped, 6to4, Teredo and
NAT64 forms are unwrapped first); DNS errors fail closed. ``MEDIAVAULT_EGRESS_ALLOW`` names the only
exemptions (``host:port`` pairs, for local use). :class:`EgressTransport` resolves once, checks, and
connects to the checked address so a second DNS answer cannot swap it; every redirect hop goes
through it again.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from mediavault.errors import EgressBlocked, InvalidUrl, MediaTooLarge, UpstreamUnavailable
from mediavault.safety.urls import host_and_port, parse_ip_literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_ALLOWED_PORTS = frozenset({80, 443})
# Page, media and redirect URLs (signed CDN links can be long); what users submit is capped at 2048.
MAX_FETCH_URL_LENGTH = 8192
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_EXTRA_FORBIDDEN = tuple(
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", "fc00::/7")
)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable, and so is any IPv4 address hidden inside it."""
    inner = embedded_ipv4(ip)
    if inner is not None and (ip.ipv4_mapped is not None or ip in _NAT64):  # type: ignore[union-attr]
        return is_public(inner)  # a translation of an IPv4 address is as public as that address
    if inner is not None and not is_public(inner):
        return False
    if any(ip in net for net in _EXTRA_FORBIDDEN if net.version == ip.version):
        return False
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local or ip.is_reserved:
        return False
    return bool(ip.is_global) or (inner is not None and is_public(inner))


@dataclass(frozen=True)
class EgressPolicy:
    """Decides whether a URL may be fetched, and to which address to connect.

    ``allow`` holds the ``host:port`` exemptions (``MEDIAVAULT_EGRESS_ALLOW``, local use only): a
    listed host may be fetched on that port whatever it resolves to, and a listed address may be
    reached on that port whatever name led to it. With no exemptions (the deployed functions) only
    public addresses on ports 80 and 443 pass.
    """

    allow: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)

    def is_exempt(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        return f"{host}:{port}" in self.allow or f"[{host}]:{port}" in self.allow

    def check_literal(self, url: str) -> None:
        """What can be refused without DNS: scheme, port, and literal forbidden addresses (the API uses it)."""
        host, port = self._scheme_and_host(url)
        if self.is_exempt(host, port):
            return
        self._check_port(port, url)
        literal = parse_ip_literal(host)
        if literal is not None:
            self._check_address(host, literal, port, url)
        elif _is_localhost(host):
            raise _blocked(f"{host} is not a public address", url)

    def resolve(self, url: str) -> list[str]:
        """The addresses ``url`` may be fetched from; raises :class:`EgressBlocked` if none or any is forbidden."""
        host, port = self._scheme_and_host(url)
        literal = parse_ip_literal(host)
        if self.is_exempt(host, port):
            return [literal.compressed] if literal is not None else self._lookup(host, port, url)
        self._check_port(port, url)
        if literal is not None:
            self._check_address(host, literal, port, url)
            return [literal.compressed]
        if _is_localhost(host):
            raise _blocked(f"{host} is not a public address", url)
        addresses = self._lookup(host, port, url)
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                raise _blocked(f"{host} resolves to {address!r}, which is not an address", url) from None
            self._check_address(host, ip, port, url)
        return addresses

    def _check_address(self, host: str, ip: IPAddress, port: int, url: str) -> None:
        if self.is_exempt(ip.compressed, port):
            return
        if not is_public(ip):
            if parse_ip_literal(host) is not None:
                raise _blocked(f"{host} is not a public address", url)
            raise _blocked(f"{host} resolves to {ip.compressed}, which is not a public address", url)
        if port not in _ALLOWED_PORTS:
            raise _blocked(f"port {port} may not be fetched", url)

    def _check_port(self, port: int, url: str) -> None:
        """Ports other than 80 and 443 only where an exemption names that port (no DNS otherwise)."""
        if port not in _ALLOWED_PORTS and not any(entry.rpartition(":")[2] == str(port) for entry in self.allow):
            raise _blocked(f"port {port} may not be fetched", url)

    def _lookup(self, host: str, port: int, url: str) -> list[str]:
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise _blocked(f"{host} could not be resolved ({exc})", url) from None
        if not addresses:
            raise _blocked(f"{host} has no address", url)
        return addresses

    def _scheme_and_host(self, url: str) -> tuple[str, int]:
        if len(url) > MAX_FETCH_URL_LENGTH:
            raise InvalidUrl(f"url is longer than {MAX_FETCH_URL_LENGTH} characters")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
            raise InvalidUrl("url contains control characters")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise _blocked(f"scheme {scheme or '(none)'!r} may not be fetched", url)
        try:
            parts = urlsplit(url)
            if parts.username is not None or parts.password is not None:
                raise _blocked("URLs with credentials are not fetched", url)
            host, port = host_and_port(url)
        except ValueError as exc:
            raise InvalidUrl(f"url is malformed: {exc}") from None
        if not host:
            raise InvalidUrl("url has no host")
        return host, port


def _blocked(reason: str, url: str) -> EgressBlocked:
    """The refusal, naming the URL (the hop) it was about."""
    shown = url if len(url) <= 300 else url[:300] + "..."
    return EgressBlocked(f"{reason}: refused {shown}", url=url)


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


class EgressTransport(httpx.BaseTransport):
    """An httpx transport that checks every request (and so every redirect hop) against the policy
    and connects to the address it checked, keeping the host name for ``Host``, SNI and TLS checks.

    Caps per hop: a redirect's body is never read (httpx would read it whole into memory); other
    bodies stop with :class:`MediaTooLarge` past ``max_bytes`` and with :class:`UpstreamUnavailable`
    once ``max_seconds`` have passed since the request was sent (a server dripping one byte per read
    timeout cannot hold a worker).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        inner: httpx.BaseTransport | None = None,
        *,
        max_bytes: int | None = None,
        max_seconds: float | None = None,
    ) -> None:
        self._policy = policy
        self._inner = inner or httpx.HTTPTransport(retries=0)
        self._max_bytes = max_bytes
        self._max_seconds = max_seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        address = ipaddress.ip_address(self._policy.resolve(str(request.url))[0]).compressed
        # Connect to the checked address, never to the name again. ``Host`` (set when the request was
        # built), SNI and the certificate check keep the name; the caller's request (which redirects
        # are resolved against) is left as it was.
        extensions = dict(request.extensions)
        if parse_ip_literal(request.url.host) is None:
            extensions["sni_hostname"] = request.url.host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        response = self._inner.handle_request(pinned)
        if response.has_redirect_location:
            response.close()  # the client follows Location; the body is never needed
            return httpx.Response(
                response.status_code,
                headers=[(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"],
                stream=httpx.ByteStream(b""),
                extensions=response.extensions,
            )
        if self._max_bytes is None and self._max_seconds is None:
            return response
        deadline = started + self._max_seconds if self._max_seconds is not None else None
        stream = _CappedStream(response, str(request.url), self._max_bytes, deadline)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=stream, extensions=response.extensions
        )

    def close(self) -> None:
        self._inner.close()


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response, url: str, max_bytes: int | None, deadline: float | None) -> None:
        self._response = response
        self._url = url
        self._max_bytes = max_bytes
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        for chunk in self._response.stream:  # type: ignore[union-attr]
            total += len(chunk)
            if self._max_bytes is not None and total > self._max_bytes:
                raise MediaTooLarge(f"{self._url} is over the {self._max_bytes}-byte limit")
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise UpstreamUnavailable(f"{self._url} took longer than the fetch time limit")
            yield chunk

    def close(self) -> None:
        self._response.close()


def egress_client(
    policy: EgressPolicy,
    *,
    timeout: float,
    max_redirects: int = 5,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
    headers: Iterable[tuple[str, str]] | None = None,
) -> httpx.Client:
    """An httpx client whose every connection passes the egress policy: at most ``max_redirects``
    hops, each re-checked; ``timeout`` per network operation, ``max_seconds`` and ``max_bytes`` per hop."""
    return httpx.Client(
        transport=EgressTransport(policy, max_bytes=max_bytes, max_seconds=max_seconds),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=max_redirects,
        headers=list(headers or []),
        trust_env=False,
    )
