"""An X-like site on loopback: post pages, the GraphQL and syndication JSON X serves, and media
under paths shaped like X's CDNs, with the failures an archiver of X posts meets.

Everything lives on one origin, so a deployment pointed at it with
``MEDIAVAULT_PLATFORM_HOSTS=x=127.0.0.1:<port>`` and ``MEDIAVAULT_PLATFORM_API=x=http://127.0.0.1:<port>``
treats it as X:

* ``/<handle>/status/<id>`` (also ``/i/status/<id>``, ``/i/web/status/<id>``): a single-page-app shell,
  always ``200`` like X's, that sets a ``guest_id`` cookie. Its script calls
  ``/i/api/graphql/<queryId>/TweetResultByRestId`` (logged out) or ``.../TweetDetail`` (when the
  request carried ``auth_token=<XSITE_AUTH_TOKEN>``) and renders the answer. The HTML as served
  holds no media URL.
* ``/tweet-result?id=<id>&token=<token>``: the syndication answer the embed widget reads; the token
  is checked (``400`` when wrong), ``404`` for protected and unknown posts, ``{}`` for posts the
  widget may not show, a tombstone for deleted ones.
* media: ``/ext_tw_video/<mediaId>/pu/vid/avc1/<w>x<h>/<name>.mp4`` (and the ``.m3u8`` playlist),
  ``/tweet_video/<name>.mp4`` (GIFs), ``/media/<name>?format=jpg&name=orig|4096x4096|large|medium|small``
  (photos), ``/ext_tw_video_thumb/...`` and ``/tweet_video_thumb/...`` (posters). Bodies are the
  files :func:`~mediavault_local.samples.media.generate_media` writes; ``Range`` and the throttle work.

:data:`X_POSTS` lists every post with what a correct archiver ends up with. The site is independent
of the code under test: it computes the syndication token on its own, with exact arithmetic.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .media import ANIMATED, CLIP_VARIANTS, PHOTO, PHOTO_SIZE, POSTER, POSTER_SIZE, generate_media
from .serving import Exchange, LoopbackSite

__all__ = [
    "GUEST_COOKIE",
    "SLOW_MEDIA_BPS",
    "TWEET_DETAIL_QUERY_ID",
    "TWEET_RESULT_QUERY_ID",
    "XSITE_AUTH_TOKEN",
    "X_POSTS",
    "XPost",
    "XSite",
    "expected_token",
]

#: The login cookie (``auth_token=<this>``) that makes the site treat the viewer as logged in.
XSITE_AUTH_TOKEN = "3f1c5a0d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c"  # noqa: S105 - made up, loopback only
#: The cookie every post page sets for a logged-out visitor (X's guest session).
GUEST_COOKIE = "guest_id"
TWEET_RESULT_QUERY_ID = "Vg2Akr5FzUmF0sTplA5k6g"
TWEET_DETAIL_QUERY_ID = "nBS-WpgA6ZG0CyNHD517JQ"
#: The byte rate of the slow post's media (the site-wide ``throttle_bps`` applies when lower).
SLOW_MEDIA_BPS = 256 * 1024

_TRUNCATED_SIZE = 5 * 1024
_SIGNATURE_KEY = b"xsite-media-signing-key"
_BEST = "1080"  # the variant the failure modes break
_VIDEO_SIZES = {spec.height: spec for spec in CLIP_VARIANTS}
_X_BITRATES = {360: 832_000, 720: 2_176_000, 1080: 10_368_000}
_FAKE_MP4_BODY = (
    b"<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1>"
    b"<p>The media could not be served. Try again later.</p></body></html>\n"
)
_TCO = "https://t.co/"

# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XPost:
    """One post of the site and what a correct archiver ends with.

    ``expected_media`` / ``expected_files``: the kinds of the post's own media items, in order, and
    the generated file each should be archived as (the best variant that works). ``expected_error``:
    the error code instead. ``needs_login``: the media is expected only with the ``auth_token``
    cookie; without it, ``expected_error``. ``quoted_media``: the quoted post's items (archived only
    on request). ``syndication``: whether the syndication endpoint answers with the post.
    """

    post_id: str
    handle: str
    description: str
    expected_media: tuple[str, ...] = ()
    expected_files: tuple[str, ...] = ()
    expected_error: str | None = None
    syndication: bool = True
    needs_login: bool = False
    quoted_media: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"/{self.handle}/status/{self.post_id}"


_P = "17901000000000000"  # every post id is this prefix and two digits: 19 digits, like X's ids
BEST, GOOD = "clip-1080p.mp4", "clip-720p.mp4"

X_POSTS: tuple[XPost, ...] = (
    XPost(
        _P + "01",
        "harbourcam",
        "single video: three mp4 variants (360p/720p/1080p, listed out of order) and an HLS playlist; "
        "long text in note_tweet",
        ("video",),
        (BEST,),
    ),
    XPost(_P + "02", "tidewatcher", "animated GIF (tweet_video mp4, bitrate 0)", ("gif",), (ANIMATED.filename,)),
    XPost(
        _P + "03",
        "harbourcam",
        "six items: four photos, a video and a GIF",
        ("photo", "photo", "photo", "photo", "video", "gif"),
        (PHOTO, PHOTO, PHOTO, PHOTO, BEST, ANIMATED.filename),
    ),
    XPost(
        _P + "04",
        "tidewatcher",
        "photo whose name=orig answers 404: the 4096x4096 size is the best that works",
        ("photo",),
        (PHOTO,),
    ),
    XPost(
        _P + "05",
        "pierpost",
        f"a photo, quoting post {_P}15 which has a video",
        ("photo",),
        (PHOTO,),
        quoted_media=("video",),
    ),
    XPost(_P + "15", "harbourcam", "the video post quoted by the post above", ("video",), (BEST,)),
    XPost(
        _P + "06",
        "pierpost",
        "only the page can read it: syndication answers {}, GraphQL has a video",
        ("video",),
        (BEST,),
        syndication=False,
    ),
    XPost(
        _P + "07",
        "lockedharbour",
        "protected account: syndication 404, GraphQL TweetUnavailable/Protected",
        expected_error="POST_PRIVATE",
        syndication=False,
    ),
    XPost(
        _P + "08",
        "tidewatcher",
        f"sensitive: syndication {{}}, GraphQL NsfwLoggedOut unless the auth_token={XSITE_AUTH_TOKEN[:6]}... "
        "cookie is sent (then TweetDetail, the tweet wrapped in TweetWithVisibilityResults)",
        ("video",),
        (BEST,),
        expected_error="LOGIN_REQUIRED",
        syndication=False,
        needs_login=True,
    ),
    XPost(
        _P + "09",
        "harbourcam",
        "deleted: a TweetTombstone from both syndication and GraphQL",
        expected_error="POST_UNAVAILABLE",
        syndication=False,
    ),
    XPost(
        _P + "10",
        "harbourcam",
        "no such post: GraphQL tweetResult {}, syndication 404 (as for every unknown id)",
        expected_error="POST_NOT_FOUND",
        syndication=False,
    ),
    XPost(
        _P + "11",
        "pierpost",
        "the 1080p URL carries ?sig=: its first download answers 403 and every later extraction hands out "
        "a fresh signature that works; stale signatures keep answering 403",
        ("video",),
        (BEST,),
    ),
    XPost(
        _P + "12",
        "tidewatcher",
        f"the 1080p variant answers 403 unless the request carries the {GUEST_COOKIE} cookie the post page set",
        ("video",),
        (BEST,),
    ),
    XPost(
        _P + "13",
        "pierpost",
        "hotlink protection: the 1080p variant answers 403 unless Sec-Fetch-Site is same-origin "
        "(a fetch made by the page's own script)",
        ("video",),
        (BEST,),
    ),
    XPost(
        _P + "14",
        "harbourcam",
        "the 1080p URL is signed (?Expires=&Signature=): the first answer's has already expired (403), "
        "later answers are valid for an hour",
        ("video",),
        (BEST,),
    ),
    XPost(
        _P + "16",
        "tidewatcher",
        "the 1080p variant is an HTML error page served as video/mp4; 720p is fine",
        ("video",),
        (GOOD,),
    ),
    XPost(_P + "17", "pierpost", "the 1080p variant is a 0-byte body; 720p is fine", ("video",), (GOOD,)),
    XPost(
        _P + "18",
        "harbourcam",
        "the 1080p variant is 5 KB of a truncated mp4; 720p is fine",
        ("video",),
        (GOOD,),
    ),
    XPost(
        _P + "19",
        "tidewatcher",
        f"slow media server: every media file of the post is sent at {SLOW_MEDIA_BPS // 1024} KiB/s",
        ("video",),
        (BEST,),
    ),
)

# --------------------------------------------------------------------------------------------
# What the site knows about each post (beyond the catalogue)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _User:
    rest_id: str
    handle: str
    name: str
    shape: str  # "legacy": name/screen_name in legacy (older answers); "core": in core (2025 answers)
    protected: bool = False


_USERS = {
    u.handle: u
    for u in (
        _User("1500000000000000001", "harbourcam", "Harbour Cam", "legacy"),
        _User("1500000000000000002", "tidewatcher", "Tide Watcher \U0001f30a", "core"),
        _User("1500000000000000003", "pierpost", "Pier Post", "legacy"),
        _User("1500000000000000004", "lockedharbour", "Locked Harbour", "core", protected=True),
        _User("1500000000000000005", "replyguy", "Reply Guy", "core"),
    )
}


@dataclass(frozen=True, slots=True)
class _Media:
    kind: str  # photo | video | animated_gif
    fault: str | None = None  # what the best variant (or the photo's name=orig) does wrong


@dataclass(frozen=True, slots=True)
class _Tweet:
    text: str
    media: tuple[_Media, ...] = ()
    state: str = "ok"  # ok | graphql-only | protected | nsfw | tombstone | missing
    note: str | None = None  # the full text of a long post (note_tweet)
    quoted: str | None = None
    slow: bool = False
    counts: tuple[int, int, int, int, int, int] = (128, 12, 9, 3, 5, 4096)  # likes reposts replies quotes bm views
    posted: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 18, 30, tzinfo=UTC))


_VIDEO, _GIF, _PHOTO_ITEM = _Media("video"), _Media("animated_gif"), _Media("photo")
_LONG = (
    "Evening at the harbour, the full story. The tide came in fast tonight and the light over the pier "
    "turned from gold to deep blue in under ten minutes. I set the camera on the wall by the ferry ramp "
    "and let it run; this is three seconds of it, but the whole evening was like this. Fish & chips after. "
    "More clips tomorrow if the weather holds. #harbour #timelapse"
)

_TWEETS: dict[str, _Tweet] = {
    _P + "01": _Tweet(_LONG[:270] + "\u2026", (_VIDEO,), note=_LONG),
    _P + "02": _Tweet("When the tide comes in \U0001f30a", (_GIF,)),
    _P + "03": _Tweet("Harbour walk: four stills, a clip & a loop", (*([_PHOTO_ITEM] * 4), _VIDEO, _GIF)),
    _P + "04": _Tweet("Dusk over the water (full resolution only in 4096)", (_Media("photo", "orig-404"),)),
    _P + "05": _Tweet("Same spot, one year apart. Look at this clip \u2193", (_PHOTO_ITEM,), quoted=_P + "15"),
    _P + "15": _Tweet("A year ago today at the harbour", (_VIDEO,)),
    _P + "06": _Tweet("Only on the site: the ferry leaving", (_VIDEO,), state="graphql-only"),
    _P + "07": _Tweet("Private harbour notes", (_VIDEO,), state="protected"),
    _P + "08": _Tweet("Night swim (sensitive media)", (_VIDEO,), state="nsfw"),
    _P + "09": _Tweet("This one was deleted", (_VIDEO,), state="tombstone"),
    _P + "10": _Tweet("", state="missing"),
    _P + "11": _Tweet("Signed URLs that go stale", (_Media("video", "stale-sig"),)),
    _P + "12": _Tweet("Needs the guest session", (_Media("video", "guest-cookie"),)),
    _P + "13": _Tweet("Hotlink protected", (_Media("video", "same-origin"),)),
    _P + "14": _Tweet("Signed with an expiry", (_Media("video", "expiring"),)),
    _P + "16": _Tweet("Broken 1080p upload (HTML)", (_Media("video", "html"),)),
    _P + "17": _Tweet("Broken 1080p upload (empty)", (_Media("video", "empty"),)),
    _P + "18": _Tweet("Broken 1080p upload (truncated)", (_Media("video", "truncated"),)),
    _P + "19": _Tweet("Slow connection today", (_VIDEO,), slow=True),
}
_HANDLES = {post.post_id: post.handle for post in X_POSTS}
_REPLY_ID_OFFSET = 500  # the reply shown under a post in TweetDetail has id + this


def _media_id(post_id: str, index: int) -> str:
    return str(int(post_id) + 1_000_000 * (index + 1))


def _media_name(post_id: str, index: int, kind: str) -> str:
    """An X-like opaque file name (photos: 15 characters starting with G; videos: 16)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(f"{post_id}:{index}".encode()).digest()).decode()
    name = re.sub(r"[^A-Za-z0-9]", "x", digest)
    return "G" + name[:14] if kind == "photo" else name[:16]


