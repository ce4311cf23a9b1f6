"""A loopback stand-in for Bluesky: post pages, the public AppView's XRPC answers, HLS video, CDN images.

One origin plays every Bluesky host, so pointing the system at it takes two settings::

    MEDIAVAULT_PLATFORM_HOSTS=bluesky=127.0.0.1:<port>
    MEDIAVAULT_PLATFORM_API=bluesky=http://127.0.0.1:<port>

What it serves, in the shapes the real services use:

* ``/profile/<actor>/post/<rkey>``: the web app's HTML shell (Open Graph tags for a visible post);
  its script resolves the handle and calls ``getPostThread``, as bsky.app does, then renders the post.
* ``/xrpc/com.atproto.identity.resolveHandle?handle=...`` and
  ``/xrpc/app.bsky.feed.getPostThread?uri=at://...``: JSON with ``$type``, ``uri``, ``cid``,
  ``indexedAt``, ``viewer`` and ``labels``, errors as XRPC ``{"error", "message"}`` bodies.
* ``/watch/<did>/<cid>/playlist.m3u8`` (+ the variant playlists and TS segments beneath it, from
  :func:`~.hls.generate_hls`: 360p/720p video-only variants and a separate AAC audio group) and
  ``/watch/<did>/<cid>/thumbnail.jpg``, as ``video.bsky.app`` serves them (the DID may be
  percent-encoded, as in the real playlist URLs).
* ``/img/feed_fullsize/plain/<did>/<cid>@jpeg``, ``/img/feed_thumbnail/...``, ``/img/avatar/...``,
  as ``cdn.bsky.app`` serves them. Every image is the sample photo (or poster, for thumbnails and
  avatars) with a JPEG comment naming its CID, so the images of one post are distinct files.

:data:`BSKY_POSTS` lists each post link and what a correct archiver makes of it. DIDs, TIDs and
CIDs are derived deterministically from names, in the real syntax (``did:plc:`` + 24 base32
characters, 13-character sortable-base32 TIDs, CIDv1 ``bafkrei...`` blobs and ``bafyrei...``
records). Nothing here touches the network beyond the loopback socket it listens on.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import io
import logging
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .hls import MASTER, generate_hls, serve_hls
from .media import PHOTO, PHOTO_SIZE, POSTER, POSTER_SIZE, generate_media
from .serving import Exchange, LoopbackSite, html_document, meta_tag

__all__ = ["BSKY_POSTS", "BskyPost", "BskySite"]

log = logging.getLogger(__name__)

MODERATION_DID = "did:plc:ar7c4by46qjdydhdevvrndac"  # Bluesky's own moderation service labels posts
THREAD_POST = "app.bsky.feed.defs#threadViewPost"
THREAD_BLOCKED = "app.bsky.feed.defs#blockedPost"
POST_COLLECTION = "app.bsky.feed.post"
_SORTABLE_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"
_CORS = {"Access-Control-Allow-Origin": "*"}


# --------------------------------------------------------------------------------------------
# Identifiers in AT Protocol syntax, derived from names
# --------------------------------------------------------------------------------------------


def _digest(seed: str) -> bytes:
    return hashlib.sha256(seed.encode()).digest()


def plc_did(seed: str) -> str:
    """A ``did:plc:`` identifier (24 base32 characters) derived from ``seed``."""
    return "did:plc:" + base64.b32encode(_digest(seed)).decode().lower()[:24]


def cid(seed: str, *, blob: bool = True) -> str:
    """A CIDv1 (sha-256): ``raw`` codec for blobs (``bafkrei...``), ``dag-cbor`` for records (``bafyrei...``)."""
    raw = bytes([0x01, 0x55 if blob else 0x71, 0x12, 0x20]) + _digest(seed)
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def tid(created_at: str, clock_id: int | None = None) -> str:
    """The record key a client writes at ``created_at``: microseconds and a clock id, sortable base32."""
    micros = int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp() * 1_000_000)
    if clock_id is None:
        clock_id = int.from_bytes(_digest(created_at)[:2], "big")
    value = (micros << 10) | (clock_id & 0x3FF)
    return "".join(_SORTABLE_BASE32[(value >> (5 * i)) & 31] for i in reversed(range(13)))


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    handle: str
    display_name: str
    labels: tuple[str, ...] = ()  # self-labels on the profile, e.g. "!no-unauthenticated"
    resolves: bool = True

    @property
    def did(self) -> str:
        return plc_did(self.handle)


@dataclass(frozen=True, slots=True)
class Image:
    alt: str
    width: int = PHOTO_SIZE[0]
    height: int = PHOTO_SIZE[1]


@dataclass(frozen=True, slots=True)
class _Post:
    """A post the AppView knows (or, with ``status``, how it answers about it)."""

    handle: str
    created_at: str
    text: str = ""
    video: bool = False
    images: tuple[Image, ...] = ()
    quote: tuple[str, str] | None = None  # (handle, created_at) of the quoted post
    labels: tuple[str, ...] = ()  # moderation labels on the post
    counts: tuple[int, int, int, int] = (0, 0, 0, 0)  # likes, reposts, replies, quotes
    status: str = "ok"  # ok | blocked | unavailable (503)

    @property
    def rkey(self) -> str:
        return tid(self.created_at)


@dataclass(frozen=True, slots=True)
class BskyPost:
    """One post link of the site and what a correct archiver makes of it."""

    actor: str  # handle or DID, as the link names it
    rkey: str
    description: str
    media: tuple[str, ...] = ()  # kinds of the post's own items, in item order
    quoted_media: tuple[str, ...] = ()  # kinds of the quoted post's items (numbered after the own ones)
    error: str | None = None  # the error code expected instead of media
    sensitive: bool = False

    @property
    def path(self) -> str:
        return f"/profile/{self.actor}/post/{self.rkey}"

    @property
    def post_id(self) -> str:
        return f"{self.actor.lower()}/{self.rkey}"


ACCOUNTS: dict[str, Account] = {
    a.handle: a
    for a in (
        Account("harbour.test", "Harbour Films"),
        Account("gallery.test", "Gallery Walk"),
        Account("quoter.test", "Quoting Quinn"),
        Account("commentator.test", "Commentator"),
        Account("walled.test", "Walled Garden"),
        Account("signedin.test", "Members Only", labels=("!no-unauthenticated",)),
        Account("afterdark.test", "After Dark"),
        Account("busy.test", "Busy Server"),
        Account("ghost.test", "Nobody", resolves=False),
    )
}

_VIDEO_AT = "2024-09-12T18:30:00.000Z"
_POSTS: tuple[_Post, ...] = (
    _Post(
        "harbour.test",
        _VIDEO_AT,
        "Harbour at dusk, in motion. Sound on! #sample",
        video=True,
        counts=(128, 17, 9, 2),
    ),
    _Post(
        "gallery.test",
        "2024-09-13T09:15:00.000Z",
        "Four frames from the harbour walk.",
        images=tuple(Image(f"Harbour walk, frame {n} of 4") for n in range(1, 5)),
        counts=(64, 5, 3, 0),
    ),
    _Post(
        "quoter.test",
        "2024-09-14T12:00:00.000Z",
        "Went back the next morning. Compare with this:",
        images=(Image("The harbour in the morning"), Image("Boats at the pier", 1280, 720)),
        quote=("harbour.test", _VIDEO_AT),
        counts=(12, 1, 0, 0),
    ),
    _Post(
        "commentator.test",
        "2024-09-14T13:45:00.000Z",
        "This is the best harbour video this year.",
        quote=("harbour.test", _VIDEO_AT),
        counts=(3, 0, 1, 0),
    ),
    _Post("walled.test", "2024-09-15T08:00:00.000Z", "Behind a block.", images=(Image("Hidden"),), status="blocked"),
    _Post("signedin.test", "2024-09-15T10:00:00.000Z", "For signed-in eyes only.", video=True, counts=(7, 0, 0, 0)),
    _Post(
        "afterdark.test",
        "2024-09-16T22:00:00.000Z",
        "Late night shoot (adult content).",
        images=(Image("A late night photo"),),
        labels=("porn",),
        counts=(40, 2, 1, 0),
    ),
    _Post("busy.test", "2024-09-17T07:00:00.000Z", "The AppView is overloaded.", video=True, status="unavailable"),
)

_VIDEO_RKEY = tid(_VIDEO_AT)

#: Each post link of the site and the outcome a correct archiver reaches.
BSKY_POSTS: tuple[BskyPost, ...] = (
    BskyPost(
        "harbour.test",
        _VIDEO_RKEY,
        "video post: app.bsky.embed.video#view, HLS master with 360p/720p video-only variants and a separate "
        "AAC audio group; thumbnail.jpg as poster",
        media=("video",),
    ),
    BskyPost(
        ACCOUNTS["harbour.test"].did,
        _VIDEO_RKEY,
        "the same video post, linked by DID instead of handle (no handle resolution)",
        media=("video",),
    ),
    BskyPost(
        "gallery.test",
        tid("2024-09-13T09:15:00.000Z"),
        "four images: app.bsky.embed.images#view, fullsize + thumb each, alt texts",
        media=("photo", "photo", "photo", "photo"),
    ),
    BskyPost(
        "quoter.test",
        tid("2024-09-14T12:00:00.000Z"),
        "recordWithMedia#view: two images of its own (items 0-1) quoting the video post (item 2, quoted)",
        media=("photo", "photo"),
        quoted_media=("video",),
    ),
    BskyPost(
        "commentator.test",
        tid("2024-09-14T13:45:00.000Z"),
        "quote only: record#view of the video post; no media of its own, the quoted video is item 0 (quoted); "
        "NO_MEDIA unless quoted media is archived",
        quoted_media=("video",),
    ),
    BskyPost(
        "harbour.test",
        tid("2024-01-01T00:00:00.000Z"),
        "deleted post: getPostThread answers 400 {error: NotFound}",
        error="POST_NOT_FOUND",
    ),
    BskyPost(
        "walled.test",
        tid("2024-09-15T08:00:00.000Z"),
        "blocked: the thread is an app.bsky.feed.defs#blockedPost",
        error="POST_UNAVAILABLE",
    ),
    BskyPost(
        "signedin.test",
        tid("2024-09-15T10:00:00.000Z"),
        "the author carries the !no-unauthenticated self-label: signed-out viewers are not shown the post",
        error="LOGIN_REQUIRED",
    ),
    BskyPost(
        "ghost.test",
        tid("2024-09-15T11:00:00.000Z"),
        "the handle does not resolve: resolveHandle answers 400 {error: InvalidRequest}",
        error="POST_NOT_FOUND",
    ),
    BskyPost(
        "afterdark.test",
        tid("2024-09-16T22:00:00.000Z"),
        "one image, a porn label from the moderation service: archived, sensitive",
        media=("photo",),
        sensitive=True,
    ),
    BskyPost(
        "busy.test",
        tid("2024-09-17T07:00:00.000Z"),
        "getPostThread answers 503 (Retry-After): retryable",
        error="UPSTREAM_UNAVAILABLE",
    ),
)


# --------------------------------------------------------------------------------------------
# JSON in the AppView's shapes
# --------------------------------------------------------------------------------------------


def _at_uri(post: _Post) -> str:
    return f"at://{ACCOUNTS[post.handle].did}/{POST_COLLECTION}/{post.rkey}"


def _record_cid(post: _Post) -> str:
    return cid(_at_uri(post), blob=False)


def _video_cid(post: _Post) -> str:
    return cid(f"{_at_uri(post)}#video")


def _image_cid(post: _Post, index: int) -> str:
    return cid(f"{_at_uri(post)}#image{index}")


def _indexed_at(post: _Post) -> str:
    return post.created_at.replace(".000Z", ".412Z")


def _label(src: str, uri: str, val: str, cts: str) -> dict[str, Any]:
    return {"src": src, "uri": uri, "cid": cid(uri, blob=False), "val": val, "cts": cts}


def _profile_basic(account: Account, origin: str) -> dict[str, Any]:
    did = account.did
    profile_uri = f"at://{did}/app.bsky.actor.profile/self"
    return {
        "did": did,
        "handle": account.handle,
        "displayName": account.display_name,
        "avatar": f"{origin}/img/avatar/plain/{did}/{cid(did + '#avatar')}@jpeg",
        "associated": {"chat": {"allowIncoming": "following"}},
        "viewer": {"muted": False, "blockedBy": False},
        "labels": [_label(did, profile_uri, val, "2024-01-01T00:00:00.000Z") for val in account.labels],
        "createdAt": "2023-05-01T10:00:00.000Z",
    }


def _blob(ref: str, mime: str, size: int) -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": ref}, "mimeType": mime, "size": size}


def _media_record(post: _Post) -> dict[str, Any] | None:
    """The record's embed: blob references only (what the author's PDS stores)."""
    if post.video:
        return {
            "$type": "app.bsky.embed.video",
            "video": _blob(_video_cid(post), "video/mp4", 1_482_113),
            "aspectRatio": {"width": 1280, "height": 720},
        }
    if post.images:
        return {
            "$type": "app.bsky.embed.images",
            "images": [
                {
                    "alt": image.alt,
                    "aspectRatio": {"width": image.width, "height": image.height},
                    "image": _blob(_image_cid(post, n), "image/jpeg", 402_117 + n),
                }
                for n, image in enumerate(post.images)
            ],
        }
    return None


def _media_view(post: _Post, origin: str) -> dict[str, Any] | None:
    """The embed's view: URLs of the video service and the image CDN."""
    did = ACCOUNTS[post.handle].did
    if post.video:
        video = _video_cid(post)
        watch = f"{origin}/watch/{quote(did, safe='')}/{video}"
        return {
            "$type": "app.bsky.embed.video#view",
            "cid": video,
            "playlist": f"{watch}/playlist.m3u8",
            "thumbnail": f"{watch}/thumbnail.jpg",
            "aspectRatio": {"width": 1280, "height": 720},
        }
    if post.images:
        return {
            "$type": "app.bsky.embed.images#view",
            "images": [
                {
                    "thumb": f"{origin}/img/feed_thumbnail/plain/{did}/{_image_cid(post, n)}@jpeg",
                    "fullsize": f"{origin}/img/feed_fullsize/plain/{did}/{_image_cid(post, n)}@jpeg",
                    "alt": image.alt,
                    "aspectRatio": {"width": image.width, "height": image.height},
                }
                for n, image in enumerate(post.images)
            ],
        }
    return None


