"""Where a job learns about its post: a platform's JSON fast path, or the post page in the browser.

:class:`PostSource` remembers what it already did for the job, so the download retry chain can ask
for the browser session's cookies (opening the page only if the fast path answered) or for a fresh
extraction (new signed URLs) without redoing the rest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from mediavault.errors import LoginRequired, MediaVaultError, PostPrivate, UpstreamUnavailable
from mediavault.logins import LoginCookie
from mediavault.observability import logger
from mediavault.platforms import PostRef
from mediavault.platforms.base import PostInfo
from mediavault.worker.extract import JsonParser, PageResult

_MAX_JSON_BYTES = 8 * 1024 * 1024


def http_get_json(client: httpx.Client, url: str) -> tuple[int, Any]:
    """GET a JSON endpoint through the egress-checked client: ``(status, parsed body or None)``."""
    try:
        with client.stream("GET", url, headers={"accept": "application/json"}) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_JSON_BYTES:
                    return response.status_code, None
    except MediaVaultError:
        raise
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"{url} could not be read: {type(exc).__name__}") from exc
    try:
        return response.status_code, json.loads(body) if body else None
    except ValueError:
        return response.status_code, None


class PostSource:
    """The job's view of its post: first extraction, the browser page (cookies), fresh extractions."""

    def __init__(
        self,
        ref: PostRef,
        *,
        extractor: Any,
        client: httpx.Client,
        login_cookies: Sequence[LoginCookie] = (),
    ) -> None:
        self.ref = ref
        self._extractor = extractor
        self._client = client
        self._login = list(login_cookies)
        self._page: PageResult | None = None
        self.fast_path_answered = False
        self.extractions = 0

    @property
    def login_cookies(self) -> list[LoginCookie]:
        return self._login

    @property
    def page_result(self) -> PageResult | None:
        """The browser's view, if the page was opened for this job."""
        return self._page

    def extract(self) -> PostInfo:
        """What the post holds: the platform's fast path when it answers, else the browser."""
        self.extractions += 1
        ref = self.ref
        module = ref.module
        if module is not None and ref.post_id and ref.api_base:
            try:
                info = module.fast_path(ref.post_id, ref.api_base, lambda url: http_get_json(self._client, url))
            except (LoginRequired, PostPrivate) as exc:
                if not self._login:
                    raise
                # Public endpoints do not know the tenant's login; the browser carries its cookies.
                logger.info("post needs the login; opening the page with it", extra={"code": exc.code})
                info = None
            if info is not None:
                self.fast_path_answered = True
                logger.info("post read from the platform's JSON", extra={"strategy": "fast-path",
                                                                         "platform": ref.platform})  # fmt: skip
                return self._label(info)
            logger.info("fast path had no answer; opening the page", extra={"platform": ref.platform})
        self._page = self._open()
        return self._label(self._page.info)

    def page(self) -> PageResult:
        """The browser's view of the post (opened now if the fast path answered before)."""
        if self._page is None:
            self._page = self._open()
        return self._page

    def _open(self) -> PageResult:
        ref = self.ref
        parse: JsonParser | None = None
        if ref.module is not None and ref.post_id:
            module, post_id = ref.module, ref.post_id

            def parse(url: str, data: Any) -> PostInfo | None:
                return module.parse_page_json(url, data, post_id)

        return self._extractor.extract(ref.page_url, cookies=self._login, parse_json=parse)

    def _label(self, info: PostInfo) -> PostInfo:
        ref = self.ref
        update: dict[str, Any] = {}
        if ref.platform != "generic" and info.platform == "generic":
            update["platform"] = ref.platform
        if ref.post_id and not info.post_id:
            update["post_id"] = ref.post_id
        return info.model_copy(update=update) if update else info
