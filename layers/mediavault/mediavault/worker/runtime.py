"""The worker's warm state and its record entry point (the handler delegates here)."""

from __future__ import annotations

import threading
from typing import Any

from mediavault import deps
from mediavault.logins import cookie_source
from mediavault.observability import logger
from mediavault.safety.egress import egress_client
from mediavault.worker.browser import thread_session
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Downloader
from mediavault.worker.extract import BrowserExtractor
from mediavault.worker.hls import HlsDownloader
from mediavault.worker.pipeline import Outcome, WorkerDeps, process_message

_local = threading.local()


def worker_deps() -> WorkerDeps:
    """This thread's collaborators: built on first use, reused by every later job of the warm worker."""
    built: WorkerDeps | None = getattr(_local, "deps", None)
    if built is None:
        settings = deps.settings()
        policy = deps.egress_policy()
        store = deps.media_store()
        http = egress_client(
            policy,
            timeout=settings.fetch_timeout_seconds,
            max_bytes=settings.max_media_bytes,
            max_seconds=settings.fetch_max_seconds,
        )
        # The browser's egress proxy: the same policy, the same time limits per connection.
        proxy_options = {
            "connect_timeout": min(settings.fetch_timeout_seconds, 10.0),
            "idle_timeout": settings.fetch_timeout_seconds,
            "max_seconds": settings.fetch_max_seconds,
        }
        built = WorkerDeps(
            repo=deps.repository(),
            store=store,
            queue=deps.queue(),
            extractor=BrowserExtractor(
                thread_session(settings.chromium_path, policy, proxy_options),
                policy,
                timeout=settings.page_timeout_seconds,
                settle=settings.page_settle_seconds,
            ),
            downloader=Downloader(http, store, max_bytes=settings.max_media_bytes),
            hls=HlsDownloader(http, store, max_bytes=settings.max_media_bytes),
            http=http,
            platforms=deps.platforms(),
            settings=settings,
            clock=deps.clock,
            cookies=cookie_source(secret_prefix=settings.cookies_secret_prefix, file=settings.cookies_file),
        )
        _local.deps = built
    return built


def reset_worker_deps() -> None:
    _local.deps = None


def handle_record(record: Any, lambda_context: Any) -> Outcome:
    """One SQS record (a Powertools ``SQSRecord``) through the pipeline."""
    built = worker_deps()
    deadline = Deadline(
        lambda_context.get_remaining_time_in_millis, margin_seconds=built.settings.deadline_margin_seconds
    )
    try:
        return process_message(
            message_id=record.message_id,
            body=record.body,
            receipt_handle=record.receipt_handle,
            owner=f"{lambda_context.aws_request_id}/{record.message_id}",
            deps=built,
            deadline=deadline,
        )
    finally:
        logger.thread_safe_remove_keys(["job_id", "correlation_id"])
        # Off the job's path: the next job's browser context is ready before it arrives.
        built.extractor.prewarm()