def _record(post: _Post) -> dict[str, Any]:
    record: dict[str, Any] = {"$type": POST_COLLECTION, "createdAt": post.created_at, "langs": ["en"]}
    media = _media_record(post)
    quoted = _find(*post.quote) if post.quote else None
    strong_ref = {"uri": _at_uri(quoted), "cid": _record_cid(quoted)} if quoted else None
    if media and strong_ref:
        record["embed"] = {
            "$type": "app.bsky.embed.recordWithMedia",
            "media": media,
            "record": {"$type": "app.bsky.embed.record", "record": strong_ref},
        }
    elif strong_ref:
        record["embed"] = {"$type": "app.bsky.embed.record", "record": strong_ref}
    elif media:
        record["embed"] = media
    record["text"] = post.text
    return record


def _labels(post: _Post) -> list[dict[str, Any]]:
    return [_label(MODERATION_DID, _at_uri(post), val, _indexed_at(post)) for val in post.labels]


def _view_record(post: _Post, origin: str) -> dict[str, Any]:
    """A quoted post, as ``app.bsky.embed.record#viewRecord``."""
    likes, reposts, replies, quotes = post.counts
    media = _media_view(post, origin)
    return {
        "$type": "app.bsky.embed.record#viewRecord",
        "uri": _at_uri(post),
        "cid": _record_cid(post),
        "author": _profile_basic(ACCOUNTS[post.handle], origin),
        "value": _record(post),
        "labels": _labels(post),
        "likeCount": likes,
        "replyCount": replies,
        "repostCount": reposts,
        "quoteCount": quotes,
        "indexedAt": _indexed_at(post),
        "embeds": [media] if media else [],
    }


