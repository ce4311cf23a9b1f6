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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from mediavault.errors import EgressBlocked, InvalidUrl
from mediavault.safety.urls import host_and_port, parse_ip_literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_ALLOWED_PORTS = frozenset({80, 443})
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
    """Decides whether a URL may be fetched, and to which address to connect."""

    allow: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)

    def is_exempt(self, host: str, port: int) -> bool:
        return f"{host.lower()}:{port}" in self.allow

    def check_literal(self, url: str) -> None:
        """What can be refused without DNS: scheme, port, and literal forbidden addresses (the API uses it)."""
        host, port = self._scheme_and_port(url)
        if self.is_exempt(host, port):
            return
        literal = parse_ip_literal(host)
        if literal is not None and not is_public(literal):
            raise EgressBlocked(f"{host} is not a public address", url=url)
        if host == "localhost" or host.endswith(".localhost"):
            raise EgressBlocked(f"{host} is not a public address", url=url)

    def resolve(self, url: str) -> list[str]:
        """The addresses ``url`` may be fetched from; raises :class:`EgressBlocked` if none or any is forbidden."""
        host, port = self._scheme_and_port(url)
        literal = parse_ip_literal(host)
        if self.is_exempt(host, port):
            return [literal.compressed] if literal is not None else self._lookup(host, port, url)
        if literal is not None:
            addresses = [literal.compressed]
        else:
            if host == "localhost" or host.endswith(".localhost"):
                raise EgressBlocked(f"{host} is not a public address", url=url)
            addresses = self._lookup(host, port, url)
        for address in addresses:
            if not is_public(ipaddress.ip_address(address)):
                raise EgressBlocked(f"{host} resolves to {address}, which is not a public address", url=url)
        return addresses

    def _lookup(self, host: str, port: int, url: str) -> list[str]:
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise EgressBlocked(f"{host} could not be resolved ({exc})", url=url) from None
        if not addresses:
            raise EgressBlocked(f"{host} has no address", url=url)
        return addresses

    def _scheme_and_port(self, url: str) -> tuple[str, int]:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise EgressBlocked(f"scheme {scheme or '(none)'!r} may not be fetched", url=url)
        try:
            host, port = host_and_port(url)
        except ValueError as exc:
            raise InvalidUrl(f"url is malformed: {exc}") from None
        if not host:
            raise InvalidUrl("url has no host")
        if port not in _ALLOWED_PORTS and not self.is_exempt(host, port):
            raise EgressBlocked(f"port {port} may not be fetched", url=url)
        return host, port


class EgressTransport(httpx.BaseTransport):
    """An httpx transport that checks every request (and so every redirect hop) against the policy
    and connects to the address it checked, keeping the host name for ``Host``, SNI and TLS checks."""

    def __init__(self, policy: EgressPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpx.HTTPTransport(retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        address = self._policy.resolve(str(request.url))[0]
        if parse_ip_literal(request.url.host) is not None:
            return self._inner.handle_request(request)
        # Connect to the checked address. ``Host`` (set when the request was built), SNI and the
        # certificate check keep the name; the caller's request (which redirects are resolved
        # against) is left as it was.
        extensions = {**request.extensions, "sni_hostname": request.url.host}
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=ipaddress.ip_address(address).compressed),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self._inner.handle_request(pinned)

    def close(self) -> None:
        self._inner.close()


def egress_client(
    policy: EgressPolicy,
    *,
    timeout: float,
    max_redirects: int = 5,
    headers: Iterable[tuple[str, str]] | None = None,
) -> httpx.Client:
    """An httpx client whose every connection passes the egress policy."""
    return httpx.Client(
        transport=EgressTransport(policy),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=max_redirects,
        headers=list(headers or []),
    )
