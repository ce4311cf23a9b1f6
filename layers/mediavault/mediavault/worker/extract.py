"""Open a post in headless Chromium and collect what it says about its media.

Media is found by generic means: JSON the page's player fetched (variant lists), media responses
seen on the network, ``<video>``/``<source>``, ``og:video``, ``twitter:player:stream`` and JSON-LD
``VideoObject``. Parsing lives in :mod:`mediavault.platforms.generic`; this module only drives the
browser.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Response, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from mediavault.errors import (
    BrowserError,
    EgressBlocked,
    InvalidMedia,
    MediaVaultError,
    PostNotFound,
    PostUnavailable,
    UpstreamUnavailable,
)
from mediavault.logins import LoginCookie, LoginCookiesInvalid
from mediavault.media.candidates import Candidate
from mediavault.observability import logger
from mediavault.platforms.base import PostInfo
from mediavault.platforms.generic import DOM_SNAPSHOT_JS, parse_dom, parse_json_media
from mediavault.safety.egress import EgressPolicy
from mediavault.safety.proxy import BlockedHop, EgressProxy
from mediavault.worker.browser import BrowserSession
from mediavault.worker.download import int_or_none

_MAX_JSON_BYTES = 8 * 1024 * 1024  # a TweetDetail conversation can be a few MB
#: ``(response URL, parsed JSON) -> PostInfo | None``: a platform's reading of the JSON its page received.
JsonParser = Callable[[str, Any], PostInfo | None]
_QUIET_SECONDS = 0.5
# When the markup already names a video, only the page's own API calls can still improve on it:
# stop once none is in flight and none started for this long.
_API_GRACE_SECONDS = 0.15
_API_TYPES = frozenset({"xhr", "fetch"})
_POLL_MS = 100


@dataclass
class PageResult:
    """A post as the browser saw it, plus the session state a download may need."""

    info: PostInfo
    cookies: list[dict[str, Any]] = field(default_factory=list)
    user_agent: str | None = None
    blocked: list[str] = field(default_factory=list)


class BrowserExtractor:
    """Opens a post in a fresh context of the session's browser.

    The boundary is the session's egress proxy: every connection of the browser is checked there, at
    connect time, redirect hops included. ``prefilter`` adds cheap early refusals (literal forbidden
    addresses, before the page is opened and for each request via ``page.route``); ``page.route`` is
    not a boundary: it sees neither redirect hops nor WebSockets nor ``context.request``.
    """

    def __init__(
        self,
        session: BrowserSession,
        policy: EgressPolicy,
        *,
        timeout: float,
        settle: float,
        prefilter: bool = True,
    ) -> None:
        self._session = session
        self._policy = policy
        self._timeout_ms = timeout * 1000
        self._settle = settle
        self._prefilter = prefilter

    def extract(
        self, url: str, *, cookies: Sequence[LoginCookie] = (), parse_json: JsonParser | None = None
    ) -> PageResult:
        """Open ``url`` and collect its media. ``parse_json`` reads the platform's own JSON (the
        responses the page's script fetched); the generic readers apply to everything else."""
        refuse_navigation(url)
        if self._prefilter:
            self._policy.check_literal(url)
        try:
            return self._extract(url, cookies, parse_json)
        except MediaVaultError:
            raise
        except PlaywrightTimeout as exc:
            raise UpstreamUnavailable(f"the post page did not load in time ({url})") from exc
        except PlaywrightError as exc:
            raise BrowserError(f"browser failed on {url}: {str(exc).splitlines()[0]}") from exc

    def _extract(self, url: str, cookies: Sequence[LoginCookie], parse_json: JsonParser | None) -> PageResult:
        json_responses: list[Response] = []
        media: list[Candidate] = []
        in_flight: set[Request] = set()
        last_activity = [time.monotonic()]
        api_in_flight: set[Request] = set()
        last_api = [time.monotonic()]
        hops = _Hops()

        def guard(route: Route) -> None:
            target = route.request.url
            if target.startswith(("data:", "blob:")) or target == "about:blank":
                route.continue_()
                return
            try:
                self._policy.check_literal(target)
            except MediaVaultError:
                hops.refused.append(target)
                route.abort("blockedbyclient")
                return
            route.continue_()

        def on_request(request: Request) -> None:
            in_flight.add(request)
            last_activity[0] = time.monotonic()
            if request.resource_type in _API_TYPES:
                api_in_flight.add(request)
                last_api[0] = last_activity[0]
            hops.seen.append(request.url)
            if _is_main_frame_navigation(request, page):
                hops.navigations.append(request.url)

        def on_done(request: Request) -> None:
            in_flight.discard(request)
            last_activity[0] = time.monotonic()
            if request in api_in_flight:
                api_in_flight.discard(request)
                last_api[0] = last_activity[0]

        def on_failed(request: Request) -> None:
            on_done(request)
            hops.failed.add(request.url)

        def on_response(response: Response) -> None:
            ctype = (response.headers.get("content-type") or "").lower()
            if "json" in ctype and response.ok:
                json_responses.append(response)
            elif ctype.startswith(("video/", "image/gif")) and response.status in (200, 206):
                kind = "gif" if ctype.startswith("image/gif") else "video"
                media.append(Candidate(url=response.url, kind=kind, source="network", content_type=ctype))

        proxy = self._session.proxy
        with self._session.context() as context:
            proxy.take_blocked()  # what earlier jobs or the browser itself ran into is not this job's
            if cookies:
                try:
                    context.add_cookies([c.for_playwright() for c in cookies])  # type: ignore[misc]
                except PlaywrightError:
                    raise LoginCookiesInvalid("the browser refused the configured login cookies") from None
            page = self._session.page(context)
            if self._prefilter:
                page.route("**/*", guard)
            page.on("request", on_request)
            page.on("requestfinished", on_done)
            page.on("requestfailed", on_failed)
            page.on("response", on_response)
            page.on("websocket", lambda ws: hops.seen.append(ws.url))
            try:
                response = page.goto(url, wait_until="domcontentloaded", timeout=self._timeout_ms)
                hops.raise_if_navigation_refused(proxy)
                _check_status(url, response)

                # Wait for the player: until media JSON arrived, or the network was quiet, or -- when
                # the markup already names a video -- the page's API calls are done, or time ran out.
                deadline = time.monotonic() + self._settle
                info = PostInfo(url=url)
                read: set[int] = set()
                markup = parse_dom(page.evaluate(DOM_SNAPSHOT_JS))
                markup_video = any(
                    c.kind in ("video", "gif") and not c.is_streaming_manifest for c in markup.candidates
                )
                while True:
                    info = _read_json(json_responses, read, info, parse_json)
                    have_structured = any(c.source in ("network-json", "platform") for c in info.candidates)
                    now = time.monotonic()
                    quiet = not in_flight and now - last_activity[0] >= _QUIET_SECONDS
                    settled = markup_video and not api_in_flight and now - last_api[0] >= _API_GRACE_SECONDS
                    if have_structured or quiet or settled or now >= deadline:
                        break
                    page.wait_for_timeout(_POLL_MS)
                info = _read_json(json_responses, read, info, parse_json)
                # A meta refresh or a script may have sent the page itself somewhere forbidden.
                hops.raise_if_navigation_refused(proxy)

                snapshot = page.evaluate(DOM_SNAPSHOT_JS)
                user_agent = page.evaluate("navigator.userAgent")
            except PlaywrightError:
                hops.raise_if_navigation_refused(proxy)
                raise
            dom = parse_dom(snapshot)
            if any(c.source == "platform" for c in info.candidates):
                # The platform's own data is the post: the page's markup and stray media responses
                # (previews, other posts in the timeline) only fill in what it left out.
                info = info.merge(dom.model_copy(update={"candidates": []}))
            else:
                info = dom.merge(info)
                info.candidates.extend(media)
            info.url = url
            result = PageResult(
                info=info,
                cookies=[dict(cookie) for cookie in context.cookies()],
                user_agent=user_agent,
                blocked=hops.refused_requests(proxy.take_blocked()),
            )
        if result.blocked:
            logger.warning("requests of the page refused by the egress policy", extra={"blocked": result.blocked[:10]})
        return result

    def prewarm(self) -> None:
        """Between jobs: get the next job's browser context ready (see ``BrowserSession.prewarm``)."""
        self._session.prewarm()

    def fetch(
        self,
        page_url: str,
        media_url: str,
        consume: Callable[[BrowserBody], _T],
        *,
        cookies: Sequence[LoginCookie] = (),
        session_cookies: Sequence[dict[str, Any]] = (),
    ) -> _T:
        """A download driven by the browser itself: open the post page, ``fetch()`` the media from the
        page's own script (its cookies, its headers, its ``Sec-Fetch-*``), and hand the body to
        ``consume`` as a stream of chunks read out of the page one at a time (never whole in memory).

        The request still leaves through the egress proxy, like everything the browser does.
        """
        refuse_navigation(page_url)
        refuse_navigation(media_url)
        if self._prefilter:
            self._policy.check_literal(page_url)
            self._policy.check_literal(media_url)
        proxy = self._session.proxy
        try:
            with self._session.context() as context:
                proxy.take_blocked()
                jar = [c.for_playwright() for c in cookies] + [dict(c) for c in session_cookies]
                if jar:
                    context.add_cookies(jar)  # type: ignore[arg-type]
                page = self._session.page(context)
                page.goto(page_url, wait_until="domcontentloaded", timeout=self._timeout_ms)
                head = page.evaluate(_FETCH_OPEN_JS, media_url)
                if head.get("error"):
                    if any(b.matches(media_url) for b in proxy.take_blocked()):
                        raise EgressBlocked(f"the browser's request to {media_url} was refused", url=media_url)
                    raise InvalidMedia(f"the page could not fetch {media_url}: {head['error']}")

                def chunks() -> Iterator[bytes]:
                    while True:
                        encoded = page.evaluate(_FETCH_READ_JS, _FETCH_CHUNK)
                        if encoded is None:
                            return
                        yield base64.b64decode(encoded)

                body = BrowserBody(
                    url=media_url,
                    status=int(head["status"]),
                    content_type=head.get("type"),
                    length=int_or_none(head.get("length")),
                    chunks=chunks(),
                )
                return consume(body)
        except MediaVaultError:
            raise
        except PlaywrightTimeout as exc:
            raise UpstreamUnavailable(f"the browser download of {media_url} timed out") from exc
        except PlaywrightError as exc:
            raise BrowserError(f"browser download of {media_url} failed: {str(exc).splitlines()[0]}") from exc