def _post_view(post: _Post, origin: str) -> dict[str, Any]:
    """``app.bsky.feed.defs#postView``, as a signed-out viewer gets it."""
    likes, reposts, replies, quotes = post.counts
    view: dict[str, Any] = {
        "uri": _at_uri(post),
        "cid": _record_cid(post),
        "author": _profile_basic(ACCOUNTS[post.handle], origin),
        "record": _record(post),
    }
    media = _media_view(post, origin)
    quoted = _find(*post.quote) if post.quote else None
    if media and quoted:
        view["embed"] = {
            "$type": "app.bsky.embed.recordWithMedia#view",
            "record": {"record": _view_record(quoted, origin)},
            "media": media,
        }
    elif quoted:
        view["embed"] = {"$type": "app.bsky.embed.record#view", "record": _view_record(quoted, origin)}
    elif media:
        view["embed"] = media
    view |= {
        "replyCount": replies,
        "repostCount": reposts,
        "likeCount": likes,
        "quoteCount": quotes,
        "indexedAt": _indexed_at(post),
        "viewer": {"threadMuted": False, "embeddingDisabled": False},
        "labels": _labels(post),
    }
    return view


def _thread(post: _Post, origin: str) -> dict[str, Any]:
    if post.status == "blocked":
        did = ACCOUNTS[post.handle].did
        return {
            "thread": {
                "$type": THREAD_BLOCKED,
                "uri": _at_uri(post),
                "blocked": True,
                "author": {"did": did, "viewer": {"blockedBy": True}},
            }
        }
    return {
        "thread": {"$type": THREAD_POST, "post": _post_view(post, origin), "replies": []},
    }