@dataclass(frozen=True, slots=True)
class _Asset:
    """A media path the site serves."""

    post_id: str
    file: str
    content_type: str
    fault: str | None = None
    kind: str = "file"  # file | playlist


def _assets() -> dict[str, _Asset]:
    assets: dict[str, _Asset] = {}
    for post_id, tweet in _TWEETS.items():
        for index, media in enumerate(tweet.media):
            mid, name = _media_id(post_id, index), _media_name(post_id, index, media.kind)
            if media.kind == "photo":
                assets[f"/media/{name}"] = _Asset(post_id, PHOTO, "image/jpeg", media.fault)
            elif media.kind == "animated_gif":
                assets[f"/tweet_video/{name}.mp4"] = _Asset(post_id, ANIMATED.filename, "video/mp4")
                assets[f"/tweet_video_thumb/{name}.jpg"] = _Asset(post_id, POSTER, "image/jpeg")
            else:
                for spec in CLIP_VARIANTS:
                    fault = media.fault if str(spec.height) == _BEST else None
                    path = f"/ext_tw_video/{mid}/pu/vid/avc1/{spec.width}x{spec.height}/{name}.mp4"
                    assets[path] = _Asset(post_id, spec.filename, "video/mp4", fault)
                assets[f"/ext_tw_video/{mid}/pu/pl/{name}.m3u8"] = _Asset(
                    post_id, "", "application/x-mpegURL", kind="playlist"
                )
                assets[f"/ext_tw_video_thumb/{mid}/pu/img/{name}.jpg"] = _Asset(post_id, POSTER, "image/jpeg")
    return assets