_T = TypeVar("_T")
_FETCH_CHUNK = 1024 * 1024

# Opens the body in the page; the reader stays on ``window`` for the reads that follow.
_FETCH_OPEN_JS = """async (url) => {
  try {
    const response = await fetch(url, {credentials: "include", cache: "no-store"});
    window.__mediavaultReader = response.body ? response.body.getReader() : null;
    return {status: response.status, type: response.headers.get("content-type"),
            length: response.headers.get("content-length")};
  } catch (error) {
    return {error: String(error)};
  }
}"""

# Reads up to ``limit`` bytes and returns them base64-encoded (null at the end of the body).
_FETCH_READ_JS = """async (limit) => {
  const reader = window.__mediavaultReader;
  if (!reader) return null;
  const parts = [];
  let size = 0;
  while (size < limit) {
    const {done, value} = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
  }
  if (size === 0) return null;
  let binary = "";
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, part.subarray(i, i + 0x8000));
    }
  }
  return btoa(binary);
}"""


@dataclass
class BrowserBody:
    """A response the page's script fetched, read out in chunks."""

    url: str
    status: int
    content_type: str | None
    length: int | None
    chunks: Iterator[bytes]


_NAVIGABLE_SCHEMES = frozenset({"http", "https"})


def refuse_navigation(url: str) -> None:
    """Only http(s) pages are opened: ``file:``, ``data:``, ``chrome:``, ``javascript:``, ``blob:``,
    ``view-source:``... are refused before the browser sees them (``about:blank`` is harmless)."""
    if url == "about:blank":
        return
    scheme, sep, _ = url.partition(":")
    if not sep or scheme.strip().lower() not in _NAVIGABLE_SCHEMES or scheme != scheme.strip():
        shown = scheme.strip().lower() if sep else "(none)"
        raise EgressBlocked(f"{shown}: URLs are not opened; only http and https", url=url[:200])