def _find(handle: str, created_at: str) -> _Post:
    return next(p for p in _POSTS if p.handle == handle and p.created_at == created_at)


def _account(actor: str) -> Account | None:
    actor = actor.lower()
    return next((a for a in ACCOUNTS.values() if actor in (a.handle, a.did) and a.resolves), None)


def _post(actor: str, rkey: str) -> _Post | None:
    account = _account(actor)
    if account is None:
        return None
    return next((p for p in _POSTS if p.handle == account.handle and p.rkey == rkey), None)


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------

_SHELL_SCRIPT = """
(async function () {
  const root = document.getElementById("post");
  const say = (text) => { const p = document.createElement("p"); p.textContent = text; root.replaceChildren(p); };
  const actor = root.dataset.actor, rkey = root.dataset.rkey;
  try {
    let did = actor;
    if (!actor.startsWith("did:")) {
      const resolved = await fetch("/xrpc/com.atproto.identity.resolveHandle?handle=" + encodeURIComponent(actor));
      if (!resolved.ok) { say("Profile not found"); return; }
      did = (await resolved.json()).did;
    }
    const uri = "at://" + did + "/app.bsky.feed.post/" + rkey;
    const answer = await fetch("/xrpc/app.bsky.feed.getPostThread?uri=" + encodeURIComponent(uri) +
                               "&depth=6&parentHeight=80");
    const data = await answer.json();
    if (!answer.ok) { say(data.error === "NotFound" ? "Post not found" : "Something went wrong"); return; }
    const thread = data.thread;
    if (thread.$type === "app.bsky.feed.defs#notFoundPost") { say("Post not found"); return; }
    if (thread.$type === "app.bsky.feed.defs#blockedPost") { say("Post blocked"); return; }
    const post = thread.post;
    if ((post.author.labels || []).some((l) => l.val === "!no-unauthenticated")) {
      say("This author has chosen to make their posts visible only to people who are signed in.");
      return;
    }
    const byline = document.createElement("p");
    byline.className = "byline";
    byline.textContent = (post.author.displayName || "") + " @" + post.author.handle;
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = post.record.text;
    root.replaceChildren(byline, text);
    const show = (view) => {
      if (!view) return;
      if (view.$type === "app.bsky.embed.images#view") {
        for (const image of view.images) {
          const img = document.createElement("img");
          img.src = image.thumb; img.alt = image.alt || ""; img.dataset.fullsize = image.fullsize;
          root.append(img);
        }
      } else if (view.$type === "app.bsky.embed.video#view") {
        const video = document.createElement("video");
        video.controls = true; video.playsInline = true; video.poster = view.thumbnail;
        video.dataset.playlist = view.playlist;
        if (video.canPlayType("application/vnd.apple.mpegurl")) video.src = view.playlist;
        root.append(video);
      }
    };
    const embed = post.embed || {};
    if (embed.$type === "app.bsky.embed.recordWithMedia#view") show(embed.media);
    else if (embed.$type !== "app.bsky.embed.record#view") show(embed);
    const quoted = embed.$type === "app.bsky.embed.record#view" ? embed.record
      : embed.$type === "app.bsky.embed.recordWithMedia#view" ? embed.record.record : null;
    if (quoted && quoted.value) {
      const block = document.createElement("blockquote");
      block.textContent = "@" + quoted.author.handle + ": " + quoted.value.text;
      root.append(block);
      (quoted.embeds || []).forEach(show);
    }
  } catch (error) {
    say("Something went wrong");
  } finally {
    document.body.dataset.ready = "1";
  }
})();
"""