_ASSETS = _assets()

# --------------------------------------------------------------------------------------------
# The syndication token, computed independently (exact rational arithmetic)
# --------------------------------------------------------------------------------------------

_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def expected_token(post_id: str) -> str:
    """The token the embed widget sends for ``post_id``: the base-36 digits of ``id / 1e15 * pi`` (as
    a double), zeros and the point removed, with as many fraction digits as tell the double apart
    from its neighbours (the last one rounded half to even). Exact fractions stand in for the
    browser's double arithmetic; they agree for ids of 17 digits and more (every id X hands out since
    2010). For shorter ids the two can differ in the last digit, and the site then answers 400."""
    value = (float(post_id) / 1e15) * math.pi
    exact = Fraction(value)
    whole = math.floor(exact)
    rest = exact - whole
    margin = Fraction(math.nextafter(value, math.inf) - value) / 2
    digits: list[int] = []
    while rest >= margin:
        rest, margin = rest * 36, margin * 36
        digit = math.floor(rest)
        digits.append(digit)
        rest -= digit
        if (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and digit % 2)) and rest + margin > 1:
            while digits and digits[-1] == 35:
                digits.pop()
            if digits:
                digits[-1] += 1
            else:
                whole += 1
            break
    text = ""
    while True:
        whole, digit = divmod(whole, 36)
        text = _DIGITS36[digit] + text
        if not whole:
            break
    text += "".join(_DIGITS36[d] for d in digits)
    return text.replace("0", "")


# --------------------------------------------------------------------------------------------
# JSON in X's shapes
# --------------------------------------------------------------------------------------------


def _legacy_date(moment: datetime) -> str:
    return moment.strftime("%a %b %d %H:%M:%S +0000 %Y")


def _iso_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _tco(seed: str) -> str:
    return _TCO + hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()[:10]


@dataclass
class _Issue:
    """Per extraction: how URLs that change between answers are written."""

    origin: str
    sig: str | None = None
    expires: int | None = None


def _sign(path: str, expires: int) -> str:
    return hashlib.sha256(_SIGNATURE_KEY + f"{path}:{expires}".encode()).hexdigest()[:40]


def _video_url(issue: _Issue, path: str, fault: str | None) -> str:
    url = f"{issue.origin}{path}?tag=12"
    if fault == "stale-sig" and issue.sig:
        url += f"&sig={issue.sig}"
    if fault == "expiring" and issue.expires is not None:
        url += f"&Expires={issue.expires}&Signature={_sign(path, issue.expires)}&Key-Pair-Id=K2XSITE"
    return url


