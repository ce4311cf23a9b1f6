"""X (formerly Twitter): recognising post URLs, and parsing what X says about a post.

Two sources describe a post, and both are parsed here into the same :class:`PostInfo`:

* the public **syndication** endpoint (``cdn.syndication.twimg.com/tweet-result``), which the
  embedded-tweet widget reads without a login. It wants a ``token`` derived from the post id
  (:func:`syndication_token`). It is the fast path: one small JSON answer, no browser. It knows
  nothing of protected or sensitive posts (it answers 404 or ``{}``), so those go to the browser.
* the **GraphQL** answers the post page itself fetches in the browser: ``TweetResultByRestId``
  (the logged-out page) and ``TweetDetail`` (the logged-in conversation view). They are the
  authority on why a post cannot be read (protected, sensitive, deleted, missing).

Media entities look the same in both: ``type`` (``photo`` / ``video`` / ``animated_gif``),
``media_url_https`` (a photo, or a video's poster), ``original_info`` and, for moving media,
``video_info.variants`` (several mp4 renditions plus an HLS playlist). Photos come in named sizes
(``?format=jpg&name=orig``...), offered here as a fallback chain of candidates for the same item.

Pure functions: no network and no browser; the caller passes what it fetched.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mediavault.errors import LoginRequired, PostNotFound, PostPrivate, PostUnavailable, UpstreamUnavailable
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
    "parse_syndication",
    "post_id",
    "syndication_token",
    "syndication_url",
]

NAME = "x"
SITE_NAME = "X"

_MIRRORS = ("fxtwitter.com", "vxtwitter.com", "fixupx.com", "fixvx.com")
#: Hosts whose status URLs are X posts: X itself (and its old name), and the embed-fixing mirrors
#: people share links through (their ``d.`` hosts redirect straight to the media).
HOSTS: frozenset[str] = frozenset(
    [f"{prefix}{host}" for host in ("x.com", "twitter.com") for prefix in ("", "www.", "mobile.")]
    + [f"{prefix}{host}" for host in _MIRRORS for prefix in ("", "www.", "d.")]
)
API_BASE = "https://cdn.syndication.twimg.com"
#: X's media URLs are signed and short-lived: a 403 on download means "extract again for a fresh URL".
REFRESH_ON_403 = True

#: ``get_json(url) -> (HTTP status, parsed JSON or None)``
GetJson = Callable[[str], tuple[int, Any]]

_STATUS_PATH = re.compile(
    r"^/(?:i/web/status|i/status|[A-Za-z0-9_]{1,50}/status(?:es)?)/(?P<id>\d{1,25})"
    r"(?:/(?:video|photo)/\d{1,2})?/?$"
)
_VARIANT_SIZE = re.compile(r"/vid/(?:[^/?#]+/)*?(\d{2,5})x(\d{2,5})/")
_PHOTO_EXTENSIONS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
#: Photo sizes X serves for every picture, best first: (name, preference, longest side or None).
_PHOTO_SIZES: tuple[tuple[str, int, int | None], ...] = (("orig", 3, None), ("4096x4096", 2, 4096), ("large", 1, 2048))
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_LEGACY_DATE = re.compile(
    r"^\w{3} (?P<mon>\w{3}) (?P<day>\d{1,2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) (?P<tz>[+-]\d{4}) (?P<year>\d{4})$"
)
_GRAPHQL_OPERATIONS = ("TweetResultByRestId", "TweetDetail")
_TITLE_LENGTH = 100


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


def post_id(path: str) -> str | None:
    """The status id in a post path (``/<handle>/status/<id>``, ``/i/status/<id>``, ``/i/web/status/<id>``,
    optionally followed by ``/video/<n>``, ``/photo/<n>``, ``/`` or a query); None for any other page."""
    path = path.split("#", 1)[0].split("?", 1)[0]
    match = _STATUS_PATH.match(path)
    return match.group("id") if match else None


def canonical_url(post_id: str) -> str:
    """The one URL of a post, whatever handle or mirror it was shared under."""
    return f"https://x.com/i/status/{post_id}"


def syndication_token(post_id: str) -> str:
    """The ``token`` the syndication endpoint checks, as the embed widget computes it in JavaScript:
    ``((Number(id) / 1e15) * Math.PI).toString(36).replace(/(0+|\\.)/g, "")``."""
    if not post_id.isdecimal():
        raise ValueError(f"not a post id: {post_id!r}")
    text = _js_radix_string((float(post_id) / 1e15) * math.pi, 36)
    return text.replace("0", "").replace(".", "")


def syndication_url(post_id: str, api_base: str) -> str:
    return f"{api_base.rstrip('/')}/tweet-result?id={post_id}&token={syndication_token(post_id)}&lang=en"


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_TWO_POW_53 = float(2**53)


def _js_radix_string(value: float, radix: int) -> str:
    """``Number.prototype.toString(radix)`` for a non-decimal radix, digit for digit as V8 writes it.

    The fraction gets only as many digits as the double can tell apart: digits are produced while
    the remainder exceeds half the gap to the next double (``delta``, scaled with every digit), and
    the last digit is rounded half to even, carrying into earlier digits and into the integer part.
    Integer digits beyond the 53 bits a double holds are written as zeros.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    negative = value < 0
    value = abs(value)
    integer = float(math.floor(value))
    fraction = value - integer
    delta = max(0.5 * (math.nextafter(value, math.inf) - value), math.ulp(0.0))
    fraction_digits: list[int] = []
    if fraction >= delta:
        while True:
            fraction *= radix
            delta *= radix
            digit = int(fraction)
            fraction_digits.append(digit)
            fraction -= digit
            if (fraction > 0.5 or (fraction == 0.5 and digit & 1)) and fraction + delta > 1:
                # Round up; digits that overflow are dropped, and the carry may reach the integer.
                while True:
                    if not fraction_digits:
                        integer += 1
                        break
                    last = fraction_digits.pop()
                    if last + 1 < radix:
                        fraction_digits.append(last + 1)
                        break
                break
            if not fraction >= delta:
                break
    integer_digits: list[str] = []
    while integer / radix >= _TWO_POW_53:
        integer /= radix
        integer_digits.append("0")
    while True:
        remainder = math.fmod(integer, radix)
        integer_digits.append(_DIGITS[int(remainder)])
        integer = (integer - remainder) / radix
        if not integer > 0:
            break
    text = "".join(reversed(integer_digits))
    if fraction_digits:
        text += "." + "".join(_DIGITS[d] for d in fraction_digits)
    return "-" + text if negative else text