def _post_page(origin: str, actor: str, rkey: str) -> str:
    """The web app's shell; for a post signed-out visitors may see, its Open Graph tags too."""
    head = [meta_tag("property", "og:site_name", "Bluesky"), meta_tag("name", "twitter:site", "@bluesky")]
    post = _post(actor, rkey)
    title = "Bluesky"
    if post is not None and post.status == "ok" and not ACCOUNTS[post.handle].labels:
        account = ACCOUNTS[post.handle]
        title = f"{account.display_name} (@{account.handle})"
        head += [
            meta_tag("property", "og:type", "article"),
            meta_tag("property", "og:title", title),
            meta_tag("property", "og:description", post.text),
            meta_tag("property", "og:url", f"{origin}/profile/{account.handle}/post/{post.rkey}"),
            meta_tag("name", "article:published_time", post.created_at),
            f'<link rel="alternate" href="{html.escape(_at_uri(post))}">',
        ]
        view = _media_view(post, origin)
        if view and view["$type"] == "app.bsky.embed.video#view":
            head.append(meta_tag("property", "og:image", view["thumbnail"]))
        elif view:
            head.append(meta_tag("property", "og:image", view["images"][0]["thumb"]))
    body = (
        f'    <main id="post" data-actor="{html.escape(actor)}" data-rkey="{html.escape(rkey)}">'
        "<p>Loading&hellip;</p></main>\n"
        f"    <script>{_SHELL_SCRIPT}</script>"
    )
    return html_document(title, head, body)