def _media_entities(post_id: str, tweet: _Tweet, issue: _Issue) -> list[dict[str, Any]]:
    handle = _HANDLES.get(post_id, "i")
    entities: list[dict[str, Any]] = []
    link = _tco(f"{post_id}:media")
    for index, media in enumerate(tweet.media):
        mid, name = _media_id(post_id, index), _media_name(post_id, index, media.kind)
        kind_path = "photo" if media.kind == "photo" else "video"
        entity: dict[str, Any] = {
            "display_url": f"pic.x.com/{name[:10]}",
            "expanded_url": f"https://x.com/{handle}/status/{post_id}/{kind_path}/{index + 1}",
            "id_str": mid,
            "indices": [len(tweet.text) + 1, len(tweet.text) + 24],
            "media_key": {"photo": "3_", "video": "7_", "animated_gif": "16_"}[media.kind] + mid,
            "type": media.kind,
            "url": link,
            "ext_media_availability": {"status": "Available"},
        }
        if media.kind == "photo":
            width, height = PHOTO_SIZE
            entity["media_url_https"] = f"{issue.origin}/media/{name}.jpg"
            entity["features"] = {"large": {"faces": []}, "orig": {"faces": []}}
        elif media.kind == "animated_gif":
            width, height = ANIMATED.width, ANIMATED.height
            entity["media_url_https"] = f"{issue.origin}/tweet_video_thumb/{name}.jpg"
            entity["video_info"] = {
                "aspect_ratio": [16, 9],
                "variants": [
                    {"bitrate": 0, "content_type": "video/mp4", "url": f"{issue.origin}/tweet_video/{name}.mp4"}
                ],
            }
        else:
            width, height = POSTER_SIZE[0] * 3 // 2, POSTER_SIZE[1] * 3 // 2
            entity["media_url_https"] = f"{issue.origin}/ext_tw_video_thumb/{mid}/pu/img/{name}.jpg"
            entity["additional_media_info"] = {"monetizable": False}
            mp4 = {
                spec.height: {
                    "bitrate": _X_BITRATES[spec.height],
                    "content_type": "video/mp4",
                    "url": _video_url(
                        issue,
                        f"/ext_tw_video/{mid}/pu/vid/avc1/{spec.width}x{spec.height}/{name}.mp4",
                        media.fault if str(spec.height) == _BEST else None,
                    ),
                }
                for spec in CLIP_VARIANTS
            }
            hls = {
                "content_type": "application/x-mpegURL",
                "url": f"{issue.origin}/ext_tw_video/{mid}/pu/pl/{name}.m3u8?tag=12&v=4f1",
            }
            entity["video_info"] = {
                "aspect_ratio": [16, 9],
                "duration_millis": int(CLIP_VARIANTS[0].seconds * 1000),
                "variants": [mp4[720], hls, mp4[360], mp4[1080]],  # X lists them in no useful order
            }
        entity["sizes"] = {
            "large": {"h": height, "w": width, "resize": "fit"},
            "medium": {"h": height * 1200 // max(width, 1), "w": 1200, "resize": "fit"},
            "small": {"h": height * 680 // max(width, 1), "w": 680, "resize": "fit"},
            "thumb": {"h": 150, "w": 150, "resize": "crop"},
        }
        entity["original_info"] = {"height": height, "width": width, "focus_rects": []}
        entities.append(entity)
    return entities


def _full_text(post_id: str, tweet: _Tweet) -> str:
    """``legacy.full_text``: HTML-escaped like X's, with the t.co link of the media at the end."""
    text = html.escape(tweet.text, quote=False)
    return f"{text} {_tco(f'{post_id}:media')}" if tweet.media else text


def _graphql_user(user: _User) -> dict[str, Any]:
    avatar = f"https://pbs.twimg.com/profile_images/{user.rest_id}/avatar_normal.jpg"
    legacy: dict[str, Any] = {
        "default_profile": True,
        "default_profile_image": False,
        "description": f"{user.name}: clips from the harbour.",
        "entities": {"description": {"urls": []}},
        "fast_followers_count": 0,
        "favourites_count": 420,
        "followers_count": 1234,
        "friends_count": 56,
        "has_custom_timelines": False,
        "is_translator": False,
        "listed_count": 7,
        "media_count": 89,
        "normal_followers_count": 1234,
        "pinned_tweet_ids_str": [],
        "possibly_sensitive": False,
        "statuses_count": 321,
        "translator_type": "none",
        "want_retweets": False,
        "withheld_in_countries": [],
    }
    node: dict[str, Any] = {
        "__typename": "User",
        "id": base64.b64encode(f"User:{user.rest_id}".encode()).decode(),
        "rest_id": user.rest_id,
        "affiliates_highlighted_label": {},
        "has_graduated_access": True,
        "is_blue_verified": user.shape == "core",
        "profile_image_shape": "Circle",
    }
    created = "Sat Jan 01 17:50:03 +0000 2011"
    if user.shape == "core":
        node["avatar"] = {"image_url": avatar}
        node["core"] = {"created_at": created, "name": user.name, "screen_name": user.handle}
        node["dm_permissions"] = {"can_dm": False}
        node["location"] = {"location": "The harbour"}
        node["privacy"] = {"protected": user.protected}
        node["verification"] = {"verified": False}
    else:
        legacy.update(
            {
                "can_dm": False,
                "created_at": created,
                "name": user.name,
                "screen_name": user.handle,
                "profile_image_url_https": avatar,
                "protected": user.protected,
                "verified": False,
                "location": "The harbour",
            }
        )
    node["legacy"] = legacy
    return node


def _graphql_tweet(post_id: str, tweet: _Tweet, issue: _Issue, *, with_quoted: bool = True) -> dict[str, Any]:
    user = _USERS[_HANDLES.get(post_id, "harbourcam")]
    media = _media_entities(post_id, tweet, issue)
    likes, reposts, replies, quotes, bookmarks, views = tweet.counts
    legacy: dict[str, Any] = {
        "bookmark_count": bookmarks,
        "bookmarked": False,
        "created_at": _legacy_date(tweet.posted),
        "conversation_id_str": post_id,
        "display_text_range": [0, len(tweet.text)],
        "entities": {
            "hashtags": [],
            "symbols": [],
            "timestamps": [],
            "urls": [],
            "user_mentions": [],
            **({"media": media[:1]} if media else {}),
        },
        "favorite_count": likes,
        "favorited": False,
        "full_text": _full_text(post_id, tweet),
        "is_quote_status": tweet.quoted is not None,
        "lang": "en",
        "possibly_sensitive": tweet.state == "nsfw",
        "possibly_sensitive_editable": True,
        "quote_count": quotes,
        "reply_count": replies,
        "retweet_count": reposts,
        "retweeted": False,
        "user_id_str": user.rest_id,
        "id_str": post_id,
    }
    if media:
        legacy["extended_entities"] = {"media": media}
    node: dict[str, Any] = {
        "__typename": "Tweet",
        "rest_id": post_id,
        "core": {"user_results": {"result": _graphql_user(user)}},
        "unmention_data": {},
        "edit_control": {
            "edit_tweet_ids": [post_id],
            "editable_until_msecs": str(int(tweet.posted.timestamp() * 1000) + 3_600_000),
            "is_edit_eligible": True,
            "edits_remaining": "5",
        },
        "is_translatable": False,
        "views": {"count": str(views), "state": "EnabledWithCount"},
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "legacy": legacy,
    }
    if tweet.note:
        node["note_tweet"] = {
            "is_expandable": True,
            "note_tweet_results": {
                "result": {
                    "id": base64.b64encode(f"NoteTweetResults:{post_id}".encode()).decode(),
                    "text": tweet.note,
                    "entity_set": {"hashtags": [], "symbols": [], "urls": [], "user_mentions": []},
                }
            },
        }
    if tweet.quoted and with_quoted:
        quoted = _TWEETS[tweet.quoted]
        legacy["quoted_status_id_str"] = tweet.quoted
        legacy["quoted_status_permalink"] = {
            "url": _tco(f"{post_id}:quote"),
            "expanded": f"https://x.com/{_HANDLES[tweet.quoted]}/status/{tweet.quoted}",
            "display": f"x.com/{_HANDLES[tweet.quoted]}/status/{tweet.quoted}",
        }
        node["quoted_status_result"] = {"result": _graphql_tweet(tweet.quoted, quoted, issue, with_quoted=False)}
    return node


def _tombstone() -> dict[str, Any]:
    return {
        "__typename": "TweetTombstone",
        "tombstone": {
            "__typename": "TextTombstone",
            "text": {
                "rtl": False,
                "text": "This Post was deleted by the Post author. Learn more",
                "entities": [
                    {
                        "fromIndex": 41,
                        "toIndex": 51,
                        "ref": {"type": "TimelineUrl", "url": "https://help.x.com/rules-and-policies/notices-on-x"},
                    }
                ],
            },
        },
    }


def _syndication_tweet(post_id: str, tweet: _Tweet, issue: _Issue, *, with_quoted: bool = True) -> dict[str, Any]:
    user = _USERS[_HANDLES.get(post_id, "harbourcam")]
    media = _media_entities(post_id, tweet, issue)
    likes, _reposts, replies, _quotes, _bookmarks, _views = tweet.counts
    data: dict[str, Any] = {
        "__typename": "Tweet",
        "lang": "en",
        "favorite_count": likes,
        "possibly_sensitive": tweet.state == "nsfw",
        "created_at": _iso_date(tweet.posted),
        "display_text_range": [0, len(tweet.text)],
        "entities": {
            "hashtags": [],
            "urls": [],
            "user_mentions": [],
            "symbols": [],
            "media": [{k: m[k] for k in ("display_url", "expanded_url", "indices", "url")} for m in media],
        },
        "id_str": post_id,
        "text": _full_text(post_id, tweet),
        "user": {
            "id_str": user.rest_id,
            "name": user.name,
            "profile_image_url_https": f"https://pbs.twimg.com/profile_images/{user.rest_id}/avatar_normal.jpg",
            "screen_name": user.handle,
            "verified": False,
            "is_blue_verified": user.shape == "core",
            "profile_image_shape": "Circle",
        },
        "edit_control": {
            "edit_tweet_ids": [post_id],
            "editable_until_msecs": str(int(tweet.posted.timestamp() * 1000) + 3_600_000),
            "is_edit_eligible": True,
            "edits_remaining": "5",
        },
        "conversation_count": replies,
        "news_action_type": "conversation",
        "isEdited": False,
        "isStaleEdit": False,
    }
    if tweet.note:
        data["note_tweet"] = {"id": base64.b64encode(f"NoteTweet:{post_id}".encode()).decode()}
    if media:
        data["mediaDetails"] = media
    photos = [m for m in media if m["type"] == "photo"]
    if photos:
        data["photos"] = [
            {
                "backgroundColor": {"red": 204, "green": 214, "blue": 221},
                "cropCandidates": [
                    {"x": 0, "y": 0, "w": p["original_info"]["width"], "h": p["original_info"]["height"]}
                ],
                "expandedUrl": p["expanded_url"],
                "url": p["media_url_https"],
                "width": p["original_info"]["width"],
                "height": p["original_info"]["height"],
            }
            for p in photos
        ]
    moving = next((m for m in media if m["type"] != "photo"), None)
    if moving is not None:
        info = moving["video_info"]
        data["video"] = {
            "aspectRatio": info["aspect_ratio"],
            "contentType": "gif" if moving["type"] == "animated_gif" else "media_entity",
            "durationMs": info.get("duration_millis", 0),
            "mediaAvailability": {"status": "available"},
            "poster": moving["media_url_https"],
            "variants": [{"type": v["content_type"], "src": v["url"]} for v in info["variants"]],
            "videoId": {"type": "tweet", "id": post_id},
            "viewCount": 0,
        }
    if tweet.quoted and with_quoted:
        data["quoted_tweet"] = _syndication_tweet(tweet.quoted, _TWEETS[tweet.quoted], issue, with_quoted=False)
    return data


def _unavailable(reason: str) -> dict[str, Any]:
    return {"__typename": "TweetUnavailable", "reason": reason}


def _missing_errors(path: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": "_Missing: No status found with that ID.",
                "locations": [{"line": 2, "column": 3}],
                "path": [path],
                "extensions": {"name": "GenericError", "source": "Server", "code": 144, "kind": "NonFatal"},
                "code": 144,
                "kind": "NonFatal",
                "name": "GenericError",
                "source": "Server",
            }
        ],
        "data": {},
    }


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