# --------------------------------------------------------------------------------------------
# The fast path: the syndication endpoint
# --------------------------------------------------------------------------------------------


def fast_path(post_id: str, api_base: str, get_json: GetJson) -> PostInfo | None:
    """Read the post from the syndication endpoint; None when it cannot tell (not there, empty, no
    media: the page has to be opened). Raises :class:`PostUnavailable` for a deleted post and
    :class:`UpstreamUnavailable` when X throttles (429) or fails (5xx)."""
    url = syndication_url(post_id, api_base)
    status, data = get_json(url)
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(f"X's syndication endpoint answered {status}", status=status)
    if status != 200 or not isinstance(data, dict) or not data:
        return None
    if data.get("__typename") == "TweetTombstone":
        raise PostUnavailable(_tombstone_text(data) or "X shows this post as unavailable", post_id=post_id)
    info = parse_syndication(data, url)
    if info is None or info.post_id != post_id:
        return None
    return info


def parse_syndication(data: dict[str, Any], url: str) -> PostInfo | None:
    """A syndication ``tweet-result`` answer as a :class:`PostInfo`; None when it holds no post with
    media (an empty answer, a tombstone, a post whose media only the page shows). ``url`` is where
    the answer was read from (kept in ``extra``)."""
    if not isinstance(data, dict) or data.get("__typename") not in (None, "Tweet"):
        return None
    tweet_id = _str(data.get("id_str"))
    if not tweet_id:
        return None
    media = _syndication_media(data)
    candidates = list(_media_candidates(media, start=0, quoted=False))
    quoted = _dict(data.get("quoted_tweet"))
    quoted_id = _str(quoted.get("id_str")) if quoted else None
    if quoted_id:
        candidates.extend(_media_candidates(_syndication_media(quoted), start=_items(candidates), quoted=True))
    if not candidates:
        return None
    user = _dict(data.get("user"))
    video = _dict(data.get("video"))
    text = _display_text(_str(data.get("text")), media, escaped=True)
    counts = _counts(data, {"favorite_count": "likes", "conversation_count": "replies", "retweet_count": "reposts"})
    created_at = _str(data.get("created_at"))
    return _post(
        tweet_id,
        text=text,
        handle=_str(user.get("screen_name")),
        name=_str(user.get("name")),
        author_id=_str(user.get("id_str")),
        created_at=created_at,
        counts=counts,
        sensitive=_bool(data.get("possibly_sensitive")),
        quoted_post_id=quoted_id,
        thumbnail=next((_str(m.get("media_url_https")) for m in media if m.get("media_url_https")), None)
        or _str(video.get("poster")),
        candidates=candidates,
        extra={"source": "syndication", "source_url": url, "lang": _str(data.get("lang"))},
    )


