"""Download one media item of a post, trying harder the way a person would when a link fails.

For each variant, best first: a direct download. When it fails validation (an HTML page, too small,
the wrong type) or answers 401/403/404/410, the retry chain goes on, each step logged with its
strategy:

1. ``cookies`` — the same URL with the browser session's cookies (the page is opened for them if
   the fast path answered) and the tenant's login cookies;
2. ``browser`` — a download driven by the browser itself (the page's own ``fetch()``);
3. ``re-extract`` — fresh URLs from a new extraction, and an untried candidate (another variant,
   or the same variant with a new signature).

Platforms whose media URLs are short-lived (``REFRESH_ON_403``, e.g. X) re-extract first when a
direct download answers 403/410: a fresh URL is the usual cure there and costs one JSON request,
where the cookies and browser steps cost a page load each. When the new extraction hands out the
same URLs, the chain goes on with the cookies and the browser as above.

A URL whose signature has expired (``Expires=``, ``X-Amz-Expires``, ``oe=``...) is never fetched:
it goes straight to re-extraction. Invalid bytes never reach S3: the downloaders validate before
they open an upload and abort it on any failure. When everything failed, the error is the last
cause's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from mediavault.errors import (
    BrowserError,
    InvalidMedia,
    MediaVaultError,
    NoMedia,
    PostNotFound,
    PostUnavailable,
    UpstreamUnavailable,
)
from mediavault.logins import LoginCookie
from mediavault.media.candidates import Candidate, rank
from mediavault.media.signed import is_expired
from mediavault.media.sniff import Sniffed
from mediavault.observability import logger, metrics
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader, Progress, Stored
from mediavault.worker.extract import BrowserBody
from mediavault.worker.sources import PostSource

MAX_REEXTRACTIONS = 2
MAX_CANDIDATES_PER_ITEM = 8
_MEDIA_KINDS = frozenset({"video", "gif", "photo"})


class HlsChoiceLike(Protocol):
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def bandwidth(self) -> int | None: ...


class HlsStore(Protocol):
    """What :class:`mediavault.worker.hls.HlsDownloader` offers the retry chain."""

    def probe(self, master_url: str, *, headers: dict[str, str] | None = None) -> HlsChoiceLike: ...

    def store(
        self, master_url: str, *, key_for: Callable[[Sniffed], str], min_bytes: int, deadline: Deadline | None = None,
        headers: dict[str, str] | None = None, progress: Progress | None = None, choice: Any = None,
    ) -> Stored: ...  # fmt: skip


class BrowserFetcher(Protocol):
    def fetch(
        self,
        page_url: str,
        media_url: str,
        consume: Callable[[BrowserBody], Stored],
        *,
        cookies: Sequence[LoginCookie] = (),
        session_cookies: Sequence[dict[str, Any]] = (),
    ) -> Stored: ...


class _Skipped(InvalidMedia):
    """A step that had nothing to try (no cookies for the host): logged, never the job's cause."""


@dataclass
class Fetched:
    stored: Stored
    candidate: Candidate
    strategy: str
    width: int | None = None
    height: int | None = None
    bitrate: int | None = None