def _index_page() -> str:
    items = "\n".join(
        f'      <li><a href="{html.escape(p.path)}">{html.escape(p.path)}</a> &mdash; {html.escape(p.description)}</li>'
        for p in BSKY_POSTS
    )
    return html_document(
        "Bluesky (sample)", [], f"    <h1>Bluesky posts on loopback</h1>\n    <ul>\n{items}\n    </ul>"
    )


def _tagged_jpeg(source: Path, tag: str) -> bytes:
    """``source`` with a JPEG comment (COM segment) right after SOI: a distinct, still valid image."""
    data = source.read_bytes()
    comment = tag.encode()
    return data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]


# --------------------------------------------------------------------------------------------
# The site
# --------------------------------------------------------------------------------------------


class BskySite(LoopbackSite):
    """Bluesky's web app, public AppView, video service and image CDN on one loopback origin."""

    name = "bsky"

    def __init__(self, media_dir: Path, *, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        super().__init__(host=host, port=port, verbose=verbose)
        self.media_dir = Path(media_dir)
        self.hls_dir = self.media_dir / "hls"

    def prepare(self) -> None:
        generate_media(self.media_dir)
        self.hls_dir = generate_hls(self.media_dir)

    @property
    def api_base(self) -> str:
        """What ``MEDIAVAULT_PLATFORM_API=bluesky=...`` names."""
        return self.base_url

    def post_url(self, post: BskyPost) -> str:
        return self.url(post.path)

    # -- routing ---------------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        if exchange.method not in ("GET", "HEAD"):
            exchange.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "MethodNotImplemented"})
            return
        path = exchange.path
        parts = path.strip("/").split("/")
        if path == "/":
            exchange.send_html(HTTPStatus.OK, _index_page())
        elif len(parts) == 4 and parts[0] == "profile" and parts[2] == "post":
            exchange.send_html(HTTPStatus.OK, _post_page(exchange.origin, unquote(parts[1]), unquote(parts[3])))
        elif path == "/xrpc/com.atproto.identity.resolveHandle":
            self._resolve_handle(exchange)
        elif path == "/xrpc/app.bsky.feed.getPostThread":
            self._get_post_thread(exchange)
        elif path.startswith("/xrpc/"):
            self._xrpc_error(exchange, HTTPStatus.NOT_FOUND, "XRPCNotSupported", "XRPCNotSupported")
        elif len(parts) >= 4 and parts[0] == "watch":
            self._watch(exchange, unquote(parts[1]), parts[2], "/".join(parts[3:]))
        elif len(parts) == 5 and parts[0] == "img" and parts[2] == "plain":
            self._image(exchange, parts[1], unquote(parts[3]), parts[4])
        else:
            exchange.send_html(HTTPStatus.NOT_FOUND, html_document("Not found", [], "    <h1>Not found</h1>"))

    # -- XRPC ------------------------------------------------------------------------------

    @staticmethod
    def _xrpc_error(exchange: Exchange, status: int, error: str, message: str, **headers: str) -> None:
        exchange.send_json(status, {"error": error, "message": message}, extra=_CORS | headers)

    def _resolve_handle(self, exchange: Exchange) -> None:
        handle = exchange.arg("handle")
        if not handle:
            self._xrpc_error(exchange, 400, "InvalidRequest", 'Error: Params must have the property "handle"')
            return
        account = ACCOUNTS.get(handle.lower())
        if account is None or not account.resolves:
            self._xrpc_error(exchange, 400, "InvalidRequest", "Unable to resolve handle")
            return
        exchange.send_json(HTTPStatus.OK, {"did": account.did}, extra=_CORS)

    def _get_post_thread(self, exchange: Exchange) -> None:
        uri = exchange.arg("uri")
        if not uri:
            self._xrpc_error(exchange, 400, "InvalidRequest", 'Error: Params must have the property "uri"')
            return
        authority, _, rest = uri.removeprefix("at://").partition("/")
        collection, _, rkey = rest.partition("/")
        if not uri.startswith("at://") or collection != POST_COLLECTION or not rkey:
            self._xrpc_error(exchange, 400, "InvalidRequest", "Error: uri must be a valid at-uri")
            return
        post = _post(authority, rkey)
        if post is None:
            self._xrpc_error(exchange, 400, "NotFound", f"Post not found: {uri}")
            return
        if post.status == "unavailable":
            self._xrpc_error(exchange, 503, "InternalServerError", "Service Unavailable", **{"Retry-After": "5"})
            return
        exchange.send_json(HTTPStatus.OK, _thread(post, exchange.origin), extra=_CORS)

    # -- media -----------------------------------------------------------------------------

    def _watch(self, exchange: Exchange, did: str, video_cid: str, rest: str) -> None:
        known = any(p.video and ACCOUNTS[p.handle].did == did and _video_cid(p) == video_cid for p in _POSTS)
        if not known:
            exchange.send_html(HTTPStatus.NOT_FOUND, html_document("Not found", [], "    <h1>Not found</h1>"))
        elif rest == "thumbnail.jpg":
            self._jpeg(exchange, self.media_dir / POSTER, f"{did}/{video_cid}/thumbnail")
        else:
            serve_hls(exchange, self.hls_dir, MASTER if rest == "playlist.m3u8" else rest)

    def _image(self, exchange: Exchange, preset: str, did: str, name: str) -> None:
        blob, _, fmt = name.partition("@")
        known = any(
            ACCOUNTS[p.handle].did == did and blob in {_image_cid(p, n) for n in range(len(p.images))} for p in _POSTS
        ) or any(a.did == did and blob == cid(did + "#avatar") for a in ACCOUNTS.values())
        if not known or fmt != "jpeg" or preset not in ("feed_fullsize", "feed_thumbnail", "avatar"):
            exchange.send_html(HTTPStatus.NOT_FOUND, html_document("Not found", [], "    <h1>Not found</h1>"))
            return
        source = PHOTO if preset == "feed_fullsize" else POSTER
        self._jpeg(exchange, self.media_dir / source, f"{preset}/{did}/{blob}")

    def _jpeg(self, exchange: Exchange, source: Path, tag: str) -> None:
        body = _tagged_jpeg(source, tag)
        exchange.send_stream(
            io.BytesIO(body),
            len(body),
            "image/jpeg",
            etag=f'"{hashlib.sha256(body).hexdigest()[:16]}"',
            extra={"Cache-Control": "public, max-age=31536000"},
        )


#: Pixel sizes of what the image URLs serve, for tests: full size is the sample photo, thumbnails the poster.
IMAGE_SIZES = {"feed_fullsize": PHOTO_SIZE, "feed_thumbnail": POSTER_SIZE, "avatar": POSTER_SIZE}


def main(argv: list[str] | None = None) -> int:
    """Serve the site in the foreground: ``python -m mediavault_local.samples.bsky``."""
    parser = argparse.ArgumentParser(prog="python -m mediavault_local.samples.bsky", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8124)
    parser.add_argument("--media-dir", type=Path, default=Path(".mediavault/samples"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    with BskySite(args.media_dir, host=args.host, port=args.port, verbose=args.verbose) as site:
        print(f"Bluesky sample on {site.base_url}/")
        print(f"  MEDIAVAULT_PLATFORM_HOSTS=bluesky={site.netloc}")
        print(f"  MEDIAVAULT_PLATFORM_API=bluesky={site.api_base}")
        for post in BSKY_POSTS:
            print(f"  {site.post_url(post)}  -> {post.error or ', '.join(post.media + post.quoted_media) or '-'}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