_PAGE_SCRIPT = r"""
(function () {
  "use strict";
  const root = document.getElementById("react-root");
  const postId = root.dataset.postId;
  const loggedIn = root.dataset.viewer === "user";
  const operation = loggedIn ? "TweetDetail" : "TweetResultByRestId";
  const queryId = loggedIn ? "__DETAIL__" : "__RESULT__";
  const variables = loggedIn
    ? { focalTweetId: postId, with_rux_injections: false, rankingMode: "Relevance", includePromotedContent: true,
        withCommunity: true, withQuickPromoteEligibilityTweetFields: true, withBirdwatchNotes: true, withVoice: true }
    : { tweetId: postId, withCommunity: false, includePromotedContent: false, withVoice: false };
  const features = { creator_subscriptions_tweet_preview_api_enabled: true, view_counts_everywhere_api_enabled: true,
    longform_notetweets_consumption_enabled: true, responsive_web_edit_tweet_api_enabled: true,
    tweet_with_visibility_results_prefer_gql_limited_actions_policy_enabled: true };
  const url = "/i/api/graphql/" + queryId + "/" + operation +
    "?variables=" + encodeURIComponent(JSON.stringify(variables)) +
    "&features=" + encodeURIComponent(JSON.stringify(features));
  const main = document.getElementById("timeline");

  function unwrap(result) {
    return result && result.__typename === "TweetWithVisibilityResults" ? result.tweet : result;
  }
  function focal(body) {
    const data = (body && body.data) || {};
    if (data.tweetResult) return data.tweetResult.result || null;
    const conversation = data.threaded_conversation_with_injections_v2;
    if (!conversation) return null;
    for (const instruction of conversation.instructions || []) {
      for (const entry of instruction.entries || []) {
        if (entry.entryId === "tweet-" + postId) return entry.content.itemContent.tweet_results.result;
      }
    }
    return null;
  }
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text) node.textContent = text;
    return node;
  }
  function notice(text) {
    main.replaceChildren(el("div", { "class": "notice", "role": "alert" }, text));
  }
  function decode(text) {
    const area = document.createElement("textarea");
    area.innerHTML = text;
    return area.value;
  }
  function mediaNode(m) {
    if (m.type === "photo") {
      const base = m.media_url_https.replace(/\.(jpg|png)$/, "");
      return el("img", { src: base + "?format=jpg&name=small", alt: "Image", loading: "lazy" });
    }
    if (m.type === "animated_gif") {
      return el("video", { src: m.video_info.variants[0].url, poster: m.media_url_https,
                           autoplay: "", loop: "", muted: "", playsinline: "" });
    }
    return el("video", { poster: m.media_url_https, preload: "none", controls: "", playsinline: "" });
  }
  function tweetNode(tweet, className) {
    const user = tweet.core.user_results.result;
    const who = user.core || user.legacy;
    const legacy = tweet.legacy;
    const note = tweet.note_tweet && tweet.note_tweet.note_tweet_results.result.text;
    const article = el("article", { "class": className, "data-testid": "tweet" });
    article.append(el("div", { "data-testid": "User-Name" }, who.name + " @" + who.screen_name));
    article.append(el("div", { "data-testid": "tweetText", "lang": legacy.lang },
                      note || decode(legacy.full_text.replace(/\s*https:\/\/t\.co\/\S+$/, ""))));
    const media = (legacy.extended_entities || legacy.entities || {}).media || [];
    for (const m of media) article.append(mediaNode(m));
    article.append(el("time", { datetime: new Date(legacy.created_at).toISOString() }, legacy.created_at));
    return [article, who];
  }
  fetch(url, { credentials: "include", headers: { "content-type": "application/json",
    "x-twitter-active-user": "yes", "x-twitter-client-language": "en" } })
    .then((response) => response.json())
    .then((body) => {
      const result = unwrap(focal(body));
      if (!result) { notice("Hmm...this page doesn\u2019t exist. Try searching for something else."); return; }
      if (result.__typename === "TweetTombstone") { notice(result.tombstone.text.text); return; }
      if (result.__typename === "TweetUnavailable") {
        if (result.reason === "Protected") {
          notice("You\u2019re unable to view this Post because this account owner limits who can view their Posts.");
        } else if (result.reason.startsWith("Nsfw")) {
          notice("Age-restricted adult content. This content might not be appropriate for people under 18 " +
                 "years old. To view this media, you\u2019ll need to log in to X.");
        } else {
          notice("This Post is unavailable.");
        }
        return;
      }
      const [article, who] = tweetNode(result, "focal");
      const quoted = result.quoted_status_result && unwrap(result.quoted_status_result.result);
      if (quoted && quoted.legacy) article.append(tweetNode(quoted, "quoted")[0]);
      main.replaceChildren(article);
      const text = article.querySelector('[data-testid="tweetText"]').textContent;
      document.title = who.name + ' on X: "' + text + '" / X';
    })
    .catch(() => notice("Something went wrong. Try reloading."))
    .finally(() => { document.body.dataset.loaded = "1"; });
})();
"""