@dataclass
class ItemFetch:
    """Everything one item's download needs; ``hls`` is None where HLS is not available."""

    source: PostSource
    downloader: Downloader
    hls: HlsStore | None
    extractor: BrowserFetcher
    key_for: Callable[[Sniffed], str]
    min_bytes: int
    deadline: Deadline
    progress: Progress | None
    clock: Callable[[], float]
    include_quoted: bool = False
    attempts: list[dict[str, str]] = field(default_factory=list)
    _hls_choices: dict[str, HlsChoiceLike] = field(default_factory=dict)  # probed masters, not fetched twice

    def run(self, index: int, candidates: list[Candidate]) -> Fetched:
        """Download item ``index`` from ``candidates`` (its variants), with the retry chain."""
        tried: set[str] = set()
        pending = self._order(candidates)
        reextractions = 0
        last: MediaVaultError | None = None
        while len(tried) < MAX_CANDIDATES_PER_ITEM:
            candidate = next((c for c in pending if c.url not in tried), None)
            if candidate is None:
                # New URLs cannot cure an outage: the queue retries the job later.
                if reextractions >= MAX_REEXTRACTIONS or (last is not None and last.retryable):
                    break
                reextractions += 1
                pending = self._fresh(index, tried)
                continue
            tried.add(candidate.url)
            if is_expired(candidate.url, now=self.clock()):
                self._log(candidate, "direct", "skipped: the URL's signature has expired")
                last = InvalidMedia(f"the signed URL of item {index} has expired ({_short(candidate.url)})")
                if reextractions < MAX_REEXTRACTIONS:
                    reextractions += 1
                    pending = self._fresh(index, tried) + pending
                continue
            for strategy in self._strategies(candidate):
                self.deadline.check("download")
                try:
                    fetched = self._try(strategy, candidate)
                except InvalidMedia as exc:
                    self._log(candidate, strategy, exc.message)
                    last = last if isinstance(exc, _Skipped) else exc
                    if strategy == "direct" and self._stale(exc) and reextractions < MAX_REEXTRACTIONS:
                        # The platform hands out short-lived URLs: a 403 means "ask again" first.
                        reextractions += 1
                        fresh = self._fresh(index, tried)
                        renewed = [c for c in fresh if _same_variant(c, candidate)]
                        pending = renewed + [c for c in pending if c.url not in tried] + fresh
                        if renewed:
                            break
                        # No new URL for this variant: it is not a stale one; the cookies and the
                        # browser may help (the other variants wait their turn).
                    continue
                except (PostNotFound, PostUnavailable) as exc:
                    if strategy == "direct":
                        raise
                    # Opening the post page for its cookies or its fetch failed: the step failed.
                    self._log(candidate, strategy, exc.message)
                    last = exc
                    continue
                except (UpstreamUnavailable, BrowserError) as exc:
                    # Upstream trouble (5xx, timeouts, a browser crash): another strategy will not help
                    # now; the other known variants may, else the queue retries the job later.
                    self._log(candidate, strategy, exc.message)
                    last = exc
                    break
                # Anything else (deadline, storage outage, too large, egress refusal, lease lost) ends
                # the item here and is the job's outcome.
                self._log(candidate, strategy, "ok")
                return fetched
            else:
                # Every strategy on this URL failed: new URLs next (then the other known variants).
                if reextractions < MAX_REEXTRACTIONS:
                    reextractions += 1
                    pending = self._fresh(index, tried) + [c for c in pending if c.url not in tried]
                continue
        if last is None:
            raise NoMedia(f"item {index} of the post has no downloadable variant")
        raise last

    # -- choosing ----------------------------------------------------------------------------

    def _order(self, candidates: list[Candidate]) -> list[Candidate]:
        """Files best first; an HLS rendition goes first when it offers more pixels than any file."""
        files = rank(candidates)
        manifests = [c for c in candidates if c.is_streaming_manifest and _is_hls(c)]
        if not manifests or self.hls is None:
            return files
        best_file = max(((c.width or 0) * (c.height or 0) for c in files if c.kind == "video"), default=0)
        best_rate = max((c.bitrate or 0 for c in files if c.kind == "video"), default=0)
        manifest = manifests[0]
        try:
            choice = self.hls.probe(manifest.url, headers=self._headers(manifest.url))
        except MediaVaultError as exc:
            self._log(manifest, "probe", exc.message)
            return files
        self._hls_choices[manifest.url] = choice
        pixels = (choice.width or 0) * (choice.height or 0)
        better = not files or pixels > best_file or (not best_file and (choice.bandwidth or 0) > best_rate)
        described = manifest.model_copy(update={"width": choice.width, "height": choice.height,
                                                "bitrate": choice.bandwidth})  # fmt: skip
        return [described, *files] if better else [*files, described]

    def _fresh(self, index: int, tried: set[str]) -> list[Candidate]:
        """Re-extract the post and return this item's untried candidates, best first."""
        self.deadline.check("re-extraction")
        metrics.add_metric(name="ReExtractions", unit="Count", value=1)
        try:
            info = self.source.extract()
        except MediaVaultError as exc:
            self.attempts.append({"strategy": "re-extract", "result": exc.message[:300]})
            logger.warning("re-extraction failed", extra={"strategy": "re-extract", "error": exc.message})
            return []
        same = [c for c in info.candidates if c.item == index and (self.include_quoted or not c.quoted)]
        fresh = [c for c in self._order(same) if c.url not in tried]
        self.attempts.append({"strategy": "re-extract", "result": f"{len(fresh)} untried candidate(s)"})
        logger.info("post re-extracted", extra={"strategy": "re-extract", "item": index, "untried": len(fresh)})
        return fresh

    def _stale(self, exc: InvalidMedia) -> bool:
        module = self.source.ref.module
        return bool(module is not None and module.REFRESH_ON_403 and exc.details.get("status") in (403, 410))

    def _strategies(self, candidate: Candidate) -> list[str]:
        if candidate.is_streaming_manifest:
            return ["direct", "cookies"]
        return ["direct", "cookies", "browser"]

    # -- downloading -------------------------------------------------------------------------

    def _try(self, strategy: str, candidate: Candidate) -> Fetched:
        if strategy == "direct":
            headers = self._headers(candidate.url)
        elif strategy == "cookies":
            cookie = self._cookie_header(candidate.url)
            if not cookie:
                raise _Skipped("skipped: no cookies for this host in the browser session or the login")
            headers = {**self._headers(candidate.url), "cookie": cookie}
        else:
            return self._browser(candidate)
        if candidate.is_streaming_manifest:
            if self.hls is None:
                raise InvalidMedia("HLS renditions are not downloaded by this worker")
            stored = self.hls.store(
                candidate.url, key_for=self.key_for, min_bytes=self.min_bytes, deadline=self.deadline,
                headers=headers, progress=self.progress, choice=self._hls_choices.get(candidate.url),
            )  # fmt: skip
        else:
            stored = self.downloader.store(
                candidate.url, key_for=self.key_for, kinds=_MEDIA_KINDS, min_bytes=self.min_bytes,
                deadline=self.deadline, headers=headers, progress=self.progress,
            )  # fmt: skip
        return Fetched(stored, candidate, strategy, candidate.width, candidate.height, candidate.bitrate)

    def _browser(self, candidate: Candidate) -> Fetched:
        page = self.source.page()

        def consume(body: BrowserBody) -> Stored:
            return store_browser_body(self.downloader, body, key_for=self.key_for, min_bytes=self.min_bytes,
                                      deadline=self.deadline, progress=self.progress)  # fmt: skip

        stored = self.extractor.fetch(
            self.source.ref.page_url, candidate.url, consume,
            cookies=self.source.login_cookies, session_cookies=page.cookies,
        )  # fmt: skip
        return Fetched(stored, candidate, "browser", candidate.width, candidate.height, candidate.bitrate)

    def _headers(self, url: str) -> dict[str, str]:
        """Requests look like the page's own: its referer, and its user agent once the page was open."""
        headers = {"referer": self.source.ref.page_url}
        page = self.source.page_result
        if page is not None and page.user_agent:
            headers["user-agent"] = page.user_agent
        return headers

    def _cookie_header(self, url: str) -> str:
        jar = [*self.source.page().cookies, *(c.for_playwright() for c in self.source.login_cookies)]
        return cookie_header(jar, url)

    def _log(self, candidate: Candidate, strategy: str, result: str) -> None:
        self.attempts.append({"strategy": strategy, "url": _short(candidate.url), "result": result[:300]})
        extra = {"strategy": strategy, "url": _short(candidate.url), "item": candidate.item, "result": result}
        if result == "ok":
            logger.info("media downloaded", extra=extra)
        else:
            logger.warning("download strategy failed", extra=extra)


