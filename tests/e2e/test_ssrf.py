"""SSRF payloads against the egress policy wherever a fetch happens: the API (before queueing), the
worker (page, media, redirects), the browser through its egress proxy (redirect hops, refresh, fetch(),
<img>/<video>, iframes, WebSockets, service workers, WebRTC, ``context.request``) and the download client.

A canary listens on loopback addresses and ports the policy forbids and records every TCP connection it
accepts (a raw accept: a CONNECT tunnel, a WebSocket handshake or a TLS hello counts as much as a GET).
Every payload ends with the canaries having accepted nothing. The "public internet" is a small server on
127.0.0.1 whose host:port is the only exemption; a fake DNS (injected into the policy, and into
``socket.getaddrinfo`` for ``*.test`` names so that a second, unpinned lookup would be caught) plays names
that resolve to forbidden addresses and a rebinding name. Only loopback is ever connected to: payloads on
other private ranges are asserted at the API and policy level, where nothing connects.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from playwright.sync_api import sync_playwright

from mediavault import deps
from mediavault.errors import EgressBlocked, InvalidUrl, UpstreamUnavailable
from mediavault.safety.egress import EgressPolicy, egress_client
from mediavault.safety.proxy import EgressProxy
from mediavault.safety.urls import normalize_url
from mediavault.worker.browser import CHROMIUM_ARGS, close_thread_session, thread_session
from mediavault.worker.extract import BrowserExtractor
from tests.conftest import CHROMIUM, clear_worker_state

pytestmark = pytest.mark.e2e


# --- the canaries -----------------------------------------------------------------------------------


class Canary:
    """A TCP listener that records every connection it accepts (and the first bytes it was sent)."""

    def __init__(self, host: str, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.accepted: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, name=f"canary-{host}", daemon=True).start()

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.accepted)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(0.3)
            first = b""
            with contextlib.suppress(OSError):
                first = conn.recv(1024)
            with self._lock:
                self.accepted.append(first or b"(connected)")
            with contextlib.suppress(OSError):  # answer like a real service would, so a leak is loud
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nSECRET")
            conn.close()

    def close(self) -> None:
        self.sock.close()


class UdpCanary:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        threading.Thread(target=self._serve, name="udp-canary", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(4096)
            except OSError:
                return
            self.datagrams.append(data)

    def close(self) -> None:
        self.sock.close()


@dataclass
class Canaries:
    v4: Canary  # 127.0.0.1:<free port> (the port is not exempt)
    v6: Canary  # [::1]:<free port>
    beside: Canary  # 127.0.0.2:<the public server's port>: where private.test and rebind.test lead
    udp: UdpCanary

    def tcp_total(self) -> int:
        return self.v4.connections + self.v6.connections + self.beside.connections

    def report(self) -> dict[str, list[bytes]]:
        return {c.authority: c.accepted for c in (self.v4, self.v6, self.beside)}


# --- the "public internet" ----------------------------------------------------------------------------


class Public:
    """A server on 127.0.0.1 that plays the public internet (its host:port is the one exemption)."""

    def __init__(self, media: Path) -> None:
        self.media = media
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.routes: dict[str, tuple[str, str]] = {}
        public = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                public.requests.append((self.path, self.headers.get("Host", "")))
                public.serve(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.authority = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, name="public", daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.authority}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path.startswith("/chain/"):  # /chain/N redirects N times before the media
            left = int(path.rsplit("/", 1)[1])
            kind, value = ("redirect", f"/chain/{left - 1}") if left > 0 else ("file", "clip-360p.mp4")
        else:
            kind, value = self.routes.get(path, ("status", "404"))
        if kind == "redirect":
            self._send(handler, 302, b"", "text/plain", {"Location": value})
        elif kind == "html":
            self._send(handler, 200, value.encode(), "text/html; charset=utf-8")
        elif kind == "js":
            self._send(handler, 200, value.encode(), "text/javascript")
        elif kind == "file":
            self._send(handler, 200, (self.media / value).read_bytes(), "video/mp4")
        elif kind == "drip":  # a valid start, then one byte every 200 ms, forever
            handler.send_response(200)
            handler.send_header("Content-Type", "video/mp4")
            handler.send_header("Content-Length", str(10**9))
            handler.end_headers()
            with contextlib.suppress(OSError):
                handler.wfile.write((self.media / "clip-360p.mp4").read_bytes()[:4096])
                for _ in range(600):
                    handler.wfile.write(b"\0")
                    handler.wfile.flush()
                    time.sleep(0.2)
        else:
            self._send(handler, int(value), b"not found", "text/plain")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        with contextlib.suppress(OSError):
            handler.wfile.write(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def html(body: str, title: str = "page") -> tuple[str, str]:
    return "html", f"<!doctype html><html><head><title>{title}</title>{body}</head><body>post</body></html>"


def og_video(url: str) -> tuple[str, str]:
    return html(f'<meta property="og:video" content="{url}"><meta property="og:video:type" content="video/mp4">')


def install_routes(public: Public, canaries: Canaries) -> None:
    c = f"http://127.0.0.1:{canaries.v4.port}"
    c6 = f"http://[::1]:{canaries.v6.port}"
    ws = f"ws://127.0.0.1:{canaries.v4.port}"
    public.routes.update(
        {
            "/posts/plain": html("", title="plain"),
            "/redirect": ("redirect", f"{c}/from-redirect"),
            "/redirect-hex": ("redirect", f"http://0x7f000001:{canaries.v4.port}/from-redirect-hex"),
            "/redirect-v6": ("redirect", f"{c6}/from-redirect-v6"),
            "/redirect-name": ("redirect", f"http://private.test:{public.port}/from-redirect-name"),
            "/refresh": html(f'<meta http-equiv="refresh" content="0;url={c}/from-refresh">'),
            "/script-nav": html(
                f"<script>addEventListener('load', () => setTimeout(() => location.href = '{c}/from-script', 10))"
                "</script>"
            ),
            "/fetch": html(
                f"<script>fetch('{c}/from-fetch').catch(() => document.title = 'fetch refused');"
                f"const x = new XMLHttpRequest(); x.open('GET', '{c6}/from-xhr'); x.send();"
                f"navigator.sendBeacon('{c}/from-beacon', 'x');</script>"
            ),
            "/img": html(
                f'<img src="{c}/from-img.jpg"><video src="{c}/from-video.mp4" autoplay muted></video>'
                f'<link rel="preload" href="{c}/from-preload.js" as="script">'
                f'<style>body {{ background: url("{c}/from-css.png") }}</style>'
            ),
            "/iframe": html(f'<iframe src="{c}/from-iframe"></iframe>'),
            "/ws": html(
                f"<script>for (const u of ['{ws}/from-ws', 'wss://127.0.0.1:{canaries.v4.port}/from-wss',"
                f" 'ws://[::1]:{canaries.v6.port}/from-ws6']) {{ const s = new WebSocket(u);"
                " s.onerror = () => document.title += ' ws refused'; }</script>"
            ),
            "/sw": html(
                "<script>const tries = [() => navigator.serviceWorker.register('/sw.js'),"
                " () => ServiceWorkerContainer.prototype.register.call(navigator.serviceWorker, '/sw.js?proto'),"
                " () => document.body.appendChild(document.createElement('iframe')).contentWindow"
                ".navigator.serviceWorker.register('/sw.js?iframe')];"
                "Promise.allSettled(tries.map(t => { try { return t(); } catch (e) { return Promise.reject(e); } }))"
                ".then(r => document.title = 'sw ' + r.map(x => x.status + ':' + (x.value ? 'registration' : ''))"
                ".join(','))"
                "</script>"
            ),
            "/sw.js": ("js", f"self.addEventListener('install', () => fetch('{c}/from-service-worker'));"),
            "/webrtc": html(
                "<script>const pc = new RTCPeerConnection({iceServers: ["
                f"{{urls: 'stun:127.0.0.1:{canaries.udp.port}'}},"
                f"{{urls: 'turn:127.0.0.1:{canaries.udp.port}?transport=udp', username: 'u', credential: 'p'}}]}});"
                "pc.createDataChannel('x'); pc.createOffer().then(o => pc.setLocalDescription(o));</script>"
            ),
            "/og-canary": og_video(f"{c}/from-og.mp4"),
            "/og-redirect": og_video(public.url("/media-redirect")),
            "/media-redirect": ("redirect", f"{c}/from-media-redirect.mp4"),
            "/media/clip.mp4": ("file", "clip-360p.mp4"),
            "/drip": ("drip", ""),
        }
    )


# --- the fake DNS ---------------------------------------------------------------------------------------


@dataclass
class FakeDNS:
    """Answers for ``*.test`` names; a name with several answer lists gives them in turn (the last repeats)."""

    table: dict[str, list[list[str]]]
    calls: list[str] = field(default_factory=list)
    _served: dict[str, int] = field(default_factory=dict)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.table.get(host.lower().rstrip("."))
        if answers is None:
            raise OSError(-2, "Name or service not known")
        index = self._served.get(host, 0)
        self._served[host] = index + 1
        return list(answers[min(index, len(answers) - 1)])

    def reset(self) -> None:
        self.calls.clear()
        self._served.clear()


@dataclass
class World:
    canaries: Canaries
    public: Public
    dns: FakeDNS
    policy: EgressPolicy

    def assert_canaries_untouched(self) -> None:
        assert self.canaries.tcp_total() == 0, f"a canary accepted connections: {self.canaries.report()}"
        assert self.canaries.udp.datagrams == [], "the UDP canary received datagrams"


@pytest.fixture(scope="module")
def world(sample_media_dir: Path) -> Iterator[World]:
    public = Public(sample_media_dir)
    canaries = Canaries(Canary("127.0.0.1"), Canary("::1"), Canary("127.0.0.2", public.port), UdpCanary())
    install_routes(public, canaries)
    dns = FakeDNS(
        {
            "private.test": [["127.0.0.2"]],  # a name that resolves to a forbidden address (the canary beside)
            "rebind.test": [["127.0.0.1"], ["127.0.0.2"]],  # the exempt address first, then a forbidden one
        }
    )
    policy = EgressPolicy(allow=frozenset({public.authority}), resolver=dns)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        # A second, unpinned lookup of a .test name (by httpx, say) would get the fake DNS's next answer.
        if isinstance(host, str) and host.endswith(".test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0))) for a in dns(host, 0)]
        return real_getaddrinfo(host, port, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield World(canaries, public, dns, policy)
    close_thread_session()
    public.close()
    for canary in (canaries.v4, canaries.v6, canaries.beside, canaries.udp):
        canary.close()


@pytest.fixture(scope="module")
def sample_media_dir(sample_media: Path) -> Path:
    return sample_media


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    world.dns.reset()
    world.public.requests.clear()
    yield world
    world.assert_canaries_untouched()


def extractor(world: World, *, prefilter: bool = False) -> BrowserExtractor:
    """The browser behind its egress proxy; ``prefilter=False``: page.route off, the proxy alone decides."""
    session = thread_session(str(CHROMIUM), world.policy)
    return BrowserExtractor(session, world.policy, timeout=15, settle=1.5, prefilter=prefilter)


# --- 1. the API refuses what it can before queueing ----------------------------------------------------------

API_PAYLOADS: list[tuple[str, str, str]] = [
    # (url, expected code, what it is)
    ("http://127.0.0.1:{c}/", "EGRESS_BLOCKED", "127/8"),
    ("http://127.255.255.254/", "EGRESS_BLOCKED", "127/8, top"),
    ("http://2130706433:{c}/", "EGRESS_BLOCKED", "127.0.0.1, decimal"),
    ("http://0x7f000001:{c}/", "EGRESS_BLOCKED", "127.0.0.1, hex"),
    ("http://0177.0.0.1:{c}/", "EGRESS_BLOCKED", "127.0.0.1, octal"),
    ("http://127.1:{c}/", "EGRESS_BLOCKED", "127.0.0.1, short"),
    ("http://0x7f.1:{c}/", "EGRESS_BLOCKED", "127.0.0.1, hex short"),
    ("http://[::1]:{c}/", "EGRESS_BLOCKED", "::1"),
    ("http://[::ffff:127.0.0.1]:{c}/", "EGRESS_BLOCKED", "127.0.0.1, IPv4-mapped"),
    ("http://[::ffff:7f00:1]:{c}/", "EGRESS_BLOCKED", "127.0.0.1, IPv4-mapped hex"),
    ("http://[2002:7f00:1::]:{c}/", "EGRESS_BLOCKED", "127.0.0.1, 6to4"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{c}/", "EGRESS_BLOCKED", "127.0.0.1, Teredo"),
    ("http://[64:ff9b::7f00:1]:{c}/", "EGRESS_BLOCKED", "127.0.0.1, NAT64"),
    ("http://localhost:{c}/", "EGRESS_BLOCKED", "localhost"),
    ("http://localhost.:{c}/", "EGRESS_BLOCKED", "localhost. (trailing dot)"),
    ("http://LOCALHOST/", "EGRESS_BLOCKED", "localhost, upper case"),
    ("http://api.localhost/", "EGRESS_BLOCKED", "*.localhost"),
    ("http://169.254.169.254/latest/meta-data/", "EGRESS_BLOCKED", "169.254/16 metadata"),
    ("http://2852039166/latest/meta-data/", "EGRESS_BLOCKED", "169.254.169.254, decimal"),
    ("http://0xa9fea9fe/", "EGRESS_BLOCKED", "169.254.169.254, hex"),
    ("http://0251.0376.0251.0376/", "EGRESS_BLOCKED", "169.254.169.254, octal"),
    ("http://[::ffff:169.254.169.254]/", "EGRESS_BLOCKED", "169.254.169.254, IPv4-mapped"),
    ("http://[64:ff9b::a9fe:a9fe]/", "EGRESS_BLOCKED", "169.254.169.254, NAT64"),
    ("http://[2002:a9fe:a9fe::]/", "EGRESS_BLOCKED", "169.254.169.254, 6to4"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "EGRESS_BLOCKED", "fc00::/7, EC2 metadata over IPv6"),
    ("http://[fc00::1]/", "EGRESS_BLOCKED", "fc00::/7"),
    ("http://[fe80::1]/", "EGRESS_BLOCKED", "fe80::/10"),
    ("http://0.0.0.0/", "EGRESS_BLOCKED", "0/8"),
    ("http://0/", "EGRESS_BLOCKED", "0.0.0.0, short"),
    ("http://[::]/", "EGRESS_BLOCKED", "::"),
    ("http://10.0.0.1/", "EGRESS_BLOCKED", "10/8"),
    ("http://012.0.0.1/", "EGRESS_BLOCKED", "10.0.0.1, octal"),
    ("http://167772161/", "EGRESS_BLOCKED", "10.0.0.1, decimal"),
    ("http://100.64.0.1/", "EGRESS_BLOCKED", "100.64/10"),
    ("http://172.16.0.1/", "EGRESS_BLOCKED", "172.16/12"),
    ("http://172.31.255.255/", "EGRESS_BLOCKED", "172.16/12, top"),
    ("http://192.168.0.1/", "EGRESS_BLOCKED", "192.168/16"),
    ("http://3232235521/", "EGRESS_BLOCKED", "192.168.0.1, decimal"),
    ("http://[::ffff:c0a8:1]/", "EGRESS_BLOCKED", "192.168.0.1, IPv4-mapped"),
    ("http://198.18.0.1/", "EGRESS_BLOCKED", "198.18/15"),
    ("http://224.0.0.1/", "EGRESS_BLOCKED", "224/4"),
    ("http://240.0.0.1/", "EGRESS_BLOCKED", "240/4"),
    ("http://255.255.255.255/", "EGRESS_BLOCKED", "broadcast"),
    ("http://example.com:8080/", "EGRESS_BLOCKED", "port other than 80/443"),
    ("http://user:pass@example.com/", "INVALID_URL", "userinfo"),
    ("file:///etc/passwd", "INVALID_URL", "file:"),
    ("gopher://127.0.0.1:{c}/_x", "INVALID_URL", "gopher:"),
    ("http://example.com/a\r\nHost: 127.0.0.1", "INVALID_URL", "CR/LF"),
    ("http://example.com/\x00", "INVALID_URL", "NUL"),
    ("http://example.com/" + "a" * 2100, "INVALID_URL", "over-long URL"),
]


def api_event(load_event: Any, url: str) -> dict[str, Any]:
    event = load_event("api_create_job.json")
    event["body"] = json.dumps({"url": url})
    return event


def test_the_api_refuses_forbidden_targets_before_queueing(
    aws: dict[str, Any], function: Any, load_event: Any, fresh: World
) -> None:
    # Given the API function and every literal payload, aimed at the canary's port where it is loopback
    api = function("ApiFunction")
    port = fresh.canaries.v4.port
    wrong = []
    # When each is submitted
    for template, code, what in API_PAYLOADS:
        url = template.replace("{c}", str(port))
        response = api.invoke(api_event(load_event, url))
        body = json.loads(response["body"])
        got = (response["statusCode"], body.get("error", {}).get("code"))
        if got != (400, code):
            wrong.append((what, url[:80], got))
    # Then each is refused with its stable code, nothing is queued, and no canary saw a thing
    assert wrong == []
    sqs = boto3.client("sqs")
    queued = sqs.receive_message(QueueUrl=aws["env"]["MEDIAVAULT_QUEUE_URL"], MaxNumberOfMessages=10)
    assert queued.get("Messages", []) == []
    assert len(API_PAYLOADS) >= 30


# --- 2. names that resolve to forbidden addresses (policy level: nothing connects) ----------------------------

NAME_PAYLOADS = [
    ("internal.test", ["10.0.0.1"]),
    ("metadata.test", ["169.254.169.254"]),
    ("ula.test", ["fd00:ec2::254"]),
    ("mapped.test", ["::ffff:127.0.0.1"]),
    ("nat64.test", ["64:ff9b::a9fe:a9fe"]),
    ("cgnat.test", ["100.64.0.1"]),
    ("mixed.test", ["93.184.216.34", "192.168.0.1"]),  # one bad answer is enough
]


@pytest.mark.parametrize(("name", "answers"), NAME_PAYLOADS)
def test_a_name_resolving_to_a_forbidden_address_is_refused(name: str, answers: list[str]) -> None:
    policy = EgressPolicy(resolver=lambda host, port: answers)
    with pytest.raises(EgressBlocked, match="not a public address"):
        policy.resolve(f"https://{name}/post")


def test_dns_failure_fails_closed() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise OSError(-3, "Temporary failure in name resolution")

    with pytest.raises(EgressBlocked, match="could not be resolved"):
        EgressPolicy(resolver=broken).resolve("https://post.example/")


# --- 3. the browser: the page itself is sent somewhere forbidden -> EGRESS_BLOCKED naming the hop ---------------


@pytest.mark.parametrize(
    ("page", "hop"),
    [
        ("/redirect", "http://127.0.0.1:{c}/from-redirect"),  # 302: page.route never sees this hop
        ("/redirect-hex", "http://127.0.0.1:{c}/from-redirect-hex"),  # Location: http://0x7f000001:<c>/
        ("/redirect-v6", "http://[::1]:{c6}/from-redirect-v6"),
        ("/redirect-name", "http://private.test:{p}/from-redirect-name"),  # a name -> 127.0.0.2
        ("/refresh", "http://127.0.0.1:{c}/from-refresh"),  # <meta http-equiv=refresh>
        ("/script-nav", "http://127.0.0.1:{c}/from-script"),  # location.href = ...
        ("http://127.0.0.1:{c}/direct", "http://127.0.0.1:{c}/direct"),  # straight at the canary
        ("https://127.0.0.1:{c}/tls", "https://127.0.0.1:{c}/tls"),  # CONNECT refused
        ("http://localhost:{c}/", "http://localhost:{c}/"),
        ("http://private.test:{p}/posts/plain", "http://private.test:{p}/posts/plain"),
    ],
)
def test_the_browser_refuses_a_page_sent_to_a_forbidden_address(fresh: World, page: str, hop: str) -> None:
    ports = {"{c}": fresh.canaries.v4.port, "{c6}": fresh.canaries.v6.port, "{p}": fresh.public.port}
    for key, value in ports.items():
        page, hop = page.replace(key, str(value)), hop.replace(key, str(value))
    url = page if page.startswith("http") else fresh.public.url(page)
    # Given the browser with page.route switched off: its egress proxy alone decides
    # When the post is opened, Then the job's error names the refused hop
    with pytest.raises(EgressBlocked) as refused:
        extractor(fresh).extract(url)
    assert hop in refused.value.message


# --- 4. the browser: subresources are refused, the page still loads -------------------------------------------


@pytest.mark.parametrize(
    ("page", "refused"),
    [
        ("/fetch", ["http://127.0.0.1:{c}/from-fetch", "http://[::1]:{c6}/from-xhr", "http://127.0.0.1:{c}/from-beacon"]),
        ("/img", ["http://127.0.0.1:{c}/from-img.jpg", "http://127.0.0.1:{c}/from-video.mp4",
                  "http://127.0.0.1:{c}/from-css.png"]),
        ("/iframe", ["http://127.0.0.1:{c}/from-iframe"]),
        ("/ws", ["ws://127.0.0.1:{c}/from-ws", "wss://127.0.0.1:{c}/from-wss", "ws://[::1]:{c6}/from-ws6"]),
    ],
)  # fmt: skip
def test_the_browser_refuses_subresources_to_forbidden_addresses(fresh: World, page: str, refused: list[str]) -> None:
    expected = [
        u.replace("{c}", str(fresh.canaries.v4.port)).replace("{c6}", str(fresh.canaries.v6.port)) for u in refused
    ]
    # When a public page asks for forbidden addresses (page.route off: the proxy alone decides)
    result = extractor(fresh).extract(fresh.public.url(page))
    # Then the page itself was read, and each refused request is reported
    assert page in fresh.public.paths()
    assert set(expected) <= set(result.blocked), result.blocked


def test_service_workers_are_blocked(fresh: World) -> None:
    # Given a page that registers a service worker whose install handler fetches the canary
    result = extractor(fresh).extract(fresh.public.url("/sw"))
    # Then no registration happens (not even through the prototype or a fresh iframe's container),
    # and the worker's script is never even fetched
    time.sleep(0.5)
    assert "registration" not in (result.info.title or ""), result.info.title
    assert not [path for path in fresh.public.paths() if path.startswith("/sw.js")], fresh.public.paths()


def test_webrtc_sends_no_udp_past_the_proxy(fresh: World) -> None:
    # Given a page whose peer connection names STUN and TURN servers on a loopback UDP canary
    extractor(fresh).extract(fresh.public.url("/webrtc"))
    time.sleep(1.0)  # ICE gathering runs on after the page settled
    # Then (checked by the fixture) the UDP canary received nothing
    assert fresh.canaries.udp.datagrams == []


def test_context_request_goes_through_the_proxy_too(fresh: World) -> None:
    # Given Playwright's own HTTP client (it does not use the browser's network stack)
    session = thread_session(str(CHROMIUM), fresh.policy)
    with session.context() as context:
        # When a script of ours asks it for the canary, Then the egress proxy answers 403
        response = context.request.get(f"http://127.0.0.1:{fresh.canaries.v4.port}/from-context-request")
        assert response.status == 403
        assert response.headers.get("x-mediavault-egress") == "refused"


def test_the_prefilter_refuses_early_and_names_the_page(fresh: World) -> None:
    # The production configuration: page.route + a literal check before the page is opened
    url = f"http://0x7f000001:{fresh.canaries.v4.port}/"
    with pytest.raises(EgressBlocked):
        extractor(fresh, prefilter=True).extract(url)
    with pytest.raises(EgressBlocked, match="from-refresh"):
        extractor(fresh, prefilter=True).extract(fresh.public.url("/refresh"))
    with pytest.raises(EgressBlocked, match="file: URLs are not opened"):
        extractor(fresh, prefilter=True).extract("file:///etc/passwd")


# --- 5. DNS rebinding: the checked address is the one connected to ---------------------------------------------


def test_the_browser_connects_to_the_address_it_checked(fresh: World) -> None:
    # Given rebind.test: its first answer is the public server's address, every later one 127.0.0.2,
    # where the canary listens on the same port
    url = f"http://rebind.test:{fresh.public.port}/posts/plain"
    # When the browser opens it
    result = extractor(fresh).extract(url)
    # Then the page came from the public server (the first, checked answer), asked for under its name
    assert result.info.title == "plain"
    assert ("/posts/plain", f"rebind.test:{fresh.public.port}") in fresh.public.requests
    # And the fixture checks the canary at 127.0.0.2 saw nothing: no second lookup was connected to
    assert fresh.dns.calls.count("rebind.test") >= 1


def test_the_download_client_connects_to_the_address_it_checked(fresh: World) -> None:
    # Given the same rebinding name, and httpx's own resolver also answering from the fake DNS
    with egress_client(fresh.policy, timeout=5) as client:
        # When media is fetched through the egress client
        response = client.get(f"http://rebind.test:{fresh.public.port}/media/clip.mp4")
        # Then it came from the first, checked address (a second lookup would have found the canary)
        assert response.status_code == 200
        assert len(response.content) > 10_000
        # And the next fetch, which resolves again, gets the forbidden answer and is refused
        with pytest.raises(EgressBlocked, match=r"127\.0\.0\.2"):
            client.get(f"http://rebind.test:{fresh.public.port}/media/clip.mp4")


# --- 6. the download client: redirects, hop cap, time cap ----------------------------------------------------


def test_the_download_client_refuses_a_redirect_to_a_forbidden_address(fresh: World) -> None:
    with egress_client(fresh.policy, timeout=5) as client:
        with pytest.raises(EgressBlocked) as refused:
            client.get(fresh.public.url("/media-redirect"))
        assert f"127.0.0.1:{fresh.canaries.v4.port}" in str(refused.value.details.get("url"))
        with pytest.raises(EgressBlocked):
            client.get(f"http://127.0.0.1:{fresh.canaries.v4.port}/from-og.mp4")


def test_the_download_client_follows_five_redirects_and_no_more(fresh: World) -> None:
    with egress_client(fresh.policy, timeout=5) as client:
        assert client.get(fresh.public.url("/chain/5")).status_code == 200
        with pytest.raises(httpx.TooManyRedirects):
            client.get(fresh.public.url("/chain/6"))


def test_the_download_client_caps_the_time_of_a_fetch(fresh: World) -> None:
    # Given a server that sends the start of a video and then one byte every 200 ms (never idle long
    # enough for the read timeout)
    started = time.monotonic()
    # When the body is read, Then the fetch stops at its time cap
    with (
        egress_client(fresh.policy, timeout=5, max_seconds=1.0) as client,
        client.stream("GET", fresh.public.url("/drip")) as response,
        pytest.raises(UpstreamUnavailable, match="time limit"),
    ):
        for _ in response.iter_bytes():
            pass
    assert time.monotonic() - started < 5


# --- 7. the egress proxy by itself: raw requests ----------------------------------------------------------------


def raw_exchange(proxy: EgressProxy, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def test_the_proxy_refuses_forbidden_targets_and_forwards_allowed_ones(fresh: World) -> None:
    c = fresh.canaries.v4.port
    with EgressProxy(fresh.policy) as proxy:
        # CONNECT and forward requests to the canary, in several spellings: 403, recorded
        for request in (
            f"CONNECT 127.0.0.1:{c} HTTP/1.1\r\nHost: 127.0.0.1:{c}\r\n\r\n",
            f"CONNECT [::ffff:127.0.0.1]:{c} HTTP/1.1\r\n\r\n",
            f"GET http://2130706433:{c}/ HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET http://localhost:{c}/ HTTP/1.1\r\n\r\n",
            f"GET http://private.test:{fresh.public.port}/ HTTP/1.1\r\n\r\n",
            "CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n",
            "GET http://[fd00:ec2::254]/latest/meta-data/ HTTP/1.1\r\n\r\n",
            f"GET http://user:pw@{fresh.public.authority}/ HTTP/1.1\r\n\r\n",
        ):
            assert raw_exchange(proxy, request.encode()).startswith(b"HTTP/1.1 403"), request
        # Requests that are not proxy requests at all
        assert raw_exchange(proxy, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw_exchange(proxy, b"GET http://a.test/\r\nX: y HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert len(proxy.blocked) == 7  # the userinfo request is refused before the policy is asked
        # And an allowed request is forwarded, streamed back whole, and told to close
        answer = raw_exchange(proxy, f"GET {fresh.public.url('/media/clip.mp4')} HTTP/1.1\r\n\r\n".encode())
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Connection: close" in head
        assert body == (fresh.public.media / "clip-360p.mp4").read_bytes()
        # And a CONNECT tunnel to the allowed address carries bytes both ways
        tunnel = (
            f"CONNECT {fresh.public.authority} HTTP/1.1\r\n\r\n"
            "GET /posts/plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert b"<title>plain</title>" in raw_exchange(proxy, tunnel.encode())
    assert not proxy.running


# --- 8. the worker end to end, production wiring (prefilter on), one batch ----------------------------------------


def test_the_worker_fails_each_forbidden_job_with_egress_blocked_naming_the_hop(
    aws: dict[str, Any], function: Any, load_event: Any, fresh: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, p = fresh.canaries.v4.port, fresh.public.port
    cases = [
        # (submitted url, expected code, text the error must contain)
        (f"http://127.0.0.1:{c}/posts/x", "EGRESS_BLOCKED", f"http://127.0.0.1:{c}/posts/x"),
        (f"http://2130706433:{c}/", "EGRESS_BLOCKED", f"http://127.0.0.1:{c}/"),
        (f"http://[::ffff:127.0.0.1]:{c}/", "EGRESS_BLOCKED", f"http://[::ffff:7f00:1]:{c}/"),
        (f"http://localhost.:{c}/", "EGRESS_BLOCKED", f"http://localhost:{c}/"),
        (f"https://127.0.0.1:{c}/", "EGRESS_BLOCKED", f"https://127.0.0.1:{c}/"),
        (f"http://private.test:{p}/posts/plain", "EGRESS_BLOCKED", f"http://private.test:{p}/posts/plain"),
        (fresh.public.url("/redirect"), "EGRESS_BLOCKED", f"http://127.0.0.1:{c}/from-redirect"),
        (fresh.public.url("/refresh"), "EGRESS_BLOCKED", f"http://127.0.0.1:{c}/from-refresh"),
        (fresh.public.url("/og-canary"), "EGRESS_BLOCKED", f"http://127.0.0.1:{c}/from-og.mp4"),
        (fresh.public.url("/og-redirect"), "EGRESS_BLOCKED", f"http://127.0.0.1:{c}/from-media-redirect.mp4"),
        ("file:///etc/passwd", "INVALID_URL", "http"),
    ]
    # Given the worker wired as deployed, the public server as the one exemption, and the fake DNS
    monkeypatch.setenv("MEDIAVAULT_EGRESS_ALLOW", fresh.public.authority)
    monkeypatch.setenv("MEDIAVAULT_CHROMIUM_PATH", str(CHROMIUM))
    deps.reset()
    clear_worker_state()
    monkeypatch.setattr(deps, "egress_policy", lambda: fresh.policy)
    template = load_event("sqs_url_only.json")["Records"][0]
    records = []
    for index, (url, _, _) in enumerate(cases):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"00000000-0000-4000-8000-{index:012d}"
        record["body"] = json.dumps({"url": url})
        records.append(record)
    # When one batch with every case is handled
    result = function("WorkerFunction").invoke({"Records": records})
    # Then no record is retried, and each job failed with its code, naming the hop
    assert result == {"batchItemFailures": []}
    table = boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"])
    by_url = {item["url"]: item for item in table.scan()["Items"] if "url" in item}
    outcomes = []
    for url, _, named in cases:
        job = by_url.get(_stored_url(url))
        got = (job["status"], job["error"]["code"], named in job["error"]["message"]) if job else None
        outcomes.append((url, got))
    assert outcomes == [(url, ("failed", code, True)) for url, code, _ in cases]
    # And nothing was stored
    s3 = boto3.client("s3")
    assert s3.list_objects_v2(Bucket=aws["env"]["MEDIAVAULT_BUCKET"]).get("KeyCount", 0) == 0


def _stored_url(submitted: str) -> str:
    """The worker stores the canonical URL (``2130706433`` -> ``127.0.0.1``, ``localhost.`` -> ``localhost``)."""
    try:
        return normalize_url(submitted)
    except InvalidUrl:
        return submitted[:2048]


# --- 9. why the proxy and <-loopback> are needed (measured) ---------------------------------------------------


def test_without_the_proxy_rules_pages_reach_loopback(world: World) -> None:
    """The two holes this design closes, measured against a separate witness canary: page.route alone
    misses redirect hops, and Chromium sends loopback direct unless the bypass list says ``<-loopback>``."""
    witness = Canary("127.0.0.1")
    public = Public(world.public.media)
    public.routes["/redirect"] = ("redirect", f"http://127.0.0.1:{witness.port}/from-redirect")
    guard_policy = EgressPolicy(allow=frozenset({public.authority}))
    close_thread_session()  # one Playwright driver per thread at a time
    try:
        with sync_playwright() as playwright:
            # page.route as the only guard: the redirect hop is never routed, the witness is reached
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
            page = browser.new_page()
            refused: list[str] = []

            def guard(route: Any) -> None:
                try:
                    guard_policy.check_literal(route.request.url)
                except EgressBlocked:
                    refused.append(route.request.url)
                    route.abort()
                    return
                route.continue_()

            page.route("**/*", guard)
            with contextlib.suppress(Exception):
                page.goto(public.url("/redirect"), timeout=10_000)
            assert refused == []
            routed_only = witness.connections
            browser.close()

            # A proxy without <-loopback>: Chromium goes straight to 127.0.0.1, past the proxy
            with EgressProxy(guard_policy) as proxy:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--proxy-server={proxy.url}"]
                )
                page = browser.new_page()
                with contextlib.suppress(Exception):
                    page.goto(f"http://127.0.0.1:{witness.port}/direct", timeout=10_000)
                browser.close()
            no_bypass_rule = witness.connections - routed_only
        assert routed_only >= 1
        assert no_bypass_rule >= 1
    finally:
        witness.close()
        public.close()