def _post_page(post_id: str, *, logged_in: bool) -> str:
    script = _PAGE_SCRIPT.replace("__DETAIL__", TWEET_DETAIL_QUERY_ID).replace("__RESULT__", TWEET_RESULT_QUERY_ID)
    viewer = "user" if logged_in else "guest"
    return f"""<!DOCTYPE html>
<html dir="ltr" lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width,initial-scale=1,viewport-fit=cover">
    <meta name="theme-color" content="#FFFFFF">
    <title>X</title>
    <style>
      body {{ font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 600px; margin: 0 auto; }}
      article {{ border-bottom: 1px solid #eff3f4; padding: 12px 16px; }}
      article.quoted {{ border: 1px solid #cfd9de; border-radius: 16px; margin-top: 12px; }}
      img, video {{ max-width: 100%; border-radius: 16px; background: #000; }}
      .notice {{ padding: 32px 16px; color: #536471; }}
    </style>
  </head>
  <body>
    <noscript>We\u2019ve detected that JavaScript is disabled in this browser.</noscript>
    <div id="react-root" data-post-id="{html.escape(post_id)}" data-viewer="{viewer}">
      <main role="main" id="timeline"><div class="notice" aria-busy="true">Loading\u2026</div></main>
    </div>
    <script>{script}</script>
  </body>
</html>
"""


