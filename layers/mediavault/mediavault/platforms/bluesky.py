"""Bluesky: post links, the public AppView's answers, and what a post's media views hold.

A post link is ``https://bsky.app/profile/<actor>/post/<rkey>`` where the actor is a handle
(``alice.bsky.social``) or a DID (``did:plc:...``, ``did:web:...``). Everything about a post is in
one XRPC answer of the public AppView, ``app.bsky.feed.getPostThread``: the post view carries the
author, the text, the counts, the labels and the *view* of its embed, whose URLs (HLS playlists,
CDN images) are the media. The record's own ``embed`` only names blobs by CID and is not read.

Pure functions: the network is reached only through the ``get_json`` callable passed to
:func:`fast_path`, so everything here is unit-testable.

Errors follow the taxonomy of :mod:`mediavault.errors`:

* ``PostNotFound``: ``resolveHandle`` answers 400 (the handle belongs to no account);
  ``getPostThread`` answers 400 ``NotFound`` or a ``#notFoundPost`` thread.
* ``PostUnavailable``: a ``#blockedPost`` thread; 400 ``BlockedActor``, ``BlockedByActor``,
  ``AccountTakedown`` or ``AccountDeactivated``.
* ``LoginRequired``: 401 / 403, or the author's ``!no-unauthenticated`` self-label (the public
  AppView still returns such posts; bsky.app hides them from signed-out viewers, and so does this).
* ``UpstreamUnavailable`` (retryable): 429 and 5xx.

:func:`fast_path` returns ``None`` (the caller then opens the page in the browser) only when the
answer is unusable rather than negative: the API base has no such method (404), an unexpected
400 error name, a 200 that is not a thread, a handle resolution without a DID. A browser loading
bsky.app talks to its own API and may still get the post; for every definite answer above it
would see the same thing, so the error is raised instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from mediavault.errors import LoginRequired, PostNotFound, PostUnavailable, UpstreamUnavailable
from mediavault.media.candidates import Candidate
from mediavault.platforms.base import PostInfo

__all__ = [
    "API_BASE",
    "HOSTS",
    "NAME",
    "REFRESH_ON_403",
    "canonical_url",
    "fast_path",
    "parse_page_json",
    "parse_thread",
    "post_id",
]

NAME = "bluesky"
#: bsky.app and the hosts of Bluesky's own deployments of the same web app.
HOSTS = frozenset({"bsky.app", "www.bsky.app", "main.bsky.dev", "staging.bsky.app"})
#: The public AppView: answers logged-out reads, as bsky.app does for a signed-out visitor.
API_BASE = "https://public.api.bsky.app"
#: Media URLs are long-lived CDN URLs; a 403 on them is not cured by reading the post again.
REFRESH_ON_403 = False

SITE_NAME = "Bluesky"
POST_COLLECTION = "app.bsky.feed.post"
HLS_CONTENT_TYPE = "application/x-mpegURL"

#: Labels (moderation or self-applied) that put a post behind Bluesky's adult/graphic content warning.
SENSITIVE_LABELS = frozenset({"porn", "sexual", "sexual-figurative", "nudity", "graphic-media", "gore"})
#: The author's self-label: their content is shown only to signed-in viewers.
NO_UNAUTHENTICATED = "!no-unauthenticated"
#: What the AppView shows in place of a handle that no longer verifies.
INVALID_HANDLE = "handle.invalid"

THREAD_POST = "app.bsky.feed.defs#threadViewPost"
THREAD_NOT_FOUND = "app.bsky.feed.defs#notFoundPost"
THREAD_BLOCKED = "app.bsky.feed.defs#blockedPost"
IMAGES_VIEW = "app.bsky.embed.images#view"
VIDEO_VIEW = "app.bsky.embed.video#view"
EXTERNAL_VIEW = "app.bsky.embed.external#view"
RECORD_VIEW = "app.bsky.embed.record#view"
RECORD_WITH_MEDIA_VIEW = "app.bsky.embed.recordWithMedia#view"
VIEW_RECORD = "app.bsky.embed.record#viewRecord"
VIEW_NOT_FOUND = "app.bsky.embed.record#viewNotFound"
VIEW_BLOCKED = "app.bsky.embed.record#viewBlocked"
VIEW_DETACHED = "app.bsky.embed.record#viewDetached"

# AT Protocol syntax (atproto.com/specs): handles are DNS names, DIDs use the methods Bluesky
# supports (plc, web), record keys are 1-512 characters of [A-Za-z0-9._:~-] other than "." and "..".
_HANDLE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-z0-9._%:-]*[a-z0-9._-])$")
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
_POST_PATH = re.compile(r"^/profile/(?P<actor>[^/]+)/post/(?P<rkey>[^/]+)/?$")
_AT_URI = re.compile(r"^at://(?P<authority>[^/?#]+)/(?P<collection>[^/?#]+)/(?P<rkey>[^/?#]+)$")

_GIF_HOSTS = ("tenor.com", "giphy.com")
_IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
# Preference of an image's variants: the CDN's full-size rendition before its feed thumbnail.
_FULLSIZE, _THUMB = 1, 0

GetJson = Callable[[str], tuple[int, Any]]


# --------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------


def post_id(path: str) -> str | None:
    """``"<actor>/<rkey>"`` (actor lower-cased) for a post path, ``None`` for any other path."""
    match = _POST_PATH.match(path.split("?", 1)[0].split("#", 1)[0])
    if not match:
        return None
    actor = _actor(unquote(match["actor"]))
    rkey = unquote(match["rkey"])
    if actor is None or not _valid_rkey(rkey):
        return None
    return f"{actor}/{rkey}"


def canonical_url(post_id: str) -> str:
    """The bsky.app link of a post id (``"<actor>/<rkey>"``)."""
    actor, rkey = _split_id(post_id)
    return f"https://bsky.app/profile/{actor}/post/{rkey}"


def at_uri(did_or_handle: str, rkey: str) -> str:
    return f"at://{did_or_handle}/{POST_COLLECTION}/{rkey}"


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


def fast_path(post_id: str, api_base: str, get_json: GetJson) -> PostInfo | None:
    """Read a post from the AppView at ``api_base``: resolve the handle, then ``getPostThread``.

    ``get_json(url)`` returns ``(status, parsed JSON body or None)``; its transport failures are
    the caller's to map. Raises the taxonomy errors listed in the module's docstring (and
    ``ValueError`` for a ``post_id`` that :func:`post_id` would not have produced); returns
    ``None`` only for an answer a browser could do better with.
    """
    actor, rkey = _split_id(post_id)
    base = api_base.rstrip("/")
    url = canonical_url(post_id)
    did = actor if actor.startswith("did:") else _resolve_handle(actor, base, get_json, url)
    if did is None:
        return None
    uri = at_uri(did, rkey)
    query = urlencode({"uri": uri, "depth": 0, "parentHeight": 0})
    status, data = get_json(f"{base}/xrpc/app.bsky.feed.getPostThread?{query}")
    if status != 200:
        if status == 400:
            _raise_for_xrpc_error(data, uri, url)
        _raise_for_status(status, url, "getPostThread")
        return None
    try:
        return parse_thread(data, url)
    except ValueError:
        return None


def parse_thread(data: dict[str, Any], url: str) -> PostInfo:
    """The post of a ``getPostThread`` answer.

    Raises ``PostNotFound`` (``#notFoundPost``), ``PostUnavailable`` (``#blockedPost``) and
    ``LoginRequired`` (an author who hides from signed-out viewers); ``ValueError`` when ``data``
    is not a thread answer.
    """
    thread = data.get("thread") if isinstance(data, dict) else None
    if not isinstance(thread, dict):
        raise ValueError("not an app.bsky.feed.getPostThread answer: no thread")
    kind = thread.get("$type")
    uri = _str(thread.get("uri")) or url
    if kind == THREAD_NOT_FOUND or thread.get("notFound") is True:
        raise PostNotFound(f"The Bluesky post {uri} does not exist or was deleted.", url=url)
    if kind == THREAD_BLOCKED or thread.get("blocked") is True:
        raise PostUnavailable(f"Bluesky withholds the post {uri}: a block between accounts hides it.", url=url)
    post = thread.get("post")
    if kind not in (None, THREAD_POST) or not isinstance(post, dict):
        raise ValueError(f"not a thread view post: {kind!r}")
    return _post_info(post, url)


def parse_page_json(response_url: str, data: Any, post_id: str) -> PostInfo | None:
    """What a JSON answer the bsky.app page received says about the post ``post_id``.

    Reads ``getPostThread`` (the call the post page makes) and ``getPosts`` answers about this
    post; ``None`` for any other JSON (other methods, other posts, other shapes). A thread answer
    that says the post is missing, blocked or hidden raises like :func:`parse_thread`.
    """
    actor, rkey = _split_id(post_id)
    parts = urlsplit(response_url)
    method = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if "/xrpc/" not in parts.path or not isinstance(data, dict):
        return None
    if method == "app.bsky.feed.getPostThread":
        asked = _at_uri((parse_qs(parts.query).get("uri") or [""])[0])
        if asked is not None and not _same_post(actor, rkey, asked[0], asked[2], asked[1]):
            return None
        if "error" in data and "thread" not in data:
            if data.get("error") == "NotFound":
                raise PostNotFound(f"The Bluesky post {canonical_url(post_id)} does not exist or was deleted.")
            return None
        thread = data.get("thread")
        post = thread.get("post") if isinstance(thread, dict) else None
        if isinstance(post, dict) and not _is_post(post, actor, rkey):
            return None
        try:
            return parse_thread(data, canonical_url(post_id))
        except ValueError:
            return None
    if method == "app.bsky.feed.getPosts":
        for post in data.get("posts") or []:
            if isinstance(post, dict) and _is_post(post, actor, rkey):
                try:
                    return _post_info(post, canonical_url(post_id))
                except ValueError:
                    return None
    return None


# --------------------------------------------------------------------------------------------
# Post views
# --------------------------------------------------------------------------------------------


def _post_info(post: dict[str, Any], url: str) -> PostInfo:
    """A ``app.bsky.feed.defs#postView`` as a :class:`PostInfo`."""
    parsed = _at_uri(_str(post.get("uri")) or "")
    if parsed is None or parsed[1] != POST_COLLECTION:
        raise ValueError(f"not a post view: uri {post.get('uri')!r}")
    authority, _, rkey = parsed
    author = _dict(post.get("author"))
    record = _dict(post.get("record"))
    did = _str(author.get("did")) or authority
    handle = _str(author.get("handle"))
    handle = handle.lower() if handle and handle != INVALID_HANDLE else None
    author_labels = _label_values(author.get("labels"))
    if NO_UNAUTHENTICATED in author_labels:
        raise LoginRequired(f"The author of {url} shows their posts only to signed-in Bluesky users.", url=url)
    labels = _label_values(post.get("labels")) | _self_labels(record) | author_labels

    own, quoted_view = _split_embed(_dict(post.get("embed")))
    candidates, items, thumbnail = _media(own, first_item=0, quoted=False)
    extra: dict[str, Any] = {"uri": post["uri"]}
    for name, value in (
        ("cid", post.get("cid")),
        ("indexed_at", post.get("indexedAt")),
        ("langs", record.get("langs")),
    ):
        if value:
            extra[name] = value
    if labels:
        extra["labels"] = sorted(labels)
    external = _dict(own.get("external")) if own.get("$type") == EXTERNAL_VIEW else {}
    if external:
        extra["external"] = {k: external[k] for k in ("uri", "title", "description") if external.get(k)}
    reply = _dict(_dict(record.get("reply")).get("parent"))
    if _str(reply.get("uri")):
        extra["reply_to"] = reply["uri"]

    quoted_post_id: str | None = None
    if quoted_view:
        quoted_post_id, quoted_extra, q_cands, q_items, q_thumb = _quoted(quoted_view, first_item=len(items))
        if quoted_extra:
            extra["quoted"] = quoted_extra
        candidates += q_cands
        items += q_items
        thumbnail = thumbnail or q_thumb
    if items:
        extra["media"] = items
    if not thumbnail and external:
        thumbnail = _str(external.get("thumb"))

    display_name = _str(author.get("displayName"))
    shown = handle or did
    return PostInfo(
        url=f"https://bsky.app/profile/{shown}/post/{rkey}",
        platform=NAME,
        post_id=f"{did}/{rkey}",
        title=f"{display_name} (@{shown})" if display_name else f"@{shown}",
        caption=_str(record.get("text")),
        author_handle=handle,
        author_name=display_name,
        author_id=did,
        posted_at=_str(record.get("createdAt")),
        site_name=SITE_NAME,
        thumbnail_url=thumbnail,
        counts=_counts(post),
        sensitive=bool(labels & SENSITIVE_LABELS),
        quoted_post_id=quoted_post_id,
        candidates=candidates,
        extra=extra,
    )


def _split_embed(embed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the post's own media view, the quoted record's view) of a post's embed view."""
    kind = embed.get("$type")
    if kind == RECORD_WITH_MEDIA_VIEW:
        record = _dict(embed.get("record"))
        # recordWithMedia#view.record is a record#view, whose .record is the quoted post.
        quoted = _dict(record.get("record")) if "record" in record else record
        return _dict(embed.get("media")), quoted
    if kind == RECORD_VIEW:
        return {}, _dict(embed.get("record"))
    return embed, {}


def _quoted(
    view: dict[str, Any], *, first_item: int
) -> tuple[str | None, dict[str, Any], list[Candidate], list[dict[str, Any]], str | None]:
    """The quoted post of a record view: its id, a summary, and its media (numbered on)."""
    parsed = _at_uri(_str(view.get("uri")) or "")
    if parsed is None or parsed[1] != POST_COLLECTION:
        return None, {}, [], [], None  # a feed, list or starter pack: no post, no media
    author = _dict(view.get("author"))
    did = _str(author.get("did")) or parsed[0]
    summary: dict[str, Any] = {"uri": view["uri"]}
    kind = view.get("$type")
    if kind == VIEW_NOT_FOUND or view.get("notFound") is True:
        summary["status"] = "not-found"
    elif kind == VIEW_BLOCKED or view.get("blocked") is True:
        summary["status"] = "blocked"
    elif kind == VIEW_DETACHED or view.get("detached") is True:
        summary["status"] = "detached"  # the quoted author removed the quote
    if "status" in summary:
        return f"{did}/{parsed[2]}", summary, [], [], None

    value = _dict(view.get("value"))
    handle = _str(author.get("handle"))
    summary |= {
        "author_handle": handle if handle != INVALID_HANDLE else None,
        "author_name": _str(author.get("displayName")),
        "text": _str(value.get("text")),
        "posted_at": _str(value.get("createdAt")),
    }
    author_labels = _label_values(author.get("labels"))
    labels = _label_values(view.get("labels")) | _self_labels(value) | author_labels
    summary["sensitive"] = bool(labels & SENSITIVE_LABELS)
    if NO_UNAUTHENTICATED in author_labels:
        # bsky.app hides such a quote from signed-out viewers: so is its media here.
        summary["status"] = "login-required"
        return f"{did}/{parsed[2]}", summary, [], [], None

    candidates: list[Candidate] = []
    items: list[dict[str, Any]] = []
    thumbnail: str | None = None
    for embed in view.get("embeds") or []:
        own, _ = _split_embed(_dict(embed))  # a quote of a quote: only the quoted post's own media
        found, found_items, found_thumb = _media(own, first_item=first_item + len(items), quoted=True)
        candidates += found
        items += found_items
        thumbnail = thumbnail or found_thumb
    return f"{did}/{parsed[2]}", summary, candidates, items, thumbnail


def _media(
    view: dict[str, Any], *, first_item: int, quoted: bool
) -> tuple[list[Candidate], list[dict[str, Any]], str | None]:
    """Candidates of one media view, one item per image / video / GIF; and the first poster."""
    kind = view.get("$type")
    candidates: list[Candidate] = []
    items: list[dict[str, Any]] = []
    if kind == VIDEO_VIEW:
        playlist = _str(view.get("playlist"))
        thumb = _str(view.get("thumbnail"))
        if playlist:
            candidates.append(
                Candidate(
                    url=playlist,
                    kind="video",
                    source="platform",
                    content_type=HLS_CONTENT_TYPE,
                    poster=thumb,
                    item=first_item,
                    quoted=quoted,
                )
            )
            items.append(
                _item(
                    first_item, "video", quoted, view, cid=_str(view.get("cid")), presentation=view.get("presentation")
                )
            )
        return candidates, items, thumb
    if kind == IMAGES_VIEW:
        poster: str | None = None
        for image in view.get("images") or []:
            image = _dict(image)
            fullsize, thumb = _str(image.get("fullsize")), _str(image.get("thumb"))
            if not fullsize and not thumb:
                continue
            item = first_item + len(items)
            for url, preference in ((fullsize, _FULLSIZE), (thumb, _THUMB)):
                if url:
                    candidates.append(
                        Candidate(
                            url=url,
                            kind="photo",
                            source="platform",
                            content_type=_image_type(url),
                            poster=thumb,
                            item=item,
                            preference=preference,
                            quoted=quoted,
                        )
                    )
            items.append(_item(item, "photo", quoted, image))
            poster = poster or thumb or fullsize
        return candidates, items, poster
    if kind == EXTERNAL_VIEW:
        external = _dict(view.get("external"))
        uri, thumb = _str(external.get("uri")), _str(external.get("thumb"))
        gif = _gif(uri) if uri else None
        if gif is None or uri is None:
            return [], [], None
        width, height = gif
        candidates.append(
            Candidate(
                url=uri,
                kind="gif",
                source="platform",
                content_type="image/gif",
                width=width,
                height=height,
                poster=thumb,
                item=first_item,
                quoted=quoted,
            )
        )
        items.append(_item(first_item, "gif", quoted, {"alt": external.get("description")}))
        return candidates, items, thumb
    return [], [], None


def _item(index: int, kind: str, quoted: bool, view: dict[str, Any], **more: Any) -> dict[str, Any]:
    """What ``extra["media"]`` keeps of one item: the alt text and the aspect ratio (not a size)."""
    entry: dict[str, Any] = {"item": index, "kind": kind, "quoted": quoted}
    alt = _str(view.get("alt"))
    if alt:
        entry["alt"] = alt
    ratio = _dict(view.get("aspectRatio"))
    if isinstance(ratio.get("width"), int) and isinstance(ratio.get("height"), int):
        entry["aspect_ratio"] = {"width": ratio["width"], "height": ratio["height"]}
    entry |= {k: v for k, v in more.items() if v}
    return entry


def _gif(uri: str) -> tuple[int | None, int | None] | None:
    """``(width, height)`` of a Tenor/Giphy ``.gif`` link (Tenor names them ``ww``/``hh``), else ``None``."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not parts.path.lower().endswith(".gif"):
        return None
    if not any(host == h or host.endswith("." + h) for h in _GIF_HOSTS):
        return None
    query = parse_qs(parts.query)
    return _positive((query.get("ww") or [""])[0]), _positive((query.get("hh") or [""])[0])


def _counts(post: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, name in (("likeCount", "likes"), ("repostCount", "reposts"), ("replyCount", "replies"),
                      ("quoteCount", "quotes")):  # fmt: skip
        value = post.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            counts[name] = value
    return counts


def _label_values(labels: Any) -> set[str]:
    """Values of ``com.atproto.label.defs#label`` entries, negations (``neg``) left out."""
    values: set[str] = set()
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict) and isinstance(label.get("val"), str) and not label.get("neg"):
            values.add(label["val"])
    return values


