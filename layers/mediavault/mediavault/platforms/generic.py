"""Generic extraction: what any page declares about its media, and JSON a page's player fetched.

Input is a plain snapshot of the DOM (collected in the browser by :data:`DOM_SNAPSHOT_JS`) and the
JSON bodies the page received; output is a :class:`PostInfo`. No browser, no network: unit-testable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from mediavault.media.candidates import Candidate
from mediavault.platforms.base import PostInfo

# Runs in the page; returns only JSON-serialisable data.
DOM_SNAPSHOT_JS = """
() => {
  const meta = {};
  for (const m of document.querySelectorAll('meta[property], meta[name], meta[itemprop]')) {
    const key = (m.getAttribute('property') || m.getAttribute('name') || m.getAttribute('itemprop') || '')
      .toLowerCase();
    if (!key) continue;
    (meta[key] = meta[key] || []).push(m.getAttribute('content') || '');
  }
  const num = (v) => { const n = parseInt(v, 10); return Number.isFinite(n) && n > 0 ? n : null; };
  const videos = [...document.querySelectorAll('video')].map((v) => ({
    src: v.currentSrc || v.getAttribute('src') || null,
    poster: v.poster || null,
    width: v.videoWidth || num(v.getAttribute('width')),
    height: v.videoHeight || num(v.getAttribute('height')),
    sources: [...v.querySelectorAll('source')].map((s) => ({
      src: s.src || null,
      type: s.getAttribute('type'),
      res: s.getAttribute('data-res') || s.getAttribute('res') || s.getAttribute('size') ||
           s.getAttribute('label') || s.getAttribute('data-quality'),
      width: num(s.getAttribute('width') || s.getAttribute('data-width')),
      height: num(s.getAttribute('height') || s.getAttribute('data-height')),
    })),
  }));
  const jsonld = [...document.querySelectorAll('script[type="application/ld+json"]')].map((s) => s.textContent);
  return { url: location.href, title: document.title || null, meta, videos, jsonld };
}
"""

_RES = re.compile(r"(\d{3,4})\s*[pP]\b|(\d{3,4})x(\d{3,4})")
_VIDEO_EXT = re.compile(r"\.(mp4|m4v|mov|webm)(\?|$)", re.IGNORECASE)


def parse_dom(snapshot: dict[str, Any]) -> PostInfo:
    """Candidates and metadata from a DOM snapshot (``og:*``, ``twitter:*``, JSON-LD, ``<video>``)."""
    base = str(snapshot.get("url") or "")
    meta: dict[str, list[str]] = {k: [v for v in vs if v] for k, vs in (snapshot.get("meta") or {}).items()}

    def first(*names: str) -> str | None:
        for name in names:
            for value in meta.get(name, []):
                if value.strip():
                    return value.strip()
        return None

    def absolute(url: str | None) -> str | None:
        return urljoin(base, url) if url else None

    candidates: list[Candidate] = []
    og_video = first("og:video:secure_url", "og:video:url", "og:video")
    og_type = (first("og:video:type") or "").lower()
    # og:video often names a player page (text/html); only a declared video type (or an HLS
    # playlist, which the worker remuxes) is media.
    if og_video and (
        og_type.startswith("video/") or "mpegurl" in og_type or (not og_type and _VIDEO_EXT.search(og_video))
    ):
        candidates.append(
            Candidate(
                url=absolute(og_video) or og_video,
                source="og:video",
                content_type=og_type or None,
                width=_int(first("og:video:width")),
                height=_int(first("og:video:height")),
            )
        )
    stream = first("twitter:player:stream")
    if stream:
        candidates.append(
            Candidate(
                url=absolute(stream) or stream,
                source="twitter:player:stream",
                content_type=first("twitter:player:stream:content_type"),
                width=_int(first("twitter:player:width")),
                height=_int(first("twitter:player:height")),
            )
        )

    # A page's og:image is its media only when nothing moves (a photo post); rank() drops it otherwise.
    og_image = first("og:image:secure_url", "og:image:url", "og:image")
    if og_image:
        candidates.append(
            Candidate(
                url=absolute(og_image) or og_image,
                kind="photo",
                source="og:image",
                content_type=first("og:image:type"),
                width=_int(first("og:image:width")),
                height=_int(first("og:image:height")),
            )
        )

    posters: list[str] = []
    for video in snapshot.get("videos") or []:
        if video.get("poster"):
            posters.append(absolute(video["poster"]) or video["poster"])
        sources = video.get("sources") or []
        for source in sources:
            if not source.get("src"):
                continue
            width, height = _resolution(source.get("res"), source.get("width"), source.get("height"))
            candidates.append(
                Candidate(
                    url=absolute(source["src"]) or source["src"],
                    source="video-tag",
                    content_type=source.get("type"),
                    width=width,
                    height=height,
                    poster=absolute(video.get("poster")),
                )
            )
        if video.get("src") and not video["src"].startswith(("blob:", "data:")):
            candidates.append(
                Candidate(
                    url=absolute(video["src"]) or video["src"],
                    source="video-tag",
                    width=video.get("width"),
                    height=video.get("height"),
                    poster=absolute(video.get("poster")),
                )
            )

    info = PostInfo(
        url=base,
        title=first("og:title", "twitter:title") or snapshot.get("title"),
        caption=first("og:description", "twitter:description", "description"),
        author_handle=_handle(first("twitter:creator", "article:author:username")),
        author_name=first("author", "article:author"),
        posted_at=first("article:published_time", "og:published_time", "datepublished", "uploaddate"),
        site_name=first("og:site_name"),
        thumbnail_url=absolute(first("og:image:secure_url", "og:image", "twitter:image"))
        or (posters[0] if posters else None),
        candidates=candidates,
    )
    for block in snapshot.get("jsonld") or []:
        info = info.merge(parse_jsonld(block, base))
    return info


def parse_jsonld(text: str, base: str) -> PostInfo:
    """``VideoObject`` / ``ImageObject`` entries of a JSON-LD block (``@graph`` and lists included)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return PostInfo(url=base)
    info = PostInfo(url=base)
    for node in _walk(data):
        types = node.get("@type")
        types = types if isinstance(types, list) else [types]
        if "VideoObject" in types:
            url = _str(node.get("contentUrl")) or _str(
                node.get("embedUrl") if _VIDEO_EXT.search(_str(node.get("embedUrl")) or "") else None
            )
            author: dict[str, Any] = node["author"] if isinstance(node.get("author"), dict) else {}
            found = PostInfo(
                url=base,
                title=_str(node.get("name")),
                caption=_str(node.get("description")),
                posted_at=_str(node.get("uploadDate")) or _str(node.get("datePublished")),
                thumbnail_url=_abs(base, _first_str(node.get("thumbnailUrl"))),
                author_name=_str(author.get("name")),
                author_handle=_handle(_str(author.get("alternateName"))),
                candidates=[
                    Candidate(
                        url=_abs(base, url) or url,
                        source="jsonld",
                        content_type=_str(node.get("encodingFormat")),
                        width=_int(node.get("width")),
                        height=_int(node.get("height")),
                        bitrate=_bitrate(node.get("bitrate")),
                    )
                ]
                if url
                else [],
            )
            info = info.merge(found)
    return info