def _syndication_media(tweet: dict[str, Any]) -> list[dict[str, Any]]:
    """``mediaDetails`` (the same entities as the GraphQL ``legacy``), or, when it is missing,
    entities rebuilt from the summary fields ``photos`` and ``video``."""
    details = [m for m in _list(tweet.get("mediaDetails")) if isinstance(m, dict)]
    if details:
        return details
    rebuilt: list[dict[str, Any]] = []
    for photo in _list(tweet.get("photos")):
        photo = _dict(photo)
        if photo.get("url"):
            size = {"width": photo.get("width"), "height": photo.get("height")}
            rebuilt.append({"type": "photo", "media_url_https": photo["url"], "original_info": size})
    video = _dict(tweet.get("video"))
    variants = [{"url": v.get("src"), "content_type": v.get("type")} for v in map(_dict, _list(video.get("variants")))]
    if variants:
        rebuilt.append(
            {
                "type": "animated_gif" if video.get("contentType") == "gif" else "video",
                "media_url_https": video.get("poster"),
                "video_info": {"variants": variants, "duration_millis": video.get("durationMs")},
            }
        )
    return rebuilt


# --------------------------------------------------------------------------------------------
# The page's own GraphQL answers
# --------------------------------------------------------------------------------------------


def parse_page_json(response_url: str, data: Any, post_id: str) -> PostInfo | None:
    """The post, from a JSON answer the post page received in the browser.

    Understands GraphQL ``TweetResultByRestId`` (``data.tweetResult.result``) and ``TweetDetail``
    (the conversation, where the focal tweet is the one whose id is ``post_id``); None for any other
    JSON, or one about another post. When the focal post cannot be read, raises what X says:
    :class:`PostPrivate` (protected), :class:`LoginRequired` (sensitive, logged out),
    :class:`PostUnavailable` (deleted, withheld, suspended...), :class:`PostNotFound` (no such post).
    """
    if not isinstance(data, dict):
        return None
    requested = _requested_id(response_url)
    if requested is not None and requested != post_id:
        return None
    body = _dict(data.get("data"))
    if "tweetResult" in body:
        result = _dict(_dict(body["tweetResult"]).get("result"))
        if not result:
            raise PostNotFound("X has no post with this id", post_id=post_id)
        tweet = _unwrap(result)
        if _is_tweet(tweet):
            return _graphql_post(tweet) if _tweet_id(tweet) == post_id else None
        _raise_unreadable(tweet, post_id)
        return None
    conversation = _dict(
        body.get("threaded_conversation_with_injections_v2") or body.get("threaded_conversation_with_injections")
    )
    if conversation:
        for entry_id, result in _conversation_results(conversation):
            tweet = _unwrap(result)
            if _is_tweet(tweet):
                if _tweet_id(tweet) == post_id:
                    return _graphql_post(tweet)
            elif entry_id == f"tweet-{post_id}":
                _raise_unreadable(tweet, post_id)
        return None
    if _operation(response_url) is not None:
        _raise_for_errors(data, post_id)
    return None


def _operation(response_url: str) -> str | None:
    """``TweetResultByRestId`` / ``TweetDetail`` when ``response_url`` is that GraphQL operation."""
    last = urlsplit(response_url).path.rstrip("/").rsplit("/", 1)[-1]
    return last if last in _GRAPHQL_OPERATIONS else None