def _is_main_frame_navigation(request: Request, page: Page) -> bool:
    try:
        return request.is_navigation_request() and request.frame == page.main_frame
    except PlaywrightError:  # service worker requests have no frame
        return False


@dataclass
class _Hops:
    """What the page asked for, and what was refused (by ``page.route`` or by the proxy)."""

    seen: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # by the page.route prefilter

    def raise_if_navigation_refused(self, proxy: EgressProxy) -> None:
        """The page itself (its first request, a redirect hop, a refresh) was refused: the job fails
        ``EGRESS_BLOCKED`` naming that hop."""
        refusals = proxy.blocked
        for hop in self.navigations:
            by_proxy = any(b.matches(hop) and (b.method != "CONNECT" or hop in self.failed) for b in refusals)
            if by_proxy or hop in self.refused:
                raise EgressBlocked(f"the post page's request to {hop} was refused by the egress policy", url=hop)

    def refused_requests(self, refusals: list[BlockedHop]) -> list[str]:
        """The page's requests that were refused (the browser's own background traffic left out)."""
        out = list(dict.fromkeys(self.refused))
        for hop in dict.fromkeys(self.seen):
            if hop not in out and any(b.matches(hop) for b in refusals):
                out.append(hop)
        return out


def _check_status(url: str, response: Response | None) -> None:
    if response is None:
        return
    status = response.status
    if status in (404, 410):
        raise PostNotFound(f"the post answered {status} ({url})")
    if status in (401, 403):
        raise PostUnavailable(f"the post answered {status}: it needs a login or is private ({url})")
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(f"the post answered {status} ({url})")


def _read_json(responses: list[Response], read: set[int], info: PostInfo, parse_json: JsonParser | None) -> PostInfo:
    for index, response in enumerate(responses):
        if index in read:
            continue
        read.add(index)
        try:
            body = response.body()
        except PlaywrightError:
            continue
        if len(body) > _MAX_JSON_BYTES:
            continue
        try:
            data = json.loads(body)
        except ValueError:
            continue
        found = parse_json(response.url, data) if parse_json is not None else None
        info = info.merge(found if found is not None else parse_json_media(data, response.url))
    return info