def _self_labels(record: dict[str, Any]) -> set[str]:
    """A record's ``com.atproto.label.defs#selfLabels``."""
    return _label_values(_dict(record.get("labels")).get("values"))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _resolve_handle(handle: str, base: str, get_json: GetJson, url: str) -> str | None:
    status, data = get_json(f"{base}/xrpc/com.atproto.identity.resolveHandle?{urlencode({'handle': handle})}")
    if status == 200:
        did = _str(data.get("did")) if isinstance(data, dict) else None
        return did if did and _DID.match(did.lower()) else None
    if status == 400 and isinstance(data, dict) and data.get("error"):
        raise PostNotFound(f"The Bluesky handle @{handle} does not belong to any account.", url=url, handle=handle)
    _raise_for_status(status, url, "resolveHandle")
    return None


def _raise_for_xrpc_error(data: Any, uri: str, url: str) -> None:
    error = data.get("error") if isinstance(data, dict) else None
    if error == "NotFound":
        raise PostNotFound(f"The Bluesky post {uri} does not exist or was deleted.", url=url)
    if error in ("BlockedActor", "BlockedByActor"):
        raise PostUnavailable(f"Bluesky withholds the post {uri}: a block between accounts hides it.", url=url)
    if error in ("AccountTakedown", "AccountDeactivated"):
        raise PostUnavailable(f"The account that posted {uri} is unavailable ({error}).", url=url)