def parse_json_media(data: Any, base: str) -> PostInfo:
    """Media described in a JSON body a page received (an API answer its player used).

    Recognised shapes are those common to player APIs: a media entry with a ``variants`` list of
    ``{url, bitrate, content_type, width, height}``, or single entries with a video ``url`` and
    ``bitrate``/``content_type``. Author and text are read from the object that holds the media.
    """
    info = PostInfo(url=base)
    item = 0
    for node in _walk(data):
        variants = node.get("variants")
        if isinstance(variants, list) and variants and all(isinstance(v, dict) for v in variants):
            poster = _abs(base, _str(node.get("poster") or node.get("thumbnail") or node.get("preview_image")))
            kind = "gif" if str(node.get("type", "")).lower() in ("gif", "animated_gif") else "video"
            cands = []
            for variant in variants:
                url = _str(variant.get("url") or variant.get("src"))
                if not url:
                    continue
                cands.append(
                    Candidate(
                        url=_abs(base, url) or url,
                        kind=kind,
                        source="network-json",
                        content_type=_str(variant.get("content_type") or variant.get("type")),
                        width=_int(variant.get("width")),
                        height=_int(variant.get("height")),
                        bitrate=_bitrate(variant.get("bitrate") or variant.get("bit_rate")),
                        poster=poster,
                        item=item,
                    )
                )
            if cands:
                info = info.merge(PostInfo(url=base, thumbnail_url=poster, candidates=cands))
                item += 1
    for node in _walk(data):
        author = node.get("author") or node.get("user")
        if isinstance(author, dict) and ("text" in node or "caption" in node or "full_text" in node):
            info = info.merge(
                PostInfo(
                    url=base,
                    post_id=_id(node.get("id_str"), node.get("id")),
                    caption=_str(node.get("text") or node.get("full_text") or node.get("caption")),
                    posted_at=_str(node.get("created_at") or node.get("createdAt")),
                    author_handle=_handle(
                        _str(author.get("handle") or author.get("screen_name") or author.get("username"))
                    ),
                    author_name=_str(author.get("name") or author.get("display_name")),
                )
            )
            break
    return info


def _walk(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 12:
        return
    if isinstance(data, dict):
        yield data
        for value in data.values():
            yield from _walk(value, depth + 1)
    elif isinstance(data, list):
        for value in data:
            yield from _walk(value, depth + 1)


def _resolution(res: Any, width: Any, height: Any) -> tuple[int | None, int | None]:
    w, h = _int(width), _int(height)
    if (w and h) or not res:
        return w, h
    match = _RES.search(str(res))
    if not match:
        return w, h
    if match.group(1):
        lines = int(match.group(1))
        return round(lines * 16 / 9), lines
    return int(match.group(2)), int(match.group(3))


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip().split(".")[0]) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number and number > 0 else None


def _bitrate(value: Any) -> int | None:
    if isinstance(value, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)", value)
        if not match:
            return None
        scale = {"k": 1_000, "m": 1_000_000}.get(match.group(2).lower(), 1)
        return int(float(match.group(1)) * scale) or None
    return _int(value)


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _id(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if _str(value):
            return _str(value)
    return None


def _first_str(value: Any) -> str | None:
    if isinstance(value, list):
        return next((v for v in (_str(x) for x in value) if v), None)
    return _str(value)


def _abs(base: str, url: str | None) -> str | None:
    return urljoin(base, url) if url else None


def _handle(value: str | None) -> str | None:
    return value.strip().lstrip("@") or None if value else None