def store_browser_body(
    downloader: Downloader,
    body: BrowserBody,
    *,
    key_for: Callable[[Sniffed], str],
    min_bytes: int,
    deadline: Deadline,
    progress: Progress | None,
) -> Stored:
    """Validate and store a body the browser fetched, exactly as a direct download is."""
    headers = {}
    if body.content_type:
        headers["content-type"] = body.content_type
    if body.length is not None:
        headers["content-length"] = str(body.length)
    response = httpx.Response(body.status, headers=headers, content=_Chunks(body.chunks))
    return downloader.store_response(
        body.url, response, key_for=key_for, kinds=_MEDIA_KINDS, min_bytes=min_bytes,
        deadline=deadline, progress=progress,
    )  # fmt: skip


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def cookie_header(jar: list[dict[str, object]], url: str) -> str:
    """The ``Cookie`` header a browser would send to ``url`` from ``jar`` (Playwright's cookie
    shape): domain and path match, ``Secure`` cookies only over https."""
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path or "/"
    chosen: dict[str, str] = {}
    for cookie in jar:
        domain = str(cookie.get("domain") or "").lower()
        if not domain and cookie.get("url"):
            domain = (urlsplit(str(cookie["url"])).hostname or "").lower()
        bare = domain.lstrip(".")
        if not bare or not (host == bare or host.endswith("." + bare)):
            continue
        cookie_path = str(cookie.get("path") or "/")
        if not (path == cookie_path or path.startswith(cookie_path.rstrip("/") + "/") or cookie_path == "/"):
            continue
        if cookie.get("secure") and parts.scheme != "https":
            continue
        chosen.setdefault(str(cookie["name"]), str(cookie["value"]))
    return "; ".join(f"{name}={value}" for name, value in chosen.items())


def _same_variant(fresh: Candidate, old: Candidate) -> bool:
    """``fresh`` is ``old`` under a new URL (a new signature or token): same file, or same figures."""
    if fresh.url == old.url:
        return False
    if fresh.url.split("?", 1)[0] == old.url.split("?", 1)[0]:
        return True
    figures = (fresh.kind, fresh.width, fresh.height, fresh.bitrate)
    return figures == (old.kind, old.width, old.height, old.bitrate) and any(figures[1:])


def _is_hls(candidate: Candidate) -> bool:
    ctype = (candidate.content_type or "").lower()
    return "mpegurl" in ctype or candidate.url.split("?", 1)[0].lower().endswith(".m3u8")


def _short(url: str) -> str:
    """A URL for logs: no query string (signatures, tokens)."""
    return url.split("?", 1)[0][:300]