def _requested_id(response_url: str) -> str | None:
    """The post a GraphQL request asked for (``variables.tweetId`` / ``focalTweetId``), if it says."""
    if _operation(response_url) is None:
        return None
    raw = parse_qs(urlsplit(response_url).query).get("variables")
    if not raw:
        return None
    try:
        variables = json.loads(raw[0])
    except ValueError:
        return None
    if not isinstance(variables, dict):
        return None
    value = variables.get("tweetId") or variables.get("focalTweetId")
    return str(value) if value else None


def _conversation_results(conversation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(entryId, tweet result)`` of every tweet in a ``TweetDetail`` timeline, modules included."""
    for instruction in map(_dict, _list(conversation.get("instructions"))):
        entries = _list(instruction.get("entries")) or ([instruction["entry"]] if instruction.get("entry") else [])
        for entry in map(_dict, entries):
            entry_id = _str(entry.get("entryId")) or ""
            content = _dict(entry.get("content"))
            contents = [_dict(content.get("itemContent"))]
            contents += [_dict(_dict(_dict(i).get("item")).get("itemContent")) for i in _list(content.get("items"))]
            for item in contents:
                result = _dict(_dict(item.get("tweet_results")).get("result"))
                if result:
                    yield entry_id, result


def _raise_for_errors(data: dict[str, Any], post_id: str) -> None:
    """GraphQL ``errors`` about the post itself (the answer then has no ``tweetResult``)."""
    for error in map(_dict, _list(data.get("errors"))):
        code = error.get("code")
        message = _str(error.get("message")) or ""
        if code == 144:
            raise PostNotFound("X has no post with this id", post_id=post_id)
        if code == 179:
            raise PostPrivate("X shows this post only to its author's approved followers", post_id=post_id)
        if code == 63 or "suspended" in message.lower():
            raise PostUnavailable("the author's account is suspended", post_id=post_id)


def _raise_unreadable(result: dict[str, Any], post_id: str) -> None:
    kind = result.get("__typename")
    if kind == "TweetTombstone":
        raise PostUnavailable(_tombstone_text(result) or "X shows this post as unavailable", post_id=post_id)
    if kind == "TweetUnavailable":
        reason = _str(result.get("reason")) or ""
        if reason == "Protected":
            raise PostPrivate("X shows this post only to its author's approved followers", post_id=post_id)
        if reason.startswith("Nsfw"):
            raise LoginRequired(
                "X shows this post (sensitive content) only to a logged-in viewer: configure login cookies "
                "for the tenant",
                post_id=post_id,
                reason=reason,
            )
        raise PostUnavailable(f"X says the post is unavailable ({reason or 'no reason given'})", post_id=post_id)


def _unwrap(result: dict[str, Any]) -> dict[str, Any]:
    """The tweet inside ``TweetWithVisibilityResults`` (a post shown with a notice or limits)."""
    if result.get("__typename") == "TweetWithVisibilityResults" or ("tweet" in result and "legacy" not in result):
        return _dict(result.get("tweet")) or result
    return result


def _is_tweet(result: dict[str, Any]) -> bool:
    return result.get("__typename") in (None, "Tweet") and isinstance(result.get("legacy"), dict)


def _tweet_id(tweet: dict[str, Any]) -> str | None:
    return _str(tweet.get("rest_id")) or _str(_dict(tweet.get("legacy")).get("id_str"))


def _graphql_post(tweet: dict[str, Any]) -> PostInfo:
    legacy = _dict(tweet.get("legacy"))
    tweet_id = _tweet_id(tweet) or ""
    media = _legacy_media(legacy)
    candidates = list(_media_candidates(media, start=0, quoted=False))

    quoted_id = _str(legacy.get("quoted_status_id_str"))
    quoted = _unwrap(_dict(_dict(tweet.get("quoted_status_result")).get("result")))
    if _is_tweet(quoted):
        quoted_id = _tweet_id(quoted) or quoted_id
        quoted_media = _legacy_media(_dict(quoted.get("legacy")))
        candidates.extend(_media_candidates(quoted_media, start=_items(candidates), quoted=True))

    user = _unwrap(_dict(_dict(_dict(tweet.get("core")).get("user_results")).get("result")))
    user_core, user_legacy = _dict(user.get("core")), _dict(user.get("legacy"))
    note = _str(_dict(_dict(_dict(tweet.get("note_tweet")).get("note_tweet_results")).get("result")).get("text"))
    text = note if note else _display_text(_str(legacy.get("full_text")), media, escaped=True)

    counts = _counts(
        legacy,
        {
            "favorite_count": "likes",
            "retweet_count": "reposts",
            "reply_count": "replies",
            "quote_count": "quotes",
            "bookmark_count": "bookmarks",
        },
    )
    views = _int(_dict(tweet.get("views")).get("count"))
    if views is not None:
        counts["views"] = views
    return _post(
        tweet_id,
        text=text,
        handle=_str(user_core.get("screen_name")) or _str(user_legacy.get("screen_name")),
        name=_str(user_core.get("name")) or _str(user_legacy.get("name")),
        author_id=_str(user.get("rest_id")) or _str(legacy.get("user_id_str")),
        created_at=_str(legacy.get("created_at")),
        counts=counts,
        sensitive=_bool(legacy.get("possibly_sensitive")),
        quoted_post_id=quoted_id,
        thumbnail=next((_str(m.get("media_url_https")) for m in media if m.get("media_url_https")), None),
        candidates=candidates,
        extra={
            "source": "graphql",
            "lang": _str(legacy.get("lang")),
            "conversation_id": _str(legacy.get("conversation_id_str")),
            "in_reply_to": _str(legacy.get("in_reply_to_status_id_str")),
        },
    )


def _legacy_media(legacy: dict[str, Any]) -> list[dict[str, Any]]:
    """``extended_entities.media`` (every item), else ``entities.media`` (older posts: the first only)."""
    media = _list(_dict(legacy.get("extended_entities")).get("media")) or _list(
        _dict(legacy.get("entities")).get("media")
    )
    return [m for m in media if isinstance(m, dict)]


# --------------------------------------------------------------------------------------------
# Shared: media entities, text, dates, the PostInfo
# --------------------------------------------------------------------------------------------


def _media_candidates(media: list[dict[str, Any]], *, start: int, quoted: bool) -> Iterator[Candidate]:
    """Candidates of each media entity; items are numbered from ``start`` in the post's order."""
    item = start
    for entity in media:
        kind = entity.get("type")
        if kind == "photo":
            found = list(_photo_candidates(entity, item=item, quoted=quoted))
        elif kind in ("video", "animated_gif"):
            found = list(_video_candidates(entity, item=item, quoted=quoted))
        else:
            found = []
        if found:
            yield from found
            item += 1


def _video_candidates(entity: dict[str, Any], *, item: int, quoted: bool) -> Iterator[Candidate]:
    kind = "gif" if entity.get("type") == "animated_gif" else "video"
    info = _dict(entity.get("video_info"))
    original = _dict(entity.get("original_info"))
    millis = _int(info.get("duration_millis"))
    poster = _str(entity.get("media_url_https"))
    for variant in map(_dict, _list(info.get("variants"))):
        url = _str(variant.get("url")) or _str(variant.get("src"))
        if not url:
            continue
        size = _VARIANT_SIZE.search(url)
        width, height = (
            (int(size.group(1)), int(size.group(2)))
            if size
            else (_int(original.get("width")), _int(original.get("height")))
        )
        yield Candidate(
            url=url,
            kind=kind,
            source="platform",
            content_type=_str(variant.get("content_type")) or _str(variant.get("type")),
            width=width,
            height=height,
            bitrate=_int(variant.get("bitrate")),
            duration=millis / 1000 if millis else None,
            poster=poster,
            item=item,
            quoted=quoted,
        )


def _photo_candidates(entity: dict[str, Any], *, item: int, quoted: bool) -> Iterator[Candidate]:
    """The named sizes of one photo, best first (``orig``, ``4096x4096``, ``large``), then the URL as given."""
    url = _str(entity.get("media_url_https")) or _str(entity.get("media_url"))
    if not url:
        return
    parts = urlsplit(url)
    stem, dot, ext = parts.path.rpartition(".")
    ext = ext.lower()
    if dot and "/" not in ext and ext in _PHOTO_EXTENSIONS:
        base_path = stem
    else:
        base_path = parts.path
        ext = (parse_qs(parts.query).get("format") or ["jpg"])[0].lower()
    base = f"{parts.scheme}://{parts.netloc}{base_path}"
    original = _dict(entity.get("original_info"))
    width, height = _int(original.get("width")), _int(original.get("height"))
    content_type = _PHOTO_EXTENSIONS.get(ext)
    thumbnail = f"{base}?format={ext}&name=small"  # the item's thumbnail: X's 680px size
    for name, preference, limit in _PHOTO_SIZES:
        fitted = _fit(width, height, limit)
        yield Candidate(
            url=f"{base}?format={ext}&name={name}",
            kind="photo",
            source="platform",
            content_type=content_type,
            width=fitted[0],
            height=fitted[1],
            item=item,
            preference=preference,
            quoted=quoted,
            poster=thumbnail,
        )
    yield Candidate(
        url=url, kind="photo", source="platform", content_type=content_type, item=item, preference=0, quoted=quoted,
        poster=thumbnail,
    )  # fmt: skip


def _fit(width: int | None, height: int | None, limit: int | None) -> tuple[int | None, int | None]:
    """The size of a ``width`` x ``height`` picture served no larger than ``limit`` on its longest side."""
    if width is None or height is None or limit is None or max(width, height) <= limit:
        return width, height
    scale = limit / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _items(candidates: list[Candidate]) -> int:
    """How many media items ``candidates`` cover (the next item's index)."""
    return max((c.item for c in candidates), default=-1) + 1


def _display_text(text: str | None, media: list[dict[str, Any]], *, escaped: bool) -> str | None:
    """The post's text without the trailing t.co link X appends for its media, entities unescaped."""
    if text is None:
        return None
    links = {_str(m.get("url")) for m in media} - {None}
    stripped = text.rstrip()
    changed = True
    while changed:
        changed = False
        for link in links:
            if link and stripped.endswith(link):
                stripped = stripped[: -len(link)].rstrip()
                changed = True
    if escaped:
        stripped = html.unescape(stripped)
    return stripped


def _iso_date(value: str | None) -> str | None:
    """ISO 8601 (UTC, ``Z``) from X's ``Wed Oct 10 20:19:24 +0000 2018`` or an ISO timestamp."""
    if not value:
        return None
    match = _LEGACY_DATE.match(value.strip())
    try:
        if match:
            tz = match.group("tz")
            stamp = (
                f"{match.group('year')}-{_MONTHS[match.group('mon')]:02d}-{int(match.group('day')):02d}"
                f"T{match.group('h')}:{match.group('m')}:{match.group('s')}{tz[:3]}:{tz[3:]}"
            )
            moment = datetime.fromisoformat(stamp)
        else:
            moment = datetime.fromisoformat(value.strip())
    except (KeyError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _post(
    tweet_id: str,
    *,
    text: str | None,
    handle: str | None,
    name: str | None,
    author_id: str | None,
    created_at: str | None,
    counts: dict[str, int],
    sensitive: bool | None,
    quoted_post_id: str | None,
    thumbnail: str | None,
    candidates: list[Candidate],
    extra: dict[str, Any],
) -> PostInfo:
    extra = {k: v for k, v in {**extra, "created_at": created_at}.items() if v is not None}
    title = None
    if name or handle:
        who = name or f"@{handle}"
        summary = " ".join((text or "").split())
        if len(summary) > _TITLE_LENGTH:
            summary = summary[: _TITLE_LENGTH - 1].rstrip() + "\u2026"
        title = f'{who} on X: "{summary}"' if summary else f"{who} on X"
    return PostInfo(
        url=canonical_url(tweet_id),
        platform=NAME,
        post_id=tweet_id,
        title=title,
        caption=text or None,
        author_handle=handle,
        author_name=name,
        author_id=author_id,
        posted_at=_iso_date(created_at),
        site_name=SITE_NAME,
        thumbnail_url=thumbnail,
        counts=counts,
        sensitive=sensitive,
        quoted_post_id=quoted_post_id,
        candidates=candidates,
        extra=extra,
    )


def _tombstone_text(result: dict[str, Any]) -> str | None:
    text = _dict(_dict(result.get("tombstone")).get("text")).get("text")
    return _str(text)


def _counts(source: dict[str, Any], names: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for field, name in names.items():
        value = _int(source.get(field))
        if value is not None:
            counts[name] = value
    return counts


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
