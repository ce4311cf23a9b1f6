"""One headless Chromium per warm process, a fresh context per job, everything closed on the way out.

Playwright's sync API is bound to the thread that started it, so the session is per thread (a
Lambda process has one; the local stack runs each worker on its own thread).

Chromium reaches the network only through the session's :class:`~mediavault.safety.proxy.EgressProxy`
(started with the browser, stopped with it), which applies the egress policy to every connection at
connect time: redirect hops, subresources, ``fetch()``, WebSockets and ``context.request`` alike.
``<-loopback>`` takes loopback off Chromium's implicit proxy bypass list (without it pages reach
127.0.0.1 directly: measured), WebRTC may not send UDP past the proxy, QUIC is off, service workers are
blocked. See ``docs/security.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ProxySettings, sync_playwright

from mediavault.observability import logger
from mediavault.safety.egress import EgressPolicy
from mediavault.safety.proxy import EgressProxy

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
    # WebRTC would send STUN/TURN datagrams straight to any address a page names: only proxied TCP.
    # (--force-webrtc-ip-handling-policy alone does not stop them in Chromium 156: measured.)
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Chromium sends loopback and link-local hosts direct unless told otherwise.
PROXY_BYPASS = "<-loopback>"


def proxy_args(proxy_url: str) -> tuple[str, ...]:
    """The switches that send every connection of the browser through the egress proxy."""
    return (f"--proxy-server={proxy_url}", f"--proxy-bypass-list={PROXY_BYPASS}")


class BrowserSession:
    """A lazily launched browser, relaunched if it died, shared by the jobs of one warm worker.

    Its egress proxy (checking ``policy``) starts before the browser and stops after it.
    """

    def __init__(
        self,
        *,
        policy: EgressPolicy,
        executable_path: str | None = None,
        args: tuple[str, ...] = CHROMIUM_ARGS,
        proxy_options: dict[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self._executable_path = executable_path
        self._args = args
        self._proxy_options = dict(proxy_options or {})
        self._proxy: EgressProxy | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._spare: tuple[BrowserContext, Page] | None = None
        self.launches = 0

    @property
    def proxy(self) -> EgressProxy:
        """The running egress proxy of this session (started on first use)."""
        if self._proxy is None or not self._proxy.running:
            self._proxy = EgressProxy(self.policy, **self._proxy_options).start()
        return self._proxy

    @property
    def browser(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            self._close_browser()
            proxy = self.proxy
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                headless=True,
                executable_path=self._executable_path,
                args=[*self._args, *proxy_args(proxy.url)],
            )
            self.launches += 1
            logger.info(
                "browser launched",
                extra={"launches": self.launches, "version": self._browser.version, "proxy": proxy.url},
            )
        return self._browser

    @contextmanager
    def context(self, **options: Any) -> Iterator[BrowserContext]:
        """A fresh, isolated context (cookies, cache, storage) for one job.

        The context names the proxy too, so ``context.request`` (Playwright's own HTTP client, which
        does not go through the browser's network stack) passes the same policy: measured.
        """
        spare, self._spare = self._spare, None
        if spare is not None and not options and self._browser is not None and self._browser.is_connected():
            context = spare[0]
        else:
            if spare is not None:
                _close_quietly(spare[0])
            context = self._new_context(**options)
        try:
            yield context
        finally:
            try:
                context.close()
            except Exception:
                logger.warning("browser context did not close cleanly")

    def page(self, context: BrowserContext) -> Page:
        """The context's page: the one prepared with a spare context, else a new one."""
        return context.pages[0] if context.pages else context.new_page()

    def prewarm(self) -> None:
        """Prepare the next job's context and page now, between jobs, so that the next extraction does
        not wait for Chromium to start a renderer (~0.2 s here). The spare is fresh and unused: nothing
        of a previous job is in it. Only after the browser was launched (a cold worker stays lazy)."""
        if self._spare is not None or self._browser is None or not self._browser.is_connected():
            return
        try:
            context = self._new_context()
            self._spare = (context, context.new_page())
        except Exception:
            logger.warning("could not prepare a browser context for the next job")

    def _new_context(self, **options: Any) -> BrowserContext:
        proxy: ProxySettings = {"server": self.proxy.url, "bypass": PROXY_BYPASS}
        return self.browser.new_context(service_workers="block", accept_downloads=False, proxy=proxy, **options)

    def close(self) -> None:
        """Close the browser, the Playwright driver (no Chromium process is left behind), then the proxy."""
        self._close_browser()
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy.stop()

    def _close_browser(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            _close_quietly(spare[0])
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        for closer in (browser.close if browser else None, playwright.stop if playwright else None):
            if closer is not None:
                with contextlib.suppress(Exception):  # shutting down; nothing left to save
                    closer()


def _close_quietly(context: BrowserContext) -> None:
    with contextlib.suppress(Exception):
        context.close()


_local = threading.local()
_sessions: list[BrowserSession] = []
_sessions_lock = threading.Lock()


def thread_session(
    executable_path: str | None, policy: EgressPolicy, proxy_options: dict[str, Any] | None = None
) -> BrowserSession:
    """This thread's warm browser session (created on first use, or again if the policy changed)."""
    session: BrowserSession | None = getattr(_local, "session", None)
    if session is not None and (session.policy != policy or session.policy.resolver is not policy.resolver):
        close_thread_session()
        session = None
    if session is None:
        session = BrowserSession(executable_path=executable_path, policy=policy, proxy_options=proxy_options)
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
