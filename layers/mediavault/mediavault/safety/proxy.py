"""The egress proxy: the worker's Chromium reaches the network only through the egress policy.

Chromium is launched with ``--proxy-server`` pointing here (and ``<-loopback>``, so loopback is not
bypassed). Every connection it makes arrives as one of:

- a plain HTTP forward request (``GET http://host:port/path HTTP/1.1``, absolute form), including
  an HTTP ``Upgrade`` (``ws://``) handshake;
- a ``CONNECT host:port`` tunnel (``https://``, ``wss://``, and Chromium's ``ws://`` too).

For each, the target is resolved **once** with the same :class:`~mediavault.safety.egress.EgressPolicy`
as every other fetch (exemptions included); a forbidden target is answered ``403`` and recorded (so the
extractor can fail the job ``EGRESS_BLOCKED`` naming the hop), an allowed one is connected to **the
address that was checked** — the proxy never resolves a name a second time, so a DNS answer that
changes between the check and the connect (rebinding) cannot swap it. Redirects need nothing special:
each hop is a new request from the browser, checked like the first.

Bodies stream through (64 KiB at a time, never a whole response); each connection has a connect
timeout, an idle timeout, a total-time cap and a byte cap. Requests are not kept alive: each client
connection carries one request (``Connection: close`` both ways), so every request is checked on its own.

A small stdlib implementation (threads + ``selectors``) on purpose: ``proxy.py`` runs its acceptors as
``multiprocessing`` processes with ``multiprocessing.Lock`` (no ``/dev/shm`` on Lambda, a forked
interpreter per acceptor against a 128 MiB budget, and blocked hops would have to cross processes);
mitmproxy is an intercepting proxy with a large dependency tree, and nothing here needs interception.
See ``docs/security.md``.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from mediavault.errors import MediaVaultError
from mediavault.observability import logger
from mediavault.safety.egress import EgressPolicy

MAX_HEAD_BYTES = 64 * 1024
MAX_TARGET_LENGTH = 8 * 1024
_CHUNK = 64 * 1024
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Headers that belong to the client <-> proxy hop and are never forwarded.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "upgrade"})


class ProxyRequestError(Exception):
    """The client's request cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a proxied request goes: ``url`` is what the policy checks and what a refusal names."""

    tunnel: bool  # CONNECT
    url: str
    host: str
    port: int
    authority: str  # host:port as the client named it (Host header for forward requests)
    path: str  # origin form for forward requests ("" for tunnels)


@dataclass(frozen=True, slots=True)
class BlockedHop:
    """A connection the proxy refused: ``url`` for forward requests, ``host:port`` for tunnels."""

    method: str
    url: str
    authority: str
    reason: str

    def matches(self, url: str) -> bool:
        """Whether this refusal is the one a request for ``url`` (as the browser names it) ran into."""
        if self.method != "CONNECT":
            return self.url == url.split("#", 1)[0]
        try:
            return authority_of(url) == self.authority
        except ValueError:
            return False


def authority_of(url: str) -> str:
    """``host:port`` of a URL with the scheme's default port filled in (ws -> 80, wss -> 443)."""
    parts = urlsplit(url)
    default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(parts.scheme.lower())
    port = parts.port or default
    host = (parts.hostname or "").lower()
    if not host or port is None:
        raise ValueError(f"{url!r} has no host or port")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- pure parts: parse the client's head, decide the target, rewrite heads ------------------------


def parse_request_head(raw: bytes) -> RequestHead:
    """Parse a request head (without the final blank line). Strict: CRLF lines, no NUL, no folding."""
    text = raw.decode("latin-1")
    if "\x00" in text:
        raise ProxyRequestError(400, "NUL in the request head")
    lines = text.split("\r\n")
    if any("\n" in line or "\r" in line for line in lines):
        raise ProxyRequestError(400, "bare CR or LF in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ProxyRequestError(400, "malformed request line")
    method, target, version = parts
    if not method or not set(method) <= _TOKEN_CHARS or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ProxyRequestError(400, "malformed request line")
    if not target or len(target) > MAX_TARGET_LENGTH:
        raise ProxyRequestError(414 if target else 400, "request target is empty or too long")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target):
        raise ProxyRequestError(400, "control characters in the request target")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise ProxyRequestError(400, "folded header lines are not accepted")
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN_CHARS:
            raise ProxyRequestError(400, "malformed header line")
        headers.append((name, value.strip(" \t")))
    return RequestHead(method.upper(), target, version, tuple(headers))