def _index_page() -> str:
    items = "\n".join(
        f'      <li><a href="{p.path}">{p.post_id}</a> &mdash; {html.escape(p.description)}</li>' for p in X_POSTS
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>X</title></head>
  <body>
    <h1>X fixture</h1>
    <ul>
{items}
    </ul>
  </body>
</html>
"""


_STATUS_PAGE = re.compile(
    r"^/(?:i/web/status|i/status|[A-Za-z0-9_]{1,15}/status)/(\d{1,25})(?:/(?:video|photo)/\d)?/?$"
)
_GRAPHQL = re.compile(r"^/i/api/graphql/([A-Za-z0-9_-]+)/(TweetResultByRestId|TweetDetail)$")
_PHOTO_PATH = re.compile(r"^(/media/[A-Za-z0-9_-]+)(?:\.(jpg|png))?$")
_PHOTO_NAMES = ("orig", "4096x4096", "large", "medium", "small", "900x900", "thumb")

# --------------------------------------------------------------------------------------------
# The site
# --------------------------------------------------------------------------------------------


@dataclass
class _State:
    """What the site remembers about one post between requests (see :meth:`XSite.reset`)."""

    extractions: int = 0
    sig: str | None = None
    refused_sig: str | None = None


class XSite(LoopbackSite):
    """The X-like site. ``media_dir`` holds the generated media (default: a cache directory in the
    system temp dir, shared with the sample site); ``throttle_bps`` limits every media response."""

    name = "xsite"

    def __init__(
        self,
        media_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle_bps: int | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(host=host, port=port, verbose=verbose)
        self.media_dir = Path(media_dir) if media_dir else Path(tempfile.gettempdir()) / "mediavault-samples"
        self.throttle_bps = throttle_bps
        self._states: dict[str, _State] = {}
        self._guests: set[str] = set()

    def prepare(self) -> None:
        generate_media(self.media_dir)

    # -- knobs ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every post's counters (extractions, signatures handed out, refused downloads): each
        failure mode starts over. Guest sessions already handed out stay valid."""
        with self._lock:
            self._states.clear()

    def post_url(self, post_id: str) -> str:
        handle = _HANDLES.get(post_id, "i")
        return self.url(f"/{handle}/status/{post_id}")

    def extractions(self, post_id: str) -> int:
        """How many GraphQL or syndication answers about ``post_id`` the site gave since the last reset."""
        with self._lock:
            return self._states.get(post_id, _State()).extractions

    def _issue(self, post_id: str, origin: str) -> _Issue:
        """Count one more answer about ``post_id`` and say how its changing URLs are written."""
        with self._lock:
            state = self._states.setdefault(post_id, _State())
            state.extractions += 1
            state.sig = hashlib.sha256(f"{post_id}:{state.extractions}:{secrets.token_hex(4)}".encode()).hexdigest()[
                :16
            ]
            first = state.extractions == 1
            return _Issue(
                origin=origin,
                sig=state.sig,
                expires=int(time.time()) + (-3600 if first else 3600),
            )

    # -- routing --------------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        path = exchange.path
        if path in ("/", "/home"):
            exchange.send_html(200, _index_page())
        elif path == "/tweet-result":
            self._syndication(exchange)
        elif match := _GRAPHQL.match(path):
            self._graphql(exchange, match.group(1), match.group(2))
        elif match := _STATUS_PAGE.match(path):
            self._page(exchange, match.group(1))
        elif path.endswith(".m3u8"):
            self._playlist(exchange)
        elif path.startswith(
            ("/media/", "/ext_tw_video/", "/tweet_video/", "/ext_tw_video_thumb/", "/tweet_video_thumb/")
        ):
            self._media(exchange)
        else:
            exchange.send_html(404, "<!DOCTYPE html><title>Page not found / X</title><p>This page doesn\u2019t exist.")

    # -- pages and JSON -------------------------------------------------------------------

    def _page(self, exchange: Exchange, post_id: str) -> None:
        logged_in = exchange.cookie("auth_token") == XSITE_AUTH_TOKEN
        extra: dict[str, str] = {}
        guest = exchange.cookie(GUEST_COOKIE)
        with self._lock:
            known = guest in self._guests
        if not logged_in and not known:
            guest = quote(f"v1:{time.time_ns() // 1000}{secrets.randbelow(1000):03d}", safe="")
            with self._lock:
                self._guests.add(guest)
            expires = (datetime.now(UTC) + timedelta(days=396)).strftime("%a, %d %b %Y %H:%M:%S GMT")
            extra["Set-Cookie"] = f"{GUEST_COOKIE}={guest}; Max-Age=34214400; Expires={expires}; Path=/; SameSite=Lax"
        exchange.send_html(200, _post_page(post_id, logged_in=logged_in), extra=extra)

    def _graphql(self, exchange: Exchange, query_id: str, operation: str) -> None:
        wanted = TWEET_RESULT_QUERY_ID if operation == "TweetResultByRestId" else TWEET_DETAIL_QUERY_ID
        if query_id != wanted:
            exchange.send_json(404, {"errors": [{"message": "Query: Unspecified"}]})
            return
        try:
            variables = json.loads(exchange.arg("variables") or "")
            post_id = str(variables["tweetId" if operation == "TweetResultByRestId" else "focalTweetId"])
        except (ValueError, KeyError, TypeError):
            exchange.send_json(400, {"errors": [{"code": 214, "message": "BadRequest: variables are invalid"}]})
            return
        logged_in = exchange.cookie("auth_token") == XSITE_AUTH_TOKEN
        tweet = _TWEETS.get(post_id)
        state = tweet.state if tweet is not None else "missing"
        result: dict[str, Any] | None
        if state == "missing" or tweet is None:
            result = None
        elif state == "tombstone":
            result = _tombstone()
        elif state == "protected":
            result = _unavailable("Protected")
        elif state == "nsfw" and not logged_in:
            result = _unavailable("NsfwLoggedOut")
        else:
            node = _graphql_tweet(post_id, tweet, self._issue(post_id, exchange.origin))
            if state == "nsfw":
                node = {
                    "__typename": "TweetWithVisibilityResults",
                    "tweet": node,
                    "tweetInterstitial": {
                        "__typename": "ContextualTweetInterstitial",
                        "displayType": "EntireTweet",
                        "text": {"rtl": False, "text": "This Post may contain sensitive content.", "entities": []},
                        "revealText": {"rtl": False, "text": "View", "entities": []},
                    },
                }
            result = node
        if operation == "TweetResultByRestId":
            exchange.send_json(200, {"data": {"tweetResult": {"result": result} if result else {}}})
            return
        if result is None:
            exchange.send_json(200, _missing_errors("threaded_conversation_with_injections_v2"))
            return
        exchange.send_json(200, self._detail(post_id, result, exchange.origin))

    def _detail(self, post_id: str, result: dict[str, Any], origin: str) -> dict[str, Any]:
        """A ``TweetDetail`` answer: the focal tweet and one reply under it (in a conversation module)."""
        reply_id = str(int(post_id) + _REPLY_ID_OFFSET)
        reply = _graphql_tweet(reply_id, _Tweet("Great shot!"), _Issue(origin))
        reply["core"]["user_results"]["result"] = _graphql_user(_USERS["replyguy"])
        reply["legacy"]["in_reply_to_status_id_str"] = post_id
        reply["legacy"]["conversation_id_str"] = post_id

        def item(result: dict[str, Any]) -> dict[str, Any]:
            return {
                "itemType": "TimelineTweet",
                "__typename": "TimelineTweet",
                "tweet_results": {"result": result},
                "tweetDisplayType": "Tweet",
            }

        entries = [
            {
                "entryId": f"tweet-{post_id}",
                "sortIndex": str(10**19 - int(post_id)),
                "content": {
                    "entryType": "TimelineTimelineItem",
                    "__typename": "TimelineTimelineItem",
                    "itemContent": {**item(result), "hasModeratedReplies": False},
                },
            },
            {
                "entryId": f"conversationthread-{reply_id}",
                "sortIndex": str(10**19 - int(reply_id)),
                "content": {
                    "entryType": "TimelineTimelineModule",
                    "__typename": "TimelineTimelineModule",
                    "items": [
                        {
                            "entryId": f"conversationthread-{reply_id}-tweet-{reply_id}",
                            "item": {"itemContent": item(reply)},
                        }
                    ],
                    "displayType": "VerticalConversation",
                },
            },
        ]
        instructions = [
            {"type": "TimelineClearCache"},
            {"type": "TimelineAddEntries", "entries": entries},
            {"type": "TimelineTerminateTimeline", "direction": "Top"},
        ]
        return {"data": {"threaded_conversation_with_injections_v2": {"instructions": instructions}}}

    def _syndication(self, exchange: Exchange) -> None:
        post_id, token = exchange.arg("id") or "", exchange.arg("token") or ""
        if not post_id.isdecimal() or token != expected_token(post_id):
            exchange.send_bytes(400, b"", "text/plain; charset=utf-8")
            return
        tweet = _TWEETS.get(post_id)
        state = tweet.state if tweet is not None else "missing"
        if tweet is None or state in ("missing", "protected"):
            exchange.send_bytes(404, b"", "text/plain; charset=utf-8")
        elif state == "tombstone":
            exchange.send_json(200, _tombstone())
        elif state in ("graphql-only", "nsfw"):
            exchange.send_json(200, {})
        else:
            exchange.send_json(200, _syndication_tweet(post_id, tweet, self._issue(post_id, exchange.origin)))

    # -- media ----------------------------------------------------------------------------

    def _playlist(self, exchange: Exchange) -> None:
        asset = _ASSETS.get(exchange.path)
        if asset is None or asset.kind != "playlist":
            exchange.send_bytes(404, b"", "text/plain")
            return
        base = exchange.path.rsplit("/", 1)
        lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for spec in CLIP_VARIANTS:
            bandwidth = _X_BITRATES[spec.height]
            lines.append(
                f"#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH={bandwidth},BANDWIDTH={bandwidth * 3 // 2},"
                f'RESOLUTION={spec.width}x{spec.height},CODECS="mp4a.40.2,avc1.640020"'
            )
            # The renditions' own playlists are not served: HLS is not this site's business.
            lines.append(f"{base[0]}/avc1/{spec.width}x{spec.height}/{base[1]}")
        exchange.send_bytes(200, ("\n".join(lines) + "\n").encode(), "application/x-mpegURL")

    def _media(self, exchange: Exchange) -> None:
        path, photo_size = exchange.path, None
        if match := _PHOTO_PATH.match(path):
            path = match.group(1)
            photo_size = exchange.arg("name") or "medium"
            if photo_size not in _PHOTO_NAMES:
                self._refuse(exchange, 400)
                return
        asset = _ASSETS.get(path)
        if asset is None:
            self._refuse(exchange, 404)
            return
        if asset.fault == "orig-404" and photo_size == "orig":
            self._refuse(exchange, 404)
            return
        if not self._allowed(exchange, asset):
            self._refuse(exchange, 403)
            return
        throttle = self.throttle_bps
        if _TWEETS[asset.post_id].slow:
            throttle = min(throttle or SLOW_MEDIA_BPS, SLOW_MEDIA_BPS)
        file = self.media_dir / asset.file
        if asset.fault == "html":
            exchange.send_bytes(200, _FAKE_MP4_BODY, "video/mp4")
        elif asset.fault == "empty":
            exchange.send_stream(io.BytesIO(b""), 0, "video/mp4", throttle_bps=throttle)
        elif asset.fault == "truncated":
            with file.open("rb") as stream:
                head = stream.read(_TRUNCATED_SIZE)
            exchange.send_stream(io.BytesIO(head), len(head), asset.content_type, throttle_bps=throttle)
        else:
            stat = file.stat()
            etag = '"' + hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16] + '"'
            extra = {"Cache-Control": "max-age=604800, must-revalidate", "Last-Modified": _http_date(stat.st_mtime)}
            with file.open("rb") as stream:
                exchange.send_stream(
                    stream, stat.st_size, asset.content_type, etag=etag, throttle_bps=throttle, extra=extra
                )

    def _allowed(self, exchange: Exchange, asset: _Asset) -> bool:
        """Whether the request passes the asset's access rule (the failure modes that answer 403)."""
        if asset.fault == "guest-cookie":
            with self._lock:
                return exchange.cookie(GUEST_COOKIE) in self._guests
        if asset.fault == "same-origin":
            return exchange.headers.get("Sec-Fetch-Site") == "same-origin"
        if asset.fault == "expiring":
            expires = exchange.arg("Expires") or ""
            if not expires.isdecimal() or int(expires) <= time.time():
                return False
            return secrets.compare_digest(exchange.arg("Signature") or "", _sign(exchange.path, int(expires)))
        if asset.fault == "stale-sig":
            sig = exchange.arg("sig")
            with self._lock:
                state = self._states.get(asset.post_id)
                if state is None or sig is None or sig != state.sig or sig == state.refused_sig:
                    return False
                if state.refused_sig is None:
                    state.refused_sig = sig  # the first download of a fresh URL is refused all the same
                    return False
                return True
        return True

    def _refuse(self, exchange: Exchange, status: int) -> None:
        messages: Mapping[int, bytes] = {400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found"}
        exchange.send_bytes(status, messages.get(status, b"Error"), "text/plain; charset=utf-8")


def _http_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
