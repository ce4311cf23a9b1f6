"""Extraction benchmark: per-job latency and jobs/min of the fast path, the browser path (warm and
cold), a naive Playwright script and yt-dlp, side by side in one run, on ~1 MB posts.

Modes (each job = find the post's media, then download the best file into S3):

* ``fast``: an X post read through the platform's public JSON (``PostSource.extract()`` over the
  egress-checked httpx client; the syndication endpoint of ``XSite``), no browser.
* ``warm``: the browser path of the worker: ``PostSource.extract()`` with a ``BrowserExtractor`` on one
  ``BrowserSession`` reused by every job (a fresh context per job, traffic through the egress proxy).
* ``cold``: the same with a new ``BrowserSession`` per job (Playwright driver + Chromium launch, as in
  a cold Lambda container); the session is closed at the end of the job.
* ``naive``: what a straightforward Playwright script does: ``sync_playwright()`` + ``chromium.launch``
  per job, ``page.goto(url, wait_until="networkidle")``, the media URL read from the JSON the page
  received (highest ``bitrate``), JSON-LD, ``og:video`` or ``<video>``; browser closed; plain httpx download.
* ``yt-dlp``: ``yt_dlp.YoutubeDL(...).extract_info(url, download=False)`` in process (its generic
  extractor), then the same plain httpx download of the URL it found.

The first three download with the worker's own code (``ItemFetch.run`` -> ``Downloader`` with the HLS
probe, sniffing, sha256); ``naive`` and ``yt-dlp`` stream the body with plain httpx. Every mode writes
into the same store: ``S3MediaStore`` on moto's in-process ``mock_aws`` S3 (same multipart upload code),
so the S3 cost is the same for every mode. Objects are checked (size == the served file) and deleted
after each job, outside the timings.

Posts: ``XSite`` post ``...01`` (syndication answers: the fast path) and ``...06`` (only the page can
read it: GraphQL), both with ``clip-1080p.mp4`` (~1.08 MB) as best variant; ``SampleSite`` pages
``/posts/variants`` (the page's script fetches a variant list), ``/posts/og-video`` (720p, ~0.5 MB) and
``/posts/jsonld`` (1080p). All on loopback.

Rounds are interleaved: every round runs every (mode, post) job once, in a shuffled order; round 0 is a
warm-up and is excluded. Times are ``time.perf_counter`` seconds; the table quotes medians and p90.

Usage::

    .venv/bin/python bench/extraction.py --rounds 20 --out docs/benchmarks.md
    .venv/bin/python bench/extraction.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "mediavault"), str(ROOT)]

import boto3  # noqa: E402
import httpx  # noqa: E402
from moto import mock_aws  # noqa: E402

from mediavault.config import Settings  # noqa: E402
from mediavault.observability import logger as mediavault_logger  # noqa: E402
from mediavault.platforms import Platforms  # noqa: E402
from mediavault.safety.egress import EgressPolicy, egress_client  # noqa: E402
from mediavault.storage import S3MediaStore  # noqa: E402
from mediavault.worker.browser import BrowserSession  # noqa: E402
from mediavault.worker.deadline import Deadline  # noqa: E402
from mediavault.worker.download import Downloader  # noqa: E402
from mediavault.worker.extract import BrowserExtractor  # noqa: E402
from mediavault.worker.fetch import ItemFetch  # noqa: E402
from mediavault.worker.hls import HlsDownloader  # noqa: E402
from mediavault.worker.pipeline import media_items  # noqa: E402
from mediavault.worker.sources import PostSource  # noqa: E402
from mediavault_local.samples import SAMPLE_POSTS, SampleSite  # noqa: E402
from mediavault_local.samples.xsite import XSite  # noqa: E402

SECTION_BEGIN = "<!-- bench/extraction.py: begin -->"
SECTION_END = "<!-- bench/extraction.py: end -->"
BUCKET = "mediavault-bench"
MODES = ("fast", "warm", "cold", "naive", "yt-dlp")
CHUNK = 1024 * 1024
FAST_X_POST = "1790100000000000001"  # syndication answers
PAGE_X_POST = "1790100000000000006"  # syndication {}: only the page (GraphQL) can read it
GOAL_JOBS_RATIO = 3.0  # fast-path jobs/min >= 3x the naive baseline's
GOAL_EXTRACTION_RATIO = 0.3  # warm browser-path extraction latency <= 0.3x the naive one

_DEFAULTS = Settings.model_fields
PAGE_TIMEOUT = float(_DEFAULTS["page_timeout_seconds"].default)
PAGE_SETTLE = float(_DEFAULTS["page_settle_seconds"].default)
FETCH_TIMEOUT = float(_DEFAULTS["fetch_timeout_seconds"].default)
FETCH_MAX_SECONDS = float(_DEFAULTS["fetch_max_seconds"].default)
MIN_MEDIA_BYTES = int(_DEFAULTS["min_media_bytes"].default)
MAX_MEDIA_BYTES = int(_DEFAULTS["max_media_bytes"].default)


@dataclass(frozen=True)
class Post:
    """One post of the benchmark: ``group`` is what modes are compared on (the same page and file)."""

    key: str  # "x-01", "x-06", "variants", ...
    group: str  # "x" for both X posts, else the page
    site: str  # "x" | "sample"
    path: str
    expected_file: str
    modes: tuple[str, ...]


POSTS: tuple[Post, ...] = (
    Post("x-01", "x", "x", f"/harbourcam/status/{FAST_X_POST}", "clip-1080p.mp4", ("fast",)),
    Post("x-06", "x", "x", f"/pierpost/status/{PAGE_X_POST}", "clip-1080p.mp4", ("warm", "cold", "naive")),
    Post("variants", "variants", "sample", "/posts/variants", "clip-1080p.mp4", ("warm", "cold", "naive")),
    Post("og-video", "og-video", "sample", "/posts/og-video", "clip-720p.mp4", ("warm", "cold", "naive", "yt-dlp")),
    Post("jsonld", "jsonld", "sample", "/posts/jsonld", "clip-1080p.mp4", ("warm", "cold", "naive", "yt-dlp")),
)
QUICK_POSTS = ("x-01", "x-06", "jsonld")
EXPECTED = {post.path: post.expected_media or "-" for post in SAMPLE_POSTS}
#: Sample-site pages whose yt-dlp coverage is reported (extraction only, once, untimed).
COVERAGE_PAGES = ("/posts/variants", "/posts/og-video", "/posts/video-tag", "/posts/jsonld", "/posts/animated")


@dataclass
class Job:
    mode: str
    post: str
    group: str
    round: int
    extract_s: float = 0.0
    job_s: float = 0.0
    bytes: int = 0
    file: str = ""
    ok: bool = False
    error: str | None = None
    stages: dict[str, float] = field(default_factory=dict)  # warm jobs: where the extraction time went
    after_s: float = 0.0  # warm jobs: preparing the next job's browser context, after the job


@dataclass
class Row:
    mode: str
    post: str
    group: str
    jobs: int
    ok: int
    extract_median: float
    extract_p90: float
    job_median: float
    job_p90: float
    files: str
    bytes: int

    @property
    def jobs_per_min(self) -> float:
        return 60.0 / self.job_median if self.job_median > 0 else 0.0


@dataclass
class Report:
    jobs: list[Job]
    rows: list[Row]
    coverage: list[tuple[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)

    def row(self, mode: str, group: str) -> Row | None:
        return next((r for r in self.rows if r.mode == mode and r.group == group), None)


# --------------------------------------------------------------------------------------------
# The rig: sites, S3, the worker's collaborators
# --------------------------------------------------------------------------------------------


class Rig:
    """Everything the jobs share: the two loopback sites, moto S3, the egress-checked client, the warm
    browser session (main thread), and the per-job pieces the cold and naive modes build."""

    def __init__(self, *, chromium: str, media_dir: Path) -> None:
        self.chromium = chromium
        self.xsite = XSite(media_dir).start()
        self.site = SampleSite(media_dir).start()
        self.media_dir = media_dir
        sample_netloc = f"{self.site.host}:{self.site.port}"
        self.sample_base = f"http://{sample_netloc}"
        self.policy = EgressPolicy(allow=frozenset({self.xsite.netloc, sample_netloc}))
        self.platforms = Platforms(hosts={"x": [self.xsite.netloc]}, api={"x": self.xsite.base_url})
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.s3.create_bucket(Bucket=BUCKET)
        self.store = S3MediaStore(self.s3, BUCKET)
        self.http = egress_client(self.policy, timeout=FETCH_TIMEOUT, max_bytes=MAX_MEDIA_BYTES,
                                  max_seconds=FETCH_MAX_SECONDS)  # fmt: skip
        self.plain = httpx.Client(timeout=30, follow_redirects=True, trust_env=False)
        self.downloader = Downloader(self.http, self.store, max_bytes=MAX_MEDIA_BYTES)
        self.hls = HlsDownloader(self.http, self.store, max_bytes=MAX_MEDIA_BYTES)
        self.proxy_options = {"connect_timeout": min(FETCH_TIMEOUT, 10.0), "idle_timeout": FETCH_TIMEOUT,
                              "max_seconds": FETCH_MAX_SECONDS}  # fmt: skip
        self.warm_session = self.new_session()
        self.warm = self.new_extractor(self.warm_session)
        self._keys = 0

    def new_session(self) -> BrowserSession:
        return BrowserSession(policy=self.policy, executable_path=self.chromium, proxy_options=self.proxy_options)

    def new_extractor(self, session: BrowserSession) -> BrowserExtractor:
        return BrowserExtractor(session, self.policy, timeout=PAGE_TIMEOUT, settle=PAGE_SETTLE)

    def url(self, post: Post) -> str:
        return self.xsite.url(post.path) if post.site == "x" else self.sample_base + post.path

    def key(self, mode: str, ext: str) -> str:
        self._keys += 1
        return f"bench/{mode}/{self._keys}.{ext}"

    def close(self) -> None:
        self.warm_session.close()
        self.http.close()
        self.plain.close()
        self.xsite.stop()
        self.site.stop()

    # -- checks, outside the timings ------------------------------------------------------------

    def settle(self, job: Job, key: str | None, post: Post) -> None:
        """Check the stored object against the file the post's best variant is (its size: the X site
        serves it under other names), then delete it."""
        if key is None:
            return
        expected = (self.media_dir / post.expected_file).stat().st_size
        head = self.s3.head_object(Bucket=BUCKET, Key=key)
        job.bytes = int(head["ContentLength"])
        if job.bytes == expected:
            job.file = post.expected_file
        elif job.error is None:
            job.error = f"stored {job.bytes} B from {job.file}, expected {post.expected_file} ({expected} B)"
        job.ok = job.error is None
        self.s3.delete_object(Bucket=BUCKET, Key=key)


# --------------------------------------------------------------------------------------------
# The modes
# --------------------------------------------------------------------------------------------


def worker_path(rig: Rig, url: str, extractor: BrowserExtractor, job: Job, t0: float, *, expect_fast: bool) -> str:
    """The worker's own extraction (``PostSource``) and download (``ItemFetch``); returns the S3 key."""
    source = PostSource(rig.platforms.recognise(url), extractor=extractor, client=rig.http)
    info = source.extract()
    job.extract_s = time.perf_counter() - t0
    if source.fast_path_answered != expect_fast:
        raise RuntimeError(f"expected the {'fast path' if expect_fast else 'browser'}, got the other")
    items = media_items(info.candidates, include_quoted=False)
    if not items:
        raise RuntimeError("no media found")
    index, candidates = next(iter(items.items()))
    keys: list[str] = []

    def key_for(sniffed: Any) -> str:
        keys.append(rig.key(job.mode, sniffed.ext))
        return keys[-1]

    fetch = ItemFetch(
        source=source, downloader=rig.downloader, hls=rig.hls, extractor=extractor, key_for=key_for,
        min_bytes=MIN_MEDIA_BYTES, deadline=Deadline(lambda: 900_000, margin_seconds=30), progress=None,
        clock=time.time,
    )  # fmt: skip
    fetched = fetch.run(index, candidates)
    job.file = _file_name(fetched.stored.source_url)
    return fetched.stored.key


