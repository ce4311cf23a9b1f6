"""One headless Chromium per warm process, a fresh context per job, everything closed on the way out.

Playwright's sync API is bound to the thread that started it, so the session is per thread (a
Lambda process has one; the local stack runs each worker on its own thread).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from mediavault.observability import logger

# --single-process breaks Playwright's contexts; /dev/shm is tiny on Lambda; no background traffic.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
)


class BrowserSession:
    """A lazily launched browser, relaunched if it died, shared by the jobs of one warm worker."""

    def __init__(self, *, executable_path: str | None = None, args: tuple[str, ...] = CHROMIUM_ARGS) -> None:
        self._executable_path = executable_path
        self._args = args
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.launches = 0

    @property
    def browser(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            self.close()
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                headless=True, executable_path=self._executable_path, args=list(self._args)
            )
            self.launches += 1
            logger.info("browser launched", extra={"launches": self.launches, "version": self._browser.version})
        return self._browser

    @contextmanager
    def context(self, **options: Any) -> Iterator[BrowserContext]:
        """A fresh, isolated context (cookies, cache, storage) for one job."""
        context = self.browser.new_context(service_workers="block", accept_downloads=False, **options)
        try:
            yield context
        finally:
            try:
                context.close()
            except Exception:
                logger.warning("browser context did not close cleanly")

    def close(self) -> None:
        """Close the browser and the Playwright driver (no Chromium process is left behind)."""
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        for closer in (browser.close if browser else None, playwright.stop if playwright else None):
            if closer is not None:
                with contextlib.suppress(Exception):  # shutting down; nothing left to save
                    closer()


_local = threading.local()
_sessions: list[BrowserSession] = []
_sessions_lock = threading.Lock()


def thread_session(executable_path: str | None) -> BrowserSession:
    """This thread's warm browser session (created on first use)."""
    session: BrowserSession | None = getattr(_local, "session", None)
    if session is None:
        session = BrowserSession(executable_path=executable_path)
        _local.session = session
        with _sessions_lock:
            _sessions.append(session)
    return session


def close_thread_session() -> None:
    """Close this thread's browser (Playwright's sync objects must be closed by their own thread)."""
    session: BrowserSession | None = getattr(_local, "session", None)
    if session is not None:
        session.close()
        _local.session = None
        with _sessions_lock:
            if session in _sessions:
                _sessions.remove(session)


@atexit.register
def _close_all() -> None:
    # Only the main thread's session can be closed here; worker threads close their own.
    close_thread_session()