def _raise_for_status(status: int, url: str, method: str) -> None:
    if status in (401, 403):
        raise LoginRequired(f"Bluesky shows {url} only to signed-in users ({method} answered {status}).", url=url)
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(f"Bluesky's API did not answer {method} for {url} (status {status}).", url=url)


def _split_id(post_id: str) -> tuple[str, str]:
    actor, sep, rkey = post_id.rpartition("/")
    if not sep or _actor(actor) != actor or not _valid_rkey(rkey):
        raise ValueError(f"{post_id!r} is not a Bluesky post id (<actor>/<rkey>)")
    return actor, rkey


def _actor(value: str) -> str | None:
    actor = value.strip().lower()
    return actor if _HANDLE.match(actor) or _DID.match(actor) else None


def _valid_rkey(rkey: str) -> bool:
    return bool(_RKEY.match(rkey)) and rkey not in (".", "..")


def _at_uri(uri: str) -> tuple[str, str, str] | None:
    """``(authority, collection, rkey)`` of an ``at://`` record URI."""
    match = _AT_URI.match(uri)
    return (match["authority"].lower(), match["collection"], match["rkey"]) if match else None


def _same_post(actor: str, rkey: str, authority: str, record_key: str, collection: str) -> bool:
    if collection != POST_COLLECTION or record_key != rkey:
        return False
    # A page that resolved the handle asks by DID (and a handle cannot be checked against a DID
    # here): only two DIDs or two handles can be told apart; the post view's author settles the rest.
    return authority == actor or actor.startswith("did:") != authority.startswith("did:")


def _is_post(post: dict[str, Any], actor: str, rkey: str) -> bool:
    parsed = _at_uri(_str(post.get("uri")) or "")
    if parsed is None or parsed[1] != POST_COLLECTION or parsed[2] != rkey:
        return False
    author = _dict(post.get("author"))
    known = {parsed[0], (_str(author.get("did")) or "").lower(), (_str(author.get("handle")) or "").lower()}
    return actor in known


def _image_type(url: str) -> str | None:
    _, at, fmt = urlsplit(url).path.rpartition("@")
    return _IMAGE_TYPES.get(fmt.lower()) if at else None


def _positive(value: str) -> int | None:
    return int(value) if value.isdigit() and int(value) > 0 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
