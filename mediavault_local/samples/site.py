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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from .media import CLIP_VARIANTS, generate_media
from .serving import Exchange, LoopbackSite, RequestRecord, html_document, meta_tag

__all__ = ["MEMBER_COOKIE", "SAMPLE_POSTS", "RequestRecord", "SamplePost", "SampleSite"]

log = logging.getLogger(__name__)

#: The login cookie the members-only post wants (name, value).
MEMBER_COOKIE = ("member_session", "s3cr3t-member-token")

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


def _not_found(exchange: Exchange) -> None:
    exchange.send_html(HTTPStatus.NOT_FOUND, _error_page(HTTPStatus.NOT_FOUND, "Sorry, that page does not exist."))


class SampleSite(LoopbackSite):
    """The sample site on ``host:port`` (port 0: any free port), served from daemon threads.

    ``media_dir`` holds the files served under ``/media/`` (default: a cache directory in the
    system temp dir); with ``generate=True`` the sample media is generated there on ``start()``
    if missing. Big benchmark files (:func:`~mediavault_local.samples.media.big_media`) in the
    same directory are served as ``/media/big-<N>mb.mp4``.

    ``flaky_failures``: how many requests to ``/posts/flaky`` answer 503 before it recovers
    (see :meth:`reset_flaky`). ``throttle_bps``: when set, each media response is sent at most
    at this many bytes per second; both can be changed while the site runs.
    """

    name = "sample-site"

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
        super().__init__(host=host, port=port, verbose=verbose)
        self.media_dir = Path(media_dir) if media_dir else Path(tempfile.gettempdir()) / "mediavault-samples"
        self.flaky_failures = flaky_failures
        self.throttle_bps = throttle_bps
        self.generate = generate
        self._flaky_count = 0

    def prepare(self) -> None:
        """Generate missing media (if enabled) before the site binds."""
        if self.generate:
            generate_media(self.media_dir)
        else:
            self.media_dir.mkdir(parents=True, exist_ok=True)

    # -- routing --------------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path
        if path in ("/", "/index.html"):
            exchange.send_html(HTTPStatus.OK, _index_page())
        elif path == "/api/posts/variants.json":
            exchange.send_bytes(HTTPStatus.OK, json.dumps(_variants_json(), indent=2).encode(), "application/json")
        elif path.startswith("/posts/"):
            self._post(exchange, path.rstrip("/") or path)
        elif path.startswith("/media/"):
            self._media(exchange, path.removeprefix("/media/"))
        else:
            _not_found(exchange)

    def _post(self, exchange: Exchange, path: str) -> None:
        if path == "/posts/gone":
            exchange.send_html(HTTPStatus.GONE, _error_page(HTTPStatus.GONE, "This post was deleted."))
            return
        if path == "/posts/members":
            if exchange.cookie(MEMBER_COOKIE[0]) != MEMBER_COOKIE[1]:
                exchange.send_html(HTTPStatus.FORBIDDEN, _error_page(HTTPStatus.FORBIDDEN, "Log in to see this post."))
                return
            exchange.send_html(HTTPStatus.OK, _PAGES["/posts/og-video"](exchange.origin))
            return
        if path == "/posts/flaky":
            if self._flaky_should_fail():
                page = _error_page(HTTPStatus.SERVICE_UNAVAILABLE, "We are over capacity. Try again.")
                exchange.send_html(HTTPStatus.SERVICE_UNAVAILABLE, page, extra={"Retry-After": "1"})
                return
            exchange.send_html(HTTPStatus.OK, _PAGES["/posts/og-video"](exchange.origin))
            return
        render = _PAGES.get(path)
        if render is None:
            _not_found(exchange)
            return
        exchange.send_html(HTTPStatus.OK, render(exchange.origin))

    def _media(self, exchange: Exchange, name: str) -> None:
        if name == "fake.mp4":
            # The classic CDN failure: an error page labelled as the media type.
            exchange.send_bytes(HTTPStatus.OK, _FAKE_MP4_BODY, "video/mp4")
            return
        if name == "empty.mp4":
            exchange.send_stream(io.BytesIO(b""), 0, "video/mp4", etag='"empty"')
            return
        if name == "tiny.mp4":
            data = self._tiny_mp4()
            exchange.send_stream(io.BytesIO(data), len(data), "video/mp4", etag='"tiny"')
            return
        if not _SAFE_NAME.fullmatch(name) or name.endswith(".part"):
            _not_found(exchange)
            return
        file = self.media_dir / name
        if not file.is_file():
            _not_found(exchange)
            return
        stat = file.stat()
        content_type = _CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
        etag = '"' + hashlib.sha256(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16] + '"'
        with file.open("rb") as stream:
            exchange.send_stream(
                stream, stat.st_size, content_type, etag=etag, throttle_bps=self.throttle_bps,
                extra={"Cache-Control": "public, max-age=3600"},
            )  # fmt: skip

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