def target_of(head: RequestHead) -> Target:
    """The target of a proxy request: ``CONNECT host:port`` or an absolute ``http://`` URL."""
    if head.method == "CONNECT":
        parts = urlsplit("//" + head.target)
        try:
            port = parts.port
        except ValueError:
            raise ProxyRequestError(400, "CONNECT target has a bad port") from None
        if not parts.hostname or port is None or parts.path or parts.query or "@" in head.target:
            raise ProxyRequestError(400, "CONNECT target must be host:port")
        scheme = "https" if port == 443 else "http"
        return Target(True, f"{scheme}://{head.target}/", parts.hostname, port, head.target, "")
    parts = urlsplit(head.target)
    if parts.scheme.lower() != "http" or not parts.netloc:
        raise ProxyRequestError(400, "only absolute http:// URLs are forwarded (https goes through CONNECT)")
    if "@" in parts.netloc:
        raise ProxyRequestError(403, "URLs with credentials are not fetched")
    try:
        port = parts.port or 80
    except ValueError:
        raise ProxyRequestError(400, "bad port") from None
    if not parts.hostname:
        raise ProxyRequestError(400, "URL has no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    url = head.target.split("#", 1)[0]
    return Target(False, url, parts.hostname, port, parts.netloc, path)


def _connection_tokens(head_values: Iterable[str]) -> set[str]:
    return {token.strip().lower() for value in head_values for token in value.split(",") if token.strip()}


def upstream_request_head(head: RequestHead, target: Target) -> bytes:
    """The head sent upstream: origin form, ``Host`` from the URL, proxy headers dropped,
    ``Connection: close`` (or ``Upgrade`` for a WebSocket handshake)."""
    tokens = _connection_tokens(head.values("connection"))
    upgrade = "upgrade" in tokens and bool(head.values("upgrade"))
    dropped = _HOP_BY_HOP | tokens | {"host"}
    lines = [f"{head.method} {target.path} {head.version}", f"Host: {target.authority}"]
    lines += [f"{name}: {value}" for name, value in head.headers if name.lower() not in dropped]
    if upgrade:
        lines += [f"Upgrade: {head.values('upgrade')[0]}", "Connection: Upgrade"]
    else:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def rewrite_response_head(raw: bytes) -> tuple[bytes, int | None]:
    """A response head (given without its blank line, returned with it) saying ``Connection: close``
    (the client connection ends with the response); interim ``1xx`` and ``101 Switching Protocols``
    heads are left as they are. Also returns the status, or ``None`` if the head is not HTTP."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    status_parts = lines[0].split(" ", 2)
    if len(status_parts) < 2 or not status_parts[0].startswith("HTTP/") or not status_parts[1].isdigit():
        return raw + b"\r\n\r\n", None
    status = int(status_parts[1])
    if 100 <= status < 200:
        return raw + b"\r\n\r\n", status
    tokens = _connection_tokens(
        line.partition(":")[2] for line in lines[1:] if line.partition(":")[0].strip().lower() == "connection"
    )
    dropped = (_HOP_BY_HOP | tokens) - {"upgrade"}
    kept = [line for line in lines[1:] if line and line.partition(":")[0].strip().lower() not in dropped]
    out = [lines[0], *kept, "Connection: close", "Proxy-Connection: close"]
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1"), status


def refusal(status: int, reason: str) -> bytes:
    """A complete response refusing the request, closing the connection."""
    phrases = {400: "Bad Request", 403: "Forbidden", 414: "URI Too Long", 431: "Request Header Fields Too Large",
               502: "Bad Gateway", 504: "Gateway Timeout"}  # fmt: skip
    body = f"Media Vault egress proxy: {reason}\n".encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {phrases.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-MediaVault-Egress: refused\r\n"
        "Connection: close\r\nProxy-Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _ResponseHeads:
    """Rewrites the response heads as they stream by (1xx interim heads pass, the final one gets
    ``Connection: close``), then passes every byte through untouched."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return data
        self._buffer += data
        out = bytearray()
        while not self.done:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:  # not HTTP as we know it: pass it through
                    out += self._buffer
                    self._buffer.clear()
                    self.done = True
                break
            head, rest = bytes(self._buffer[:end]), bytes(self._buffer[end + 4 :])
            rewritten, status = rewrite_response_head(head)
            out += rewritten
            self._buffer = bytearray(rest)
            if status is None or not 100 <= status < 200 or status == 101:
                out += self._buffer
                self._buffer.clear()
                self.done = True
        return bytes(out)


# --- the server ---------------------------------------------------------------------------------


class EgressProxy:
    """An HTTP/CONNECT proxy on ``127.0.0.1:<free port>``, served from daemon threads of this process.

    ``blocked`` keeps the most recent refusals (bounded); :meth:`take_blocked` hands them over and
    forgets them (the extractor takes them before and after each job).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        connect_timeout: float = 10.0,
        idle_timeout: float = 30.0,
        max_seconds: float = 300.0,
        max_bytes: int = 512 * 1024**2,
        head_timeout: float = 10.0,
        keep_blocked: int = 256,
    ) -> None:
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self.head_timeout = head_timeout
        self._blocked: collections.deque[BlockedHop] = collections.deque(maxlen=keep_blocked)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self.connections = 0  # upstream connections made (allowed requests and tunnels)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> EgressProxy:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="egress-proxy", daemon=True
        )
        self._thread.start()
        logger.debug("egress proxy started", extra={"proxy": self.url})
        return self

    def stop(self) -> None:
        """Stop accepting, and end every connection still open (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> EgressProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the egress proxy is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what was refused --------------------------------------------------------------------------

    @property
    def blocked(self) -> list[BlockedHop]:
        with self._lock:
            return list(self._blocked)

    def take_blocked(self) -> list[BlockedHop]:
        with self._lock:
            taken = list(self._blocked)
            self._blocked.clear()
        return taken

    def _record(self, hop: BlockedHop) -> None:
        with self._lock:
            self._blocked.append(hop)
        logger.info("egress proxy refused a connection", extra={"hop": hop.url, "reason": hop.reason})

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    # -- one client connection ---------------------------------------------------------------------

    def handle(self, client: socket.socket) -> None:
        self._track(client, add=True)
        try:
            self._handle(client)
        except OSError:
            pass  # the browser went away, or a peer timed out: nothing to report
        finally:
            self._track(client, add=False)
            with contextlib.suppress(OSError):
                client.close()

    def _handle(self, client: socket.socket) -> None:
        started = time.monotonic()
        try:
            raw, rest = _read_head(client, timeout=self.head_timeout)
            head = parse_request_head(raw)
            target = target_of(head)
        except ProxyRequestError as exc:
            client.sendall(refusal(exc.status, exc.reason))
            return
        try:
            addresses = self.policy.resolve(target.url)
        except MediaVaultError as exc:
            self._record(BlockedHop(head.method, target.url if not target.tunnel else target.authority,
                                    authority_of(target.url), exc.message))  # fmt: skip
            client.sendall(refusal(403, exc.message))
            return
        upstream = self._connect(addresses, target.port)
        if upstream is None:
            client.sendall(refusal(502, f"could not connect to {target.authority}"))
            return
        self._track(upstream, add=True)
        try:
            with self._lock:
                self.connections += 1
            if target.tunnel:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                self._relay(client, upstream, started, rewrite=None)
            else:
                upstream.sendall(upstream_request_head(head, target) + rest)
                self._relay(client, upstream, started, rewrite=_ResponseHeads())
        finally:
            self._track(upstream, add=False)
            with contextlib.suppress(OSError):
                upstream.close()

    def _connect(self, addresses: list[str], port: int) -> socket.socket | None:
        """Connect to the first checked address that answers (never to a name: no second lookup)."""
        for address in addresses:
            ip = ipaddress.ip_address(address)
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect((ip.compressed, port))
            except OSError:
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        return None

    def _relay(
        self, client: socket.socket, upstream: socket.socket, started: float, *, rewrite: _ResponseHeads | None
    ) -> None:
        """Copy bytes both ways until the upstream side ends, a cap is reached or the link goes idle."""
        deadline = started + self.max_seconds
        for sock in (client, upstream):
            sock.settimeout(self.idle_timeout)  # a peer that stops reading ends the connection too
        peer = {client: upstream, upstream: client}
        moved = 0
        last = time.monotonic()
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if now >= deadline or now - last >= self.idle_timeout:
                    return
                events = selector.select(timeout=min(1.0, deadline - now))
                for key, _ in events:
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(_CHUNK)
                    if not data:
                        if source is upstream:
                            return  # the response (or the tunnel) is over
                        selector.unregister(client)  # the client finished sending; keep reading upstream
                        with contextlib.suppress(OSError):
                            upstream.shutdown(socket.SHUT_WR)
                        continue
                    if source is upstream and rewrite is not None:
                        data = rewrite.feed(data)
                    peer[source].sendall(data)
                    moved += len(data)
                    last = time.monotonic()
                    if moved > self.max_bytes:
                        logger.warning("egress proxy byte cap reached", extra={"bytes": moved})
                        return


def _read_head(sock: socket.socket, *, timeout: float) -> tuple[bytes, bytes]:
    """Read a request head (up to the blank line); returns it and whatever followed it."""
    sock.settimeout(timeout)
    buffer = bytearray()
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            return bytes(buffer[:end]), bytes(buffer[end + 4 :])
        if len(buffer) > MAX_HEAD_BYTES:
            raise ProxyRequestError(431, "request head too large")
        try:
            data = sock.recv(_CHUNK)
        except TimeoutError:
            raise ProxyRequestError(400, "request head not received in time") from None
        if not data:
            raise OSError("client closed before sending a request")
        buffer += data


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], proxy: EgressProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.proxy.handle(self.request)
