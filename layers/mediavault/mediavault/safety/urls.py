"""Turn user-supplied text into a canonical http(s) URL, or refuse it with ``INVALID_URL``."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mediavault.errors import InvalidUrl

MAX_URL_LENGTH = 2048
_TRACKING_PARAMS = frozenset({"fbclid", "gclid", "igshid", "ref_src", "ref_url", "mc_cid", "mc_eid", "si"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(raw: str) -> str:
    """Canonical form: lower-case scheme and host (IDNA), no default port, no fragment, no trackers.

    Raises :class:`InvalidUrl` for anything that is not an absolute http(s) URL without credentials.
    """
    if not isinstance(raw, str):
        raise InvalidUrl("url must be a string")
    text = raw.strip()
    if not text:
        raise InvalidUrl("url is empty")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidUrl(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(ch in text for ch in "\r\n\t\x00") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidUrl("url contains control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(f"url is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrl("url must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidUrl("url must not contain credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidUrl("url has no host")
    host = _canonical_host(host)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)])
    canonical = urlunsplit((scheme, netloc, parts.path or "/", query, ""))
    if len(canonical) > MAX_URL_LENGTH:  # percent-encoding can make it longer than what was sent
        raise InvalidUrl(f"url is longer than {MAX_URL_LENGTH} characters once encoded")
    return canonical


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").rstrip(".").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any spelling the OS resolver accepts, else ``None``.

    ``127.1``, ``0x7f000001``, ``2130706433`` and ``0177.0.0.1`` all name 127.0.0.1.
    """
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if all(c in "0123456789abcdefxABCDEFX." for c in candidate) and any(c.isdigit() for c in candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


def _canonical_host(host: str) -> str:
    literal = parse_ip_literal(host)
    if literal is not None:
        return literal.compressed
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidUrl("url host is not a valid domain name") from None


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered.startswith("utm_") or lowered in _TRACKING_PARAMS
