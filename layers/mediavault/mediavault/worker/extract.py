"""Open a post in headless Chromium and collect what it says about its media.

Media is found by generic means: JSON the page's player fetched (variant lists), media responses
seen on the network, ``<video>``/``<source>``, ``og:video``, ``twitter:player:stream`` and JSON-LD
``VideoObject``. Parsing lives in :mod:`mediavault.platforms.generic`; this module only drives the
browser.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Request, Response, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from mediavault.errors import (
    BrowserError,
    EgressBlocked,
    MediaVaultError,
    PostNotFound,
    PostUnavailable,
    UpstreamUnavailable,
)
from mediavault.media.candidates import Candidate
from mediavault.observability import logger
from mediavault.platforms.base import PostInfo
from mediavault.platforms.generic import DOM_SNAPSHOT_JS, parse_dom, parse_json_media
from mediavault.safety.egress import EgressPolicy
from mediavault.worker.browser import BrowserSession

_MAX_JSON_BYTES = 2 * 1024 * 1024
_QUIET_SECONDS = 0.5
_POLL_MS = 100


@dataclass
class PageResult:
    """A post as the browser saw it, plus the session state a download may need."""

    info: PostInfo
    cookies: list[dict[str, Any]] = field(default_factory=list)
    user_agent: str | None = None
    blocked: list[str] = field(default_factory=list)


class BrowserExtractor:
    def __init__(self, session: BrowserSession, policy: EgressPolicy, *, timeout: float, settle: float) -> None:
        self._session = session
        self._policy = policy
        self._timeout_ms = timeout * 1000
        self._settle = settle

    def extract(self, url: str) -> PageResult:
        try:
            return self._extract(url)
        except MediaVaultError:
            raise
        except PlaywrightTimeout as exc:
            raise UpstreamUnavailable(f"the post page did not load in time ({url})") from exc
        except PlaywrightError as exc:
            raise BrowserError(f"browser failed on {url}: {str(exc).splitlines()[0]}") from exc

    def _extract(self, url: str) -> PageResult:
        blocked: list[str] = []
        json_responses: list[Response] = []
        media: list[Candidate] = []
        in_flight: set[Request] = set()
        last_activity = [time.monotonic()]

        def guard(route: Route) -> None:
            target = route.request.url
            if target.startswith(("data:", "blob:")):
                route.continue_()
                return
            try:
                self._policy.resolve(target)
            except MediaVaultError:
                blocked.append(target)
                route.abort("blockedbyclient")
                return
            route.continue_()

        def on_request(request: Request) -> None:
            in_flight.add(request)
            last_activity[0] = time.monotonic()

        def on_done(request: Request) -> None:
            in_flight.discard(request)
            last_activity[0] = time.monotonic()

        def on_response(response: Response) -> None:
            ctype = (response.headers.get("content-type") or "").lower()
            if "json" in ctype and response.ok:
                json_responses.append(response)
            elif ctype.startswith(("video/", "image/gif")) and response.status in (200, 206):
                kind = "gif" if ctype.startswith("image/gif") else "video"
                media.append(Candidate(url=response.url, kind=kind, source="network", content_type=ctype))

        with self._session.context() as context:
            page = context.new_page()
            page.route("**/*", guard)
            page.on("request", on_request)
            page.on("requestfinished", on_done)
            page.on("requestfailed", on_done)
            page.on("response", on_response)
            try:
                response = page.goto(url, wait_until="domcontentloaded", timeout=self._timeout_ms)
            except PlaywrightError as exc:
                if url in blocked or blocked:
                    raise EgressBlocked(f"fetch of {blocked[0]} refused by the egress policy", url=blocked[0]) from exc
                raise
            _check_status(url, response)

            # Wait for the player: until media JSON arrived, or the network was quiet, or time ran out.
            deadline = time.monotonic() + self._settle
            info = PostInfo(url=url)
            read: set[int] = set()
            while True:
                info = _read_json(json_responses, read, info)
                have_structured = any(c.source == "network-json" for c in info.candidates)
                quiet = not in_flight and time.monotonic() - last_activity[0] >= _QUIET_SECONDS
                if have_structured or quiet or time.monotonic() >= deadline:
                    break
                page.wait_for_timeout(_POLL_MS)
            info = _read_json(json_responses, read, info)

            snapshot = page.evaluate(DOM_SNAPSHOT_JS)
            dom = parse_dom(snapshot)
            info = dom.merge(info)
            info.candidates.extend(media)
            info.url = url
            result = PageResult(
                info=info,
                cookies=[dict(cookie) for cookie in context.cookies()],
                user_agent=page.evaluate("navigator.userAgent"),
                blocked=blocked,
            )
        if blocked:
            logger.warning("requests refused by the egress policy", extra={"blocked": blocked[:10]})
        return result


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


def _read_json(responses: list[Response], read: set[int], info: PostInfo) -> PostInfo:
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
        info = info.merge(parse_json_media(data, response.url))
    return info
