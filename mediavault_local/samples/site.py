"""A loopback web site whose pages look like social-post pages, for the demo and the tests.

Every page is a small but complete HTML5 document that exposes its media the way some real
platform does (a JSON API call made by the page's script, Open Graph tags, a ``<video>`` with
``<source>`` children, JSON-LD, ...), plus the failure modes an archiver has to survive (404, 410,
a flaky 503, media that is HTML, truncated or empty). ``SAMPLE_POSTS`` lists each page with the
media file a correct extractor should end up archiving.

URLs inside pages and JSON are either relative or built from the request's ``Host`` header, so
the site works on whatever port it is bound to. Nothing here touches the network beyond the
loopback socket it listens on.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self
from urllib.parse import urlsplit

from .media import CLIP_VARIANTS, generate_media
from .serving import html_document, meta_tag

__all__ = ["MEMBER_COOKIE", "SAMPLE_POSTS", "RequestRecord", "SamplePost", "SampleSite"]

log = logging.getLogger(__name__)

#: The login cookie the members-only post wants (name, value).
MEMBER_COOKIE = ("member_session", "s3cr3t-member-token")

#: (method, path including any query string, request headers)
RequestRecord = tuple[str, str, dict[str, str]]

_CHUNK = 64 * 1024
_TINY_SIZE = 5 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONTENT_TYPES: Mapping[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".m3u8": "application/x-mpegURL",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".json": "application/json",
}

# Shared post metadata (what the variants API returns and the pages' meta tags repeat).
POST_ID = "1001"
POST_TEXT = "Sunset over the harbour, shot this evening. Sound on! #sample"
POST_CREATED_AT = "2024-05-01T18:30:00Z"
AUTHOR_HANDLE = "sampleuser"
AUTHOR_NAME = "Sample User"


@dataclass(frozen=True, slots=True)
class SamplePost:
    """One page of the site and what a correct extractor should make of it."""

    path: str
    status: int  # status of the first GET (the flaky page answers 503 before 200)
    description: str
    expected_media: str | None  # file under /media/ that should be archived, None when nothing should be


SAMPLE_POSTS: tuple[SamplePost, ...] = (
    SamplePost(
        "/posts/variants",
        200,
        "script fetches /api/posts/variants.json (360p/720p/1080p mp4 + an HLS entry to ignore) "
        "and plays the LOWEST variant in <video>; og/author meta tags",
        "clip-1080p.mp4",
    ),
    SamplePost("/posts/og-video", 200, "only og:video (+type/size/secure_url), og:image, og:title", "clip-720p.mp4"),
    SamplePost(
        "/posts/video-tag", 200, "<video poster> with <source> 720p (data-res/size hints) and 360p", "clip-720p.mp4"
    ),
    SamplePost(
        "/posts/jsonld",
        200,
        "JSON-LD VideoObject (contentUrl 1080p with width/height) and twitter:player:stream (360p)",
        "clip-1080p.mp4",
    ),
    SamplePost("/posts/animated", 200, "GIF-like looping <video autoplay loop muted> + og:video", "animated.mp4"),
    SamplePost("/posts/photo", 200, "photo-only post: og:image of a 2048x1536 JPEG, no video", "photo.jpg"),
    SamplePost("/posts/no-media", 200, "ordinary article, no media at all", None),
    SamplePost("/posts/missing", 404, "404 page (as is every unknown /posts/...)", None),
    SamplePost("/posts/gone", 410, "410 Gone (deleted post)", None),
    SamplePost("/posts/flaky", 503, "503 for the first N requests, then the og-video page", "clip-720p.mp4"),
    SamplePost(
        "/posts/members",
        403,
        f"members only: 403 unless the request carries the cookie {MEMBER_COOKIE[0]}={MEMBER_COOKIE[1]}, "
        "then the og-video page",
        "clip-720p.mp4",
    ),
    SamplePost("/posts/html-as-video", 200, "og:video -> /media/fake.mp4: 200 video/mp4 but an HTML body", None),
    SamplePost("/posts/tiny-video", 200, "og:video -> /media/tiny.mp4: 5 KB truncated mp4", None),
    SamplePost("/posts/empty-video", 200, "og:video -> /media/empty.mp4: 200 with a 0-byte body", None),
)

_FAKE_MP4_BODY = (
    b"<!doctype html>\n<html><head><title>Error</title></head><body>"
    b"<h1>Something went wrong</h1><p>This media is not available right now.</p></body></html>\n"
)


# --------------------------------------------------------------------------------------------
# Page rendering
# --------------------------------------------------------------------------------------------


def _og(key: str, value: str | int) -> str:
    return meta_tag("property", key, value)


def _name(key: str, value: str | int) -> str:
    return meta_tag("name", key, value)


_STYLE = """      body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; color: #222; }
      header, footer { color: #666; font-size: 0.9rem; }
      video, img { max-width: 100%; height: auto; background: #000; }
"""


def _document(title: str, head: list[str], body: str) -> str:
    """A complete HTML5 document with the site's chrome around ``body``."""
    return html_document(
        title, head, body, style=_STYLE,
        before='<header><a href="/">Sample Social</a> &middot; a local stand-in for a social network</header>',
        after="<footer>Sample Social &middot; served from loopback for demos and tests</footer>",
    )  # fmt: skip


def _byline() -> str:
    return (
        f'      <p class="byline"><a rel="author" href="/users/{AUTHOR_HANDLE}">{AUTHOR_NAME}</a> '
        f'@{AUTHOR_HANDLE} &middot; <time datetime="{POST_CREATED_AT}">1 May 2024</time></p>'
    )


def _author_meta() -> list[str]:
    return [
        _name("author", AUTHOR_NAME),
        _name("twitter:creator", f"@{AUTHOR_HANDLE}"),
        _og("article:published_time", POST_CREATED_AT),
    ]


def _og_video_page(origin: str, path: str, media: str, *, title: str, width: int, height: int, poster: bool) -> str:
    """A page that exposes one video through Open Graph tags only (no <video> element)."""
    url = f"{origin}/media/{media}"
    head = [
        _og("og:type", "video.other"),
        _og("og:title", title),
        _og("og:url", f"{origin}{path}"),
        _og("og:video", url),
        _og("og:video:secure_url", url),
        _og("og:video:type", "video/mp4"),
        _og("og:video:width", width),
        _og("og:video:height", height),
    ]
    if poster:
        head.append(_og("og:image", f"{origin}/media/poster.jpg"))
    body = f"""      <article>
        <h1>{html.escape(title)}</h1>
{_byline()}
        <p>{html.escape(POST_TEXT)}</p>
        <p><em>Open the app to watch this video.</em></p>
      </article>"""
    return _document(title, head, body)


def _variants_page(origin: str) -> str:
    title = f"{AUTHOR_NAME} on Sample Social"
    head = [
        _og("og:type", "video.other"),
        _og("og:site_name", "Sample Social"),
        _og("og:title", title),
        _og("og:description", POST_TEXT),
        _og("og:image", f"{origin}/media/poster.jpg"),
        _og("og:url", f"{origin}/posts/variants"),
        *_author_meta(),
        _name("twitter:card", "player"),
    ]
    # Like an adaptive player, the page starts on the lowest mp4 rendition; only the JSON the
    # page fetched reveals the better ones.
    body = f"""      <article data-post-id="{POST_ID}">
{_byline()}
        <p id="text" class="post-text">Loading&hellip;</p>
        <video id="player" controls playsinline preload="metadata" width="640" height="360"></video>
      </article>
      <script>
        (async function () {{
          const response = await fetch("/api/posts/variants.json", {{ headers: {{ "Accept": "application/json" }} }});
          const data = await response.json();
          const video = data.post.media[0];
          const mp4 = video.variants
            .filter((v) => v.content_type === "video/mp4")
            .sort((a, b) => a.bitrate - b.bitrate);
          const player = document.getElementById("player");
          player.poster = video.poster;
          player.src = mp4[0].url;
          document.getElementById("text").textContent = data.post.text;
          document.body.dataset.playerReady = "1";
        }})();
      </script>"""
    return _document(title, head, body)


def _variants_json() -> dict[str, object]:
    variants: list[dict[str, object]] = [
        {
            "url": f"/media/{spec.filename}",
            "bitrate": spec.bitrate,
            "content_type": "video/mp4",
            "width": spec.width,
            "height": spec.height,
        }
        for spec in CLIP_VARIANTS
    ]
    # A streaming manifest that does not exist: an extractor must skip non-mp4 variants.
    variants.append({"url": "/media/clip.m3u8", "content_type": "application/x-mpegURL"})
    return {
        "post": {
            "id": POST_ID,
            "text": POST_TEXT,
            "created_at": POST_CREATED_AT,
            "author": {"handle": AUTHOR_HANDLE, "name": AUTHOR_NAME},
            "media": [
                {
                    "type": "video",
                    "poster": "/media/poster.jpg",
                    "duration_ms": int(CLIP_VARIANTS[0].seconds * 1000),
                    "variants": variants,
                }
            ],
        }
    }


def _video_tag_page(origin: str) -> str:
    del origin  # everything on this page is relative
    title = "Harbour timelapse"
    body = f"""      <article>
        <h1>{title}</h1>
{_byline()}
        <p>{html.escape(POST_TEXT)}</p>
        <video controls playsinline preload="none" poster="/media/poster.jpg" width="1280" height="720">
          <source src="/media/clip-720p.mp4" type="video/mp4" data-res="720" size="720">
          <source src="/media/clip-360p.mp4" type="video/mp4" data-res="360" size="360">
          Your browser does not support HTML5 video.
        </video>
      </article>"""
    return _document(title, [_og("og:title", title)], body)


def _jsonld_page(origin: str) -> str:
    low, best = CLIP_VARIANTS[0], CLIP_VARIANTS[-1]
    title = "Evening at the harbour (full HD)"
    ld = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": title,
        "description": POST_TEXT,
        "contentUrl": f"{origin}/media/{best.filename}",
        "thumbnailUrl": f"{origin}/media/poster.jpg",
        "encodingFormat": "video/mp4",
        "width": best.width,
        "height": best.height,
        "duration": f"PT{int(best.seconds)}S",
        "uploadDate": POST_CREATED_AT,
        "author": {"@type": "Person", "name": AUTHOR_NAME, "alternateName": f"@{AUTHOR_HANDLE}"},
    }
    # "</" can never appear inside the script element, whatever the data holds.
    ld_json = json.dumps(ld, indent=2).replace("</", "<\\/")
    head = [
        _name("twitter:card", "player"),
        _name("twitter:title", title),
        _name("twitter:player:stream", f"{origin}/media/{low.filename}"),
        _name("twitter:player:stream:content_type", "video/mp4"),
        f'<script type="application/ld+json">\n{ld_json}\n    </script>',
    ]
    body = f"""      <article>
        <h1>{html.escape(title)}</h1>
{_byline()}
        <p>{html.escape(POST_TEXT)}</p>
        <p><a href="/posts/video-tag">Watch in the player</a></p>
      </article>"""
    return _document(title, head, body)


def _animated_page(origin: str) -> str:
    title = "Looping harbour GIF"
    url = f"{origin}/media/animated.mp4"
    head = [
        _og("og:type", "video.other"),
        _og("og:title", title),
        _og("og:video", url),
        _og("og:video:type", "video/mp4"),
        _og("og:video:width", 480),
        _og("og:video:height", 270),
        *_author_meta(),
    ]
    body = f"""      <article>
{_byline()}
        <p>When the tide comes in &#x1F30A;</p>
        <video autoplay loop muted playsinline src="/media/animated.mp4" width="480" height="270"></video>
        <p class="badge">GIF</p>
      </article>"""
    return _document(title, head, body)


def _photo_page(origin: str) -> str:
    title = "Harbour at dusk (photo)"
    head = [
        _og("og:type", "article"),
        _og("og:title", title),
        _og("og:description", "A still from the evening walk."),
        _og("og:image", f"{origin}/media/photo.jpg"),
        _og("og:image:type", "image/jpeg"),
        _og("og:image:width", 2048),
        _og("og:image:height", 1536),
        *_author_meta(),
    ]
    body = f"""      <article>
        <h1>{html.escape(title)}</h1>
{_byline()}
        <p>A still from the evening walk. No video this time.</p>
      </article>"""
    return _document(title, head, body)


def _no_media_page(origin: str) -> str:
    del origin
    title = "Thoughts on archiving"
    head = [_og("og:type", "article"), _og("og:title", title), *_author_meta()]
    body = f"""      <article>
        <h1>{title}</h1>
{_byline()}
        <p>Keeping your own copy of what you post is a good habit. Platforms change, links rot,
        and accounts disappear.</p>
        <p>This post is text only: there is nothing here to download.</p>
      </article>"""
    return _document(title, head, body)


def _error_page(status: HTTPStatus, message: str) -> str:
    title = f"{status.value} {status.phrase}"
    body = f"""      <h1>{html.escape(title)}</h1>
      <p>{html.escape(message)}</p>
      <p><a href="/">Back to the home page</a></p>"""
    return _document(f"{title} | Sample Social", [_name("robots", "noindex")], body)


def _index_page() -> str:
    items = "\n".join(
        f'        <li><a href="{p.path}">{p.path}</a> &mdash; {html.escape(p.description)}</li>' for p in SAMPLE_POSTS
    )
    body = f"""      <h1>Sample Social</h1>
      <p>Sample posts served on loopback.</p>
      <ul>
{items}
      </ul>"""
    return _document("Sample Social", [], body)


# Pages that render the same way on every request (given the origin).
_PAGES: dict[str, Callable[[str], str]] = {
    "/posts/variants": _variants_page,
    "/posts/og-video": lambda o: _og_video_page(
        o, "/posts/og-video", "clip-720p.mp4", title="Harbour, 720p", width=1280, height=720, poster=True
    ),
    "/posts/video-tag": _video_tag_page,
    "/posts/jsonld": _jsonld_page,
    "/posts/animated": _animated_page,
    "/posts/photo": _photo_page,
    "/posts/no-media": _no_media_page,
    "/posts/html-as-video": lambda o: _og_video_page(
        o, "/posts/html-as-video", "fake.mp4", title="Broken upload", width=1280, height=720, poster=False
    ),
    "/posts/tiny-video": lambda o: _og_video_page(
        o, "/posts/tiny-video", "tiny.mp4", title="Truncated upload", width=640, height=360, poster=False
    ),
    "/posts/empty-video": lambda o: _og_video_page(
        o, "/posts/empty-video", "empty.mp4", title="Empty upload", width=640, height=360, poster=False
    ),
}


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def _parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """Parse a single ``bytes=`` range against ``size``.

    Returns ``(first, last)`` inclusive for a satisfiable range, ``False`` when the range is
    well-formed but unsatisfiable (-> 416), and ``None`` when the header should be ignored
    (malformed or multi-range; RFC 9110 lets a server answer those with the whole body).
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    start_s, dash, end_s = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if start_s == "":  # suffix: the last N bytes
            suffix = int(end_s)
            if suffix < 0:
                return None
            if suffix == 0 or size == 0:
                return False
            return max(0, size - suffix), size - 1
        first = int(start_s)
        last = int(end_s) if end_s else size - 1
    except ValueError:
        return None
    if first < 0:
        return None
    if first >= size:
        return False
    if last < first:
        return None
    return first, min(last, size - 1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], site: SampleSite) -> None:
        self.site = site
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SampleSocial/1.0"
    timeout = 30  # idle keep-alive connections are dropped after this many seconds
    server: _Server

    # -- entry points ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.site.verbose:
            log.info("%s - %s", self.address_string(), format % args)

    # -- routing --------------------------------------------------------------------------

    def _dispatch(self, *, head: bool) -> None:
        site = self.server.site
        site._record(self.command, self.path, dict(self.headers.items()))
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                self._send_html(HTTPStatus.OK, _index_page(), head=head)
            elif path == "/api/posts/variants.json":
                body = json.dumps(_variants_json(), indent=2).encode()
                self._send_bytes(HTTPStatus.OK, body, "application/json", head=head)
            elif path.startswith("/posts/"):
                self._post(path, head=head)
            elif path.startswith("/media/"):
                self._media(path.removeprefix("/media/"), head=head)
            else:
                self._not_found(head=head)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-response (cancelled download, closed tab): not an error.
            self.close_connection = True

    def _origin(self) -> str:
        host = self.headers.get("Host") or f"{self.server.site.host}:{self.server.site.port}"
        return f"http://{host}"

    def _post(self, path: str, *, head: bool) -> None:
        site = self.server.site
        path = path.rstrip("/") or path
        if path == "/posts/gone":
            self._send_html(HTTPStatus.GONE, _error_page(HTTPStatus.GONE, "This post was deleted."), head=head)
            return
        if path == "/posts/members":
            wanted = f"{MEMBER_COOKIE[0]}={MEMBER_COOKIE[1]}"
            if wanted not in [c.strip() for c in (self.headers.get("Cookie") or "").split(";")]:
                page = _error_page(HTTPStatus.FORBIDDEN, "Log in to see this post.")
                self._send_html(HTTPStatus.FORBIDDEN, page, head=head)
                return
            self._send_html(HTTPStatus.OK, _PAGES["/posts/og-video"](self._origin()), head=head)
            return
        if path == "/posts/flaky":
            if site._flaky_should_fail():
                page = _error_page(HTTPStatus.SERVICE_UNAVAILABLE, "We are over capacity. Try again.")
                self._send_html(HTTPStatus.SERVICE_UNAVAILABLE, page, head=head, extra={"Retry-After": "1"})
                return
            page = _PAGES["/posts/og-video"](self._origin())
            self._send_html(HTTPStatus.OK, page, head=head)
            return
        render = _PAGES.get(path)
        if render is None:
            self._not_found(head=head)
            return
        self._send_html(HTTPStatus.OK, render(self._origin()), head=head)

    def _media(self, name: str, *, head: bool) -> None:
        site = self.server.site
        if name == "fake.mp4":
            # The classic CDN failure: an error page labelled as the media type.
            self._send_bytes(HTTPStatus.OK, _FAKE_MP4_BODY, "video/mp4", head=head)
            return
        if name == "empty.mp4":
            self._send_stream(io.BytesIO(b""), 0, "video/mp4", etag='"empty"', head=head)
            return
        if name == "tiny.mp4":
            data = site._tiny_mp4()
            self._send_stream(io.BytesIO(data), len(data), "video/mp4", etag='"tiny"', head=head)
            return
        if not _SAFE_NAME.fullmatch(name) or name.endswith(".part"):
            self._not_found(head=head)
            return
        file = site.media_dir / name
        if not file.is_file():
            self._not_found(head=head)
            return
        stat = file.stat()
        content_type = _CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
        etag = '"' + hashlib.sha256(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16] + '"'
        with file.open("rb") as stream:
            self._send_stream(stream, stat.st_size, content_type, etag=etag, head=head)

    def _not_found(self, *, head: bool) -> None:
        page = _error_page(HTTPStatus.NOT_FOUND, "Sorry, that page does not exist.")
        self._send_html(HTTPStatus.NOT_FOUND, page, head=head)

    # -- responses ------------------------------------------------------------------------

    def _send_html(self, status: HTTPStatus, page: str, *, head: bool, extra: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, page.encode(), "text/html; charset=utf-8", head=head, extra=extra)

    def _send_bytes(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        *,
        head: bool,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_stream(self, stream: BinaryIO, size: int, content_type: str, *, etag: str, head: bool) -> None:
        """Send ``stream`` (``size`` bytes) honouring a single ``Range`` header, in chunks."""
        first, last = 0, size - 1
        status = HTTPStatus.OK
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, size)
            if parsed is False:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                return
            if isinstance(parsed, tuple):
                first, last = parsed
                status = HTTPStatus.PARTIAL_CONTENT
        length = max(0, last - first + 1)

        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Cache-Control", "public, max-age=3600")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if head or length == 0:
            return

        throttle = self.server.site.throttle_bps
        chunk = _CHUNK if not throttle else max(1, min(_CHUNK, throttle // 10))
        stream.seek(first)
        remaining = length
        sent = 0
        started = time.monotonic()
        while remaining > 0:
            data = stream.read(min(chunk, remaining))
            if not data:  # the file shrank under us: end the connection, the length was promised
                self.close_connection = True
                return
            self.wfile.write(data)
            remaining -= len(data)
            sent += len(data)
            if throttle:
                # Sleep until the average rate since the start is back at the limit.
                ahead = sent / throttle - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)


# --------------------------------------------------------------------------------------------
# The site
# --------------------------------------------------------------------------------------------


class SampleSite:
    """The sample site on ``host:port`` (port 0: any free port), served from daemon threads.

    ``media_dir`` holds the files served under ``/media/`` (default: a cache directory in the
    system temp dir); with ``generate=True`` the sample media is generated there on ``start()``
    if missing. Big benchmark files (:func:`~mediavault_local.samples.media.big_media`) in the
    same directory are served as ``/media/big-<N>mb.mp4``.

    ``flaky_failures``: how many requests to ``/posts/flaky`` answer 503 before it recovers
    (see :meth:`reset_flaky`). ``throttle_bps``: when set, each media response is sent at most
    at this many bytes per second; both can be changed while the site runs.
    """

    def __init__(
        self,
        media_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        flaky_failures: int = 2,
        throttle_bps: int | None = None,
        generate: bool = True,
        verbose: bool = False,
    ) -> None:
        self.media_dir = Path(media_dir) if media_dir else Path(tempfile.gettempdir()) / "mediavault-samples"
        self.host = host
        self.port = port
        self.flaky_failures = flaky_failures
        self.throttle_bps = throttle_bps
        self.generate = generate
        self.verbose = verbose
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._flaky_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Generate missing media (if enabled), bind and serve in a background thread."""
        if self._server is not None:
            return self
        if self.generate:
            generate_media(self.media_dir)
        else:
            self.media_dir.mkdir(parents=True, exist_ok=True)
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sample-site", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- addresses ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash; valid once started."""
        if self._server is None:
            raise RuntimeError("SampleSite is not started")
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this site (``"posts/x"`` and ``"/posts/x"`` both work)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- request log ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received so far: ``(method, path, headers)``."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def paths_requested(self, method: str | None = None) -> list[str]:
        """The request paths (without query string), optionally only those of ``method``."""
        return [urlsplit(p).path for m, p, _ in self.requests if method is None or m == method]

    def _record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self._requests.append((method, path, headers))

    # -- behaviour knobs ------------------------------------------------------------------

    def reset_flaky(self, failures: int | None = None) -> None:
        """Make ``/posts/flaky`` fail again for its next ``failures`` (default: the current setting)."""
        with self._lock:
            if failures is not None:
                self.flaky_failures = failures
            self._flaky_count = 0

    def _flaky_should_fail(self) -> bool:
        with self._lock:
            self._flaky_count += 1
            return self._flaky_count <= self.flaky_failures

    def _tiny_mp4(self) -> bytes:
        """5 KB that start like a real MP4 (the head of clip-360p.mp4) and then stop."""
        source = self.media_dir / CLIP_VARIANTS[0].filename
        if source.is_file():
            with source.open("rb") as f:
                data = f.read(_TINY_SIZE)
            if len(data) == _TINY_SIZE:
                return data
        # No clip to cut from: a genuine ftyp box followed by the start of an mdat that claims more.
        ftyp = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
        mdat = (1_000_000).to_bytes(4, "big") + b"mdat"
        return (ftyp + mdat).ljust(_TINY_SIZE, b"\x00")