def run_fast(rig: Rig, post: Post, job: Job) -> str:
    t0 = time.perf_counter()
    key = worker_path(rig, rig.url(post), rig.warm, job, t0, expect_fast=True)
    job.job_s = time.perf_counter() - t0
    return key


def run_warm(rig: Rig, post: Post, job: Job) -> str:
    t0 = time.perf_counter()
    with STAGES.recording(job.stages):
        key = worker_path(rig, rig.url(post), rig.warm, job, t0, expect_fast=False)
    job.job_s = time.perf_counter() - t0
    # As the worker does after each record, off the job's clock: the next job's context is made ready.
    after = time.perf_counter()
    rig.warm.prewarm()
    job.after_s = time.perf_counter() - after
    return key


class StageClock:
    """Times the Playwright calls of the warm browser path (main thread only, while recording): where
    a warm extraction's time goes. Wraps a few sync-API methods once; the cost is a perf_counter pair."""

    WRAPPED = (
        ("Browser", "new_context", "new context"),
        ("BrowserContext", "new_page", "new page"),
        ("Page", "goto", "goto (DOM ready)"),
        ("Page", "wait_for_timeout", "waiting for media JSON / quiet"),
        ("Page", "evaluate", "DOM snapshot + user agent"),
        ("BrowserContext", "close", "context close"),
    )

    def __init__(self) -> None:
        self._target: dict[str, float] | None = None
        self._installed = False

    @contextlib.contextmanager
    def recording(self, into: dict[str, float]) -> Iterator[None]:
        self.install()
        self._target = into
        try:
            yield
        finally:
            self._target = None

    def install(self) -> None:
        if self._installed:
            return
        from playwright import sync_api

        for class_name, method, label in self.WRAPPED:
            cls = getattr(sync_api, class_name)
            setattr(cls, method, self._wrap(getattr(cls, method), label))
        self._installed = True

    def _wrap(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            target = clock._target
            if target is None or threading.current_thread() is not threading.main_thread():
                return original(*args, **kwargs)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                target[label] = target.get(label, 0.0) + time.perf_counter() - started

        return timed


STAGES = StageClock()


def run_cold(rig: Rig, post: Post, job: Job) -> str:
    """A new session per job: its launch is part of the extraction, its close part of the job."""

    def body() -> str:
        t0 = time.perf_counter()
        session = rig.new_session()
        try:
            key = worker_path(rig, rig.url(post), rig.new_extractor(session), job, t0, expect_fast=False)
        finally:
            session.close()
        job.job_s = time.perf_counter() - t0
        return key

    return in_fresh_thread(body)


# What a script reads from the page once the network is idle.
NAIVE_DOM_JS = """() => {
  const found = {jsonld: [], og: [], video: []};
  for (const s of document.querySelectorAll('script[type="application/ld+json"]')) {
    try { const d = JSON.parse(s.textContent); if (d && d.contentUrl) found.jsonld.push(d.contentUrl); } catch (e) {}
  }
  for (const m of document.querySelectorAll('meta[property="og:video"], meta[property="og:video:url"]')) {
    if (m.content) found.og.push(m.content);
  }
  for (const v of document.querySelectorAll('video[src], video source[src]')) found.video.push(v.src);
  return found;
}"""


def run_naive(rig: Rig, post: Post, job: Job) -> str:
    """A fresh Playwright + browser per job, networkidle, read the URL, close, download with httpx."""
    from playwright.sync_api import sync_playwright

    url = rig.url(post)

    def body() -> str:
        t0 = time.perf_counter()
        json_bodies: list[tuple[str, Any]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(headless=True, executable_path=rig.chromium)
            page = browser.new_page()
            responses: list[Any] = []
            page.on("response", lambda r: responses.append(r) if "json" in r.headers.get("content-type", "") else None)
            page.goto(url, wait_until="networkidle")
            dom = page.evaluate(NAIVE_DOM_JS)
            for response in responses:
                with contextlib.suppress(Exception):
                    json_bodies.append((response.url, response.json()))
            media_url = naive_pick(url, json_bodies, dom)
            job.extract_s = time.perf_counter() - t0
            browser.close()
        key = plain_download(rig, media_url, job)
        job.job_s = time.perf_counter() - t0
        return key

    return in_fresh_thread(body)


def naive_pick(page_url: str, json_bodies: list[tuple[str, Any]], dom: dict[str, list[str]]) -> str:
    """The highest-bitrate ``.mp4`` in the JSON the page received, else JSON-LD, og:video, ``<video>``."""
    best: tuple[int, str] | None = None
    for response_url, data in json_bodies:
        for node in _walk(data):
            link, rate = node.get("url"), node.get("bitrate")
            if isinstance(link, str) and ".mp4" in link and isinstance(rate, int) and (best is None or rate > best[0]):
                best = (rate, urljoin(response_url, link))
    if best is not None:
        return best[1]
    for source in ("jsonld", "og", "video"):
        if dom.get(source):
            return urljoin(page_url, dom[source][0])
    raise RuntimeError("no media URL on the page")


def _walk(data: Any) -> Iterator[dict[str, Any]]:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def run_ytdlp(rig: Rig, post: Post, job: Job) -> str:
    import yt_dlp
    from yt_dlp.utils import unsmuggle_url

    t0 = time.perf_counter()
    with yt_dlp.YoutubeDL(YTDLP_OPTIONS) as ydl:
        info = ydl.extract_info(rig.url(post), download=False)
    media_url, _ = unsmuggle_url(ytdlp_url(info))
    job.extract_s = time.perf_counter() - t0
    key = plain_download(rig, media_url, job)
    job.job_s = time.perf_counter() - t0
    return key


class _QuietLog:
    """yt-dlp prints errors to stderr even when quiet; the benchmark reports them itself."""

    def debug(self, message: str) -> None:
        pass

    info = warning = error = debug


YTDLP_OPTIONS: dict[str, Any] = {"quiet": True, "no_warnings": True, "noprogress": True, "logger": _QuietLog()}


def ytdlp_url(info: Any) -> str:
    """The URL of the format yt-dlp chose (``url``, or its ``requested_formats``/``formats``)."""
    if not isinstance(info, dict):
        raise RuntimeError("yt-dlp found nothing")
    if info.get("url"):
        return str(info["url"])
    for name in ("requested_formats", "formats"):
        formats = [f for f in info.get(name) or [] if f.get("url")]
        if formats:
            return str(formats[-1]["url"])
    entries = info.get("entries")
    if entries:
        return ytdlp_url(next(iter(entries)))
    raise RuntimeError("yt-dlp returned no URL")


def plain_download(rig: Rig, media_url: str, job: Job) -> str:
    """Stream ``media_url`` with plain httpx into the same S3 store as the worker (multipart upload)."""
    job.file = _file_name(media_url)
    ext = job.file.rsplit(".", 1)[-1] if "." in job.file else "bin"
    key = rig.key(job.mode, ext)
    with rig.plain.stream("GET", media_url) as response:
        response.raise_for_status()
        upload = rig.store.open_upload(key, content_type=response.headers.get("content-type", "video/mp4"))
        try:
            for chunk in response.iter_bytes(CHUNK):
                upload.write(chunk)
            upload.complete()
        except BaseException:
            upload.abort()
            raise
    return key


RUNNERS: dict[str, Callable[[Rig, Post, Job], str]] = {
    "fast": run_fast,
    "warm": run_warm,
    "cold": run_cold,
    "naive": run_naive,
    "yt-dlp": run_ytdlp,
}


def in_fresh_thread(body: Callable[[], str]) -> str:
    """Run ``body`` on a new thread: Playwright's sync API allows one driver per thread, and the main
    thread holds the warm session's. A new thread is what a new process would give a per-job browser."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["key"] = body()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target, name="per-job-browser")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return str(out["key"])


def _file_name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------
# Running and summarising
# --------------------------------------------------------------------------------------------


def yt_dlp_coverage(rig: Rig) -> list[tuple[str, str]]:
    """What yt-dlp's generic extractor makes of each sample page and of the X post page."""
    import yt_dlp
    from yt_dlp.utils import unsmuggle_url

    pages = [(path, rig.sample_base + path) for path in COVERAGE_PAGES]
    pages.append((f"X post {PAGE_X_POST}", rig.xsite.url(POSTS[1].path)))
    out: list[tuple[str, str]] = []
    for label, url in pages:
        try:
            with yt_dlp.YoutubeDL(YTDLP_OPTIONS) as ydl:
                info = ydl.extract_info(url, download=False)
            found = _file_name(unsmuggle_url(ytdlp_url(info))[0])
            extractor = info.get("extractor", "?") if isinstance(info, dict) else "?"
            result = f"`{found}` (extractor `{extractor}`)"
        except Exception as exc:
            result = "not extracted: " + str(exc).replace("ERROR: ", "").split(":", 1)[0].strip()
        wanted = EXPECTED.get(label, "clip-1080p.mp4")
        differs = result.startswith("`") and not result.startswith(f"`{wanted}`")
        out.append((label, f"{result}; Media Vault archives `{wanted}`" + (" (differs)" if differs else "")))
    return out


def run_benchmark(
    rounds: int,
    *,
    posts: Sequence[str] | None = None,
    modes: Sequence[str] = MODES,
    warmup: bool = True,
    seed: int = 1,
    chromium: str | None = None,
    media_dir: Path | None = None,
    coverage: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Run ``rounds`` interleaved rounds (+ one warm-up round) and summarise them."""
    chromium = chromium or default_chromium()
    chosen = [p for p in POSTS if posts is None or p.key in posts]
    plan = [(mode, post) for post in chosen for mode in post.modes if mode in modes]
    if not plan:
        raise ValueError("no (mode, post) pair selected")
    say = progress or (lambda _line: None)
    media_dir = media_dir or Path(tempfile.gettempdir()) / "mediavault-samples"
    quiet_logs()
    rng = random.Random(seed)
    jobs: list[Job] = []
    started = time.perf_counter()
    with mock_aws():
        rig = Rig(chromium=chromium, media_dir=media_dir)
        try:
            browser_version = rig.warm_session.browser.version
            cov = yt_dlp_coverage(rig) if coverage and "yt-dlp" in modes else []
            first = 0 if warmup else 1
            for number in range(first, rounds + 1):
                order = plan[:]
                rng.shuffle(order)
                for mode, post in order:
                    job = Job(mode=mode, post=post.key, group=post.group, round=number)
                    key: str | None = None
                    try:
                        key = RUNNERS[mode](rig, post, job)
                    except Exception as exc:
                        job.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                    rig.settle(job, key, post)
                    if number > 0:
                        jobs.append(job)
                if number == 0:
                    say("round 0 (warm-up) done")
                else:
                    done = [j for j in jobs if j.round == number]
                    say(f"round {number}: " + ", ".join(
                        f"{j.mode}/{j.post} {j.extract_s:.2f}/{j.job_s:.2f}s" + ("" if j.ok else " FAILED")
                        for j in done))  # fmt: skip
        finally:
            rig.close()
    meta = {
        "cores": os.cpu_count(),
        "machine": f"{os.cpu_count()} CPU cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "chromium": browser_version,
        "playwright": _version("playwright"),
        "yt_dlp": _version("yt-dlp"),
        "date": time.strftime("%Y-%m-%d"),
        "total_s": time.perf_counter() - started,
        "rounds": rounds,
    }
    return Report(jobs=jobs, rows=summarise(jobs, plan), coverage=cov, meta=meta)


def summarise(jobs: list[Job], plan: list[tuple[str, Post]]) -> list[Row]:
    rows: list[Row] = []
    order = {mode: i for i, mode in enumerate(MODES)}
    groups = list(dict.fromkeys(post.group for _, post in plan))
    for mode, post in sorted(plan, key=lambda mp: (groups.index(mp[1].group), order[mp[0]])):
        mine = [j for j in jobs if j.mode == mode and j.post == post.key]
        good = [j for j in mine if j.ok]
        extract = [j.extract_s for j in good]
        total = [j.job_s for j in good]
        rows.append(
            Row(
                mode=mode, post=post.key, group=post.group, jobs=len(mine), ok=len(good),
                extract_median=_median(extract), extract_p90=_p90(extract),
                job_median=_median(total), job_p90=_p90(total),
                files=", ".join(sorted({j.file for j in good})) or "-",
                bytes=int(_median([j.bytes for j in good])) if good else 0,
            )
        )  # fmt: skip
    return rows


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def breakdown(report: Report) -> list[tuple[str, dict[str, float]]]:
    """Per post, the median seconds of each stage of a warm extraction (``other``: the rest: the fast
    path's request for the X post, page.route / listeners, reading the JSON, Python)."""
    labels = [label for _, _, label in StageClock.WRAPPED]
    out: list[tuple[str, dict[str, float]]] = []
    for row in report.rows:
        if row.mode != "warm":
            continue
        good = [j for j in report.jobs if j.mode == "warm" and j.post == row.post and j.ok and j.stages]
        if not good:
            continue
        stages = {label: _median([j.stages.get(label, 0.0) for j in good]) for label in labels}
        stages["other"] = _median([j.extract_s - sum(j.stages.values()) for j in good])
        stages["extraction"] = row.extract_median
        out.append((row.post, stages))
    return out


def breakdown_lines(report: Report) -> list[str]:
    rows = breakdown(report)
    if not rows:
        return []
    labels = list(rows[0][1])
    lines = ["| warm, post | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for post, stages in rows:
        lines.append(f"| {post} | " + " | ".join(f"{stages[label] * 1000:.0f}" for label in labels) + " |")
    return lines


def paired_ratio(report: Report, group: str) -> str:
    """Median and range of warm / naive extraction within each round, for ``group``."""
    ratios = []
    for number in sorted({j.round for j in report.jobs}):
        here = [j for j in report.jobs if j.round == number and j.group == group and j.ok]
        warm = [j.extract_s for j in here if j.mode == "warm"]
        naive = [j.extract_s for j in here if j.mode == "naive"]
        if warm and naive and naive[0] > 0:
            ratios.append(warm[0] / naive[0])
    if not ratios:
        return "-"
    return f"median {statistics.median(ratios):.3f}x, {min(ratios):.2f}-{max(ratios):.2f}x"


def goals(report: Report) -> list[tuple[str, bool | None, str]]:
    """(goal, met, figures) for the two stated goals (None: not measured in this run). The second goal
    is judged on every page measured; the figures say which pages meet it."""
    out: list[tuple[str, bool | None, str]] = []
    fast, naive = report.row("fast", "x"), report.row("naive", "x")
    name = f"fast-path jobs/min >= {GOAL_JOBS_RATIO:g}x the naive baseline's (X post)"
    if fast and naive and fast.ok and naive.ok:
        ratio = fast.jobs_per_min / naive.jobs_per_min
        figures = f"{fast.jobs_per_min:.0f} vs {naive.jobs_per_min:.1f} jobs/min = {ratio:.1f}x"
        out.append((name, ratio >= GOAL_JOBS_RATIO, figures))
    else:
        out.append((name, None, "not measured"))
    name = f"warm browser-path extraction latency <= {GOAL_EXTRACTION_RATIO:g}x the naive one"
    pairs: list[tuple[str, float, Row, Row]] = []
    for group in dict.fromkeys(r.group for r in report.rows):
        w, n = report.row("warm", group), report.row("naive", group)
        if w and n and w.ok and n.ok:
            pairs.append((group, w.extract_median / n.extract_median, w, n))
    if pairs:
        figures = "; ".join(
            f"{g}: {w.extract_median:.2f} s vs {n.extract_median:.2f} s = {r:.3f}x"
            f" ({'met' if r <= GOAL_EXTRACTION_RATIO else 'not met'}; per-round paired ratio "
            f"{paired_ratio(report, g)})"
            for g, r, w, n in pairs
        )
        out.append((name, all(r <= GOAL_EXTRACTION_RATIO for _, r, _, _ in pairs), figures))
    else:
        out.append((name, None, "not measured"))
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 and value > 0 else "-"


def table_lines(report: Report) -> list[str]:
    lines = [
        "| mode | post | jobs ok | extraction s, median / p90 | whole job s, median / p90 | jobs/min | "
        "extraction vs naive | jobs/min vs naive | file (bytes) |",
        "|---|---|---:|---|---|---:|---:|---:|---|",
    ]
    for r in report.rows:
        naive = report.row("naive", r.group)
        base_extract = naive.extract_median if naive and naive.ok else 0.0
        base_jpm = naive.jobs_per_min if naive and naive.ok else 0.0
        lines.append(
            f"| {r.mode} | {r.post} | {r.ok}/{r.jobs} | {r.extract_median:.3f} / {r.extract_p90:.3f} | "
            f"{r.job_median:.3f} / {r.job_p90:.3f} | {r.jobs_per_min:.1f} | "
            f"{_ratio(r.extract_median, base_extract)} | {_ratio(r.jobs_per_min, base_jpm)} | "
            f"{r.files} ({r.bytes:,}) |"
        )
    return lines


def print_report(report: Report) -> None:
    print()
    print(f"{'mode':<7} {'post':<9} {'ok':>6} {'extract med':>11} {'p90':>7} {'job med':>8} {'p90':>7} "
          f"{'jobs/min':>8} {'ext/naive':>9} {'jpm/naive':>9}  file")  # fmt: skip
    for r in report.rows:
        naive = report.row("naive", r.group)
        ext = _ratio(r.extract_median, naive.extract_median) if naive and naive.ok else "-"
        jpm = _ratio(r.jobs_per_min, naive.jobs_per_min) if naive and naive.ok else "-"
        print(
            f"{r.mode:<7} {r.post:<9} {f'{r.ok}/{r.jobs}':>6} {r.extract_median:>11.3f} {r.extract_p90:>7.3f} "
            f"{r.job_median:>8.3f} {r.job_p90:>7.3f} {r.jobs_per_min:>8.1f} {ext:>9} {jpm:>9}  {r.files} ({r.bytes})"
        )
    print()
    for name, met, figures in goals(report):
        verdict = "MET" if met else ("not measured" if met is None else "NOT MET")
        print(f"goal: {name}: {verdict} ({figures})")
    for line in breakdown_lines(report):
        print(line)
    for label, result in report.coverage:
        print(f"yt-dlp on {label}: {result}")
    failures = [j for j in report.jobs if not j.ok or j.error]
    for j in failures[:20]:
        print(f"  round {j.round} {j.mode}/{j.post}: {j.error}")
    m = report.meta
    print(f"\n{m['machine']}, Chromium {m['chromium']}, total {m['total_s']:.0f} s")


def _after_note(report: Report) -> str:
    after = sorted(j.after_s for j in report.jobs if j.mode == "warm" and j.ok and j.after_s > 0)
    whole = sorted(j.job_s for j in report.jobs if j.mode == "warm" and j.ok)
    if not after or not whole:
        return "(not measured in this run)."
    prep, job = statistics.median(after), statistics.median(whole)
    return (
        f"median {prep * 1000:.0f} ms per job. Latency is what the table shows; back to back, with that "
        f"preparation counted, one warm worker does {60 / (job + prep):.0f} jobs/min "
        f"(median whole job {job:.3f} s + {prep:.3f} s)."
    )


def render_markdown(report: Report, command: str) -> str:
    m = report.meta
    lines = [
        SECTION_BEGIN,
        "## Extraction: fast path, browser path, naive Playwright, yt-dlp",
        "",
        "Goals: on this 2-core machine, fast-path jobs/min >= 3x the naive baseline's; warm browser-path "
        "extraction latency <= 0.3x the naive one.",
        "",
        "Command (from the repository root):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Machine: {m['machine']}, Chromium {m['chromium']} (Debian's, `/usr/bin/chromium`), Playwright "
        f"{m['playwright']}, yt-dlp {m['yt_dlp']}. Run on {m['date']}, {m['rounds']} rounds after one warm-up "
        f"round, total {m['total_s']:.0f} s.",
        "",
        "Method: every round runs each (mode, post) job once, in a shuffled order, so all modes see the same "
        "noise; the warm-up round (first imports, first launch of the warm browser, yt-dlp's lazy extractor "
        "loading) is excluded. One job at a time, `time.perf_counter`. *Extraction* = from the start of the job "
        "until the media URL is known (for `cold` and `naive` this includes starting Playwright and launching "
        "Chromium); *whole job* = extraction + download into S3 (+ closing the per-job browser for `cold` and "
        "`naive`). jobs/min = 60 / median whole-job seconds, one worker. Ratios are ratios of medians, against "
        "`naive` on the same page (`fast` reads X post ...01 and the browser modes post ...06: the same page "
        "type and the same `clip-1080p.mp4`).",
        "",
        *table_lines(report),
        "",
    ]
    results = goals(report)
    lines += ["Goals:", ""]
    for name, met, figures in results:
        verdict = "**met**" if met else ("not measured" if met is None else "**not met**")
        lines.append(f"- {name}: {verdict} ({figures}).")
    stages = breakdown_lines(report)
    if stages:
        lines += [
            "",
            "Where a warm extraction's time goes (median ms per stage; each stage's median, so the columns do "
            "not add up exactly; timed around the Playwright calls of the warm jobs):",
            "",
            *stages,
        ]
    lines += [
        "",
        "What each mode includes:",
        "",
        "- `fast`: `PostSource.extract()` answered by the X syndication JSON through the egress-checked httpx "
        "client (one request), then `ItemFetch.run` -> `Downloader.store` (HLS probe of the post's playlist, "
        "sniffing, sha256) into `S3MediaStore`.",
        "- `warm`: the worker's browser path on one `BrowserSession` reused by every job: for the X post "
        "`PostSource` first asks the syndication endpoint (answers `{}`), then `BrowserExtractor` opens the page "
        "in a fresh context behind the egress proxy -- the context and its page prepared after the previous job, "
        "as the worker does after each record -- and stops waiting as soon as the platform's JSON (GraphQL, or the "
        "variant list) arrived, or the markup names a video and no API call of the page is in flight, or after "
        "0.5 s of network quiet; same download as `fast`.",
        "- `cold`: as `warm`, but a new `BrowserSession` per job (Playwright driver start, egress proxy start, "
        "Chromium launch, then closed) -- a cold Lambda container's first job, minus process start and imports.",
        "- `naive`: `sync_playwright()` + `chromium.launch(executable_path=...)` per job, "
        '`page.goto(url, wait_until="networkidle")`, the media URL from the JSON responses (highest `bitrate`), '
        "JSON-LD `contentUrl`, `og:video` or `<video>`; browser closed; plain httpx stream. No egress proxy, no "
        "sniffing or hashing.",
        "- `yt-dlp`: `YoutubeDL({quiet}).extract_info(url, download=False)` in this (warm) process, then the same "
        "plain httpx download. A `yt-dlp URL` command per job would add interpreter start and imports.",
        "- Every mode stores through the same `S3MediaStore` multipart upload into moto's in-process `mock_aws` "
        "S3, so the S3 cost is the same for all; each object is checked (size = the served file) and deleted "
        "after the job, outside the timings.",
    ]
    lines += [
        "",
        "Notes:",
        "",
        "- One job at a time: on 2 cores a per-job browser (`cold`, `naive`) also competes with the warm "
        "browser and the sites for CPU, so their jobs/min would not double with 2 workers; the fast path is "
        "mostly I/O plus moto's in-process S3.",
        "- A fresh context's page costs Chromium a renderer start (~0.2 s here). The worker makes the next job's "
        "context and page right after each record, off the job's path: " + _after_note(report) + " Without it "
        "(an earlier version), warm extraction was 0.59 s on x-06 and variants (0.29-0.30x naive), and pages whose "
        "media is only in the markup waited the 0.5 s quiet window (0.91-0.92 s, 0.50x); they now stop once the "
        "markup names a video and no API call of the page is in flight.",
        "- On the X site the worker's HLS probe asks for the master playlist and a rendition playlist that the "
        "site does not serve (404), then downloads the mp4 variant: a few ms in `fast`, `warm` and `cold`.",
        "- `naive` and `yt-dlp` pass no egress policy (no proxy, no per-hop address checks), and do not sniff, "
        "hash or validate what they store; they are baselines, not equivalents.",
    ]
    if report.coverage:
        lines += ["", "yt-dlp coverage (its generic extractor, the same loopback pages, extraction only):", ""]
        lines += [f"- {label}: {result}" for label, result in report.coverage]
    failures = [j for j in report.jobs if not j.ok or j.error]
    if failures:
        lines += ["", "Failed or unexpected jobs:", ""]
        lines += [f"- round {j.round}, {j.mode} on {j.post}: {j.error}" for j in failures[:20]]
    notes = report.meta.get("notes") or []
    if notes:
        lines += ["", *notes]
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def write_doc(path: Path, section: str) -> None:
    """Replace this script's section between its markers (or append it), leaving the rest alone."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION_BEGIN in text and SECTION_END in text:
        before, rest = text.split(SECTION_BEGIN, 1)
        after = rest.split(SECTION_END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def quiet_logs() -> None:
    """The worker's per-job lines would drown the table. (On the X site every job logs one warning: the
    HLS probe's rendition playlist answers 404 -- the site serves only the master -- and the file
    variants are downloaded instead, as designed.)"""
    mediavault_logger.setLevel(logging.ERROR)
    for name in ("botocore", "boto3", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_chromium() -> str:
    found = os.environ.get("MEDIAVAULT_CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    return found


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (each runs every mode once)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds on the X posts and /posts/jsonld")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--posts", nargs="+", choices=[p.key for p in POSTS], help="default: all")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: MEDIAVAULT_CHROMIUM_PATH, "
                        "then `chromium` on PATH)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round shuffle")
    parser.add_argument("--out", type=Path, help="write the results section into this Markdown file")
    parser.add_argument("--json", type=Path, help="also write every job's figures as JSON here")
    args = parser.parse_args(argv)
    rounds = min(args.rounds, 2) if args.quick else args.rounds
    posts = args.posts or (list(QUICK_POSTS) if args.quick else None)
    report = run_benchmark(rounds, posts=posts, modes=args.modes, seed=args.seed, chromium=args.chromium,
                           progress=lambda line: print(line, flush=True))  # fmt: skip
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps([j.__dict__ for j in report.jobs], indent=1))
    if args.out:
        command = f".venv/bin/python bench/extraction.py --rounds {rounds}"
        command += " --quick" if args.quick else ""
        command += f" --modes {' '.join(args.modes)}" if list(args.modes) != list(MODES) else ""
        command += f" --posts {' '.join(args.posts)}" if args.posts else ""
        command += f" --out {args.out}"
        out = args.out if args.out.is_absolute() else ROOT / args.out
        write_doc(out, render_markdown(report, command))
        print(f"wrote {out}")
    return 0 if all(r.ok == r.jobs and r.jobs > 0 for r in report.rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
