"""``make demo``: archive the bundled sample posts end to end on the local stack.

Serves three fixture sites on loopback (a generic social site, an X-like and a Bluesky-like one,
the latter two named as the platforms' hosts through ``MEDIAVAULT_PLATFORM_HOSTS`` /
``MEDIAVAULT_PLATFORM_API``), starts the local stack, submits posts through the HTTP API (and one
straight to SQS, as ``aws sqs send-message`` would), shows progress, prints a summary, exports what
was stored into ``./downloads/`` and exits 0 when every job ended as expected.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mediavault_local.samples import SampleSite, generate_media
from mediavault_local.samples.bsky import BSKY_POSTS, BskySite
from mediavault_local.samples.xsite import XSite
from mediavault_local.stack import STATE_DIR, LocalStack, StackOptions

TERMINAL = {"completed", "failed", "cancelled"}


@dataclass
class DemoJob:
    label: str
    path: str
    expect_status: str
    expect: str  # the first item's source file or WIDTHxHEIGHT ("photo": any photo), or the error code
    via: str = "api"
    site: str = "sample"  # sample | x | bluesky
    items: int = 1  # media items expected when completed
    job_id: str | None = None
    submitted_at: float = 0.0
    finished_at: float | None = None
    last: dict[str, Any] | None = None


DEMO_POSTS = (
    DemoJob("player JSON variants", "/posts/variants", "completed", "clip-1080p.mp4"),
    DemoJob("og:video only", "/posts/og-video", "completed", "clip-720p.mp4"),
    DemoJob("<video> + <source>", "/posts/video-tag", "completed", "clip-720p.mp4"),
    DemoJob("JSON-LD VideoObject", "/posts/jsonld", "completed", "clip-1080p.mp4"),
    DemoJob("GIF-like loop (via SQS)", "/posts/animated", "completed", "animated.mp4", via="sqs"),
    DemoJob("photo only", "/posts/photo", "completed", "photo.jpg"),
    DemoJob("no media", "/posts/no-media", "failed", "NO_MEDIA"),
    DemoJob("HTML served as video/mp4", "/posts/html-as-video", "failed", "INVALID_MEDIA"),
    DemoJob("missing post (404)", "/posts/missing", "failed", "POST_NOT_FOUND"),
    DemoJob("X: video, JSON fast path", "x:1790100000000000001", "completed", "1920x1080", site="x"),
    DemoJob("X: 4 photos+video+GIF", "x:1790100000000000003", "completed", "photo", site="x", items=6),
    DemoJob("X: stale signature", "x:1790100000000000011", "completed", "1920x1080", site="x"),
    DemoJob("X: protected account", "x:1790100000000000007", "failed", "POST_PRIVATE", site="x"),
    DemoJob("Bluesky: HLS video", "bsky:video post", "completed", "playlist.m3u8", site="bluesky"),
    DemoJob("Bluesky: 4 images", "bsky:four images", "completed", "photo", site="bluesky", items=4),
)


def run_demo(root: Path, *, api_port: int = 0, aws_port: int = 0, out: Path, timeout: float = 180.0) -> int:
    started = time.monotonic()
    media_dir = root / STATE_DIR / "samples"
    print(f"Generating sample media in {media_dir.relative_to(root)} ...", flush=True)
    generate_media(media_dir)
    with SampleSite(media_dir) as site, XSite(media_dir) as xsite, BskySite(media_dir) as bsky:
        sites = Sites(site, xsite, bsky)
        print(f"Sample sites: generic {site.base_url}, X {xsite.base_url}, Bluesky {bsky.base_url}", flush=True)
        options = StackOptions(
            root=root,
            api_port=api_port,
            aws_port=aws_port,
            egress_allow=[site.netloc],
            # The demo prints its own progress; function logs stay quiet here (worker logs: .mediavault/logs).
            extra_env={
                "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
                # The fixture sites stand in for the platforms (the stack lets the egress policy reach them).
                "MEDIAVAULT_PLATFORM_HOSTS": f"x={xsite.netloc},bluesky={bsky.netloc}",
                "MEDIAVAULT_PLATFORM_API": f"x={xsite.base_url},bluesky={bsky.base_url}",
            },
            write_state=False,
        )  # fmt: skip
        with LocalStack(options) as stack:
            info = stack.info()
            print(f"Local stack up: API {info['apiUrl']}  AWS endpoint {info['awsEndpoint']}", flush=True)
            with httpx.Client(base_url=info["apiUrl"], headers={"x-api-key": stack.api_key}, timeout=30) as api:
                jobs = _submit(api, stack, sites, DEMO_POSTS)
                _dedupe_check(api, site, jobs[0])
                _same_post_check(api, xsite, jobs)
                _wait(api, jobs, timeout)
            ok = _summary(jobs)
            exported = _export(stack, out)
            print(f"\nExported {len(exported)} files into {out}/ (media, thumbnails/, *.info.json)")
    elapsed = time.monotonic() - started
    print(f"Demo {'passed' if ok else 'FAILED'} in {elapsed:.1f}s")
    return 0 if ok else 1


@dataclass
class Sites:
    sample: SampleSite
    x: XSite
    bluesky: BskySite

    def url(self, job: DemoJob) -> str:
        if job.site == "x":
            return self.x.post_url(job.path.removeprefix("x:"))
        if job.site == "bluesky":
            start = job.path.removeprefix("bsky:")
            return self.bluesky.post_url(next(p for p in BSKY_POSTS if p.description.startswith(start)))
        return self.sample.url(job.path)


def _submit(api: httpx.Client, stack: LocalStack, sites: Sites, posts: tuple[DemoJob, ...]) -> list[DemoJob]:
    from mediavault.jobs.service import job_id_for_message

    jobs = []
    sqs = stack.client("sqs")
    for template in posts:
        job = DemoJob(**{**template.__dict__})
        job.submitted_at = time.monotonic()
        url = sites.url(job)
        if job.via == "sqs":
            sent = sqs.send_message(QueueUrl=stack.info()["queueUrl"], MessageBody=json.dumps({"url": url}))
            job.job_id = job_id_for_message(sent["MessageId"])
            print(f"  sqs send-message  {url}  -> job {job.job_id}")
        else:
            response = api.post("/jobs", json={"url": url})
            response.raise_for_status()
            job.job_id = response.json()["jobId"]
            print(f"  POST /jobs {response.status_code}  {url}  -> job {job.job_id}")
        jobs.append(job)
    return jobs


def _dedupe_check(api: httpx.Client, site: SampleSite, first: DemoJob) -> None:
    again = api.post("/jobs", json={"url": site.url(first.path) + "?utm_source=demo"})
    same = again.json().get("jobId") == first.job_id
    print(f"  POST /jobs again (same post, tracking parameter added) -> {again.status_code}, "
          f"{'same job' if same else 'A DIFFERENT JOB'}")  # fmt: skip


def _same_post_check(api: httpx.Client, xsite: XSite, jobs: list[DemoJob]) -> None:
    first = next(j for j in jobs if j.path == "x:1790100000000000001")
    # The same post under another URL form (/i/status/<id>) is the same archive entry.
    again = api.post("/jobs", json={"url": xsite.url("/i/status/1790100000000000001")})
    same = again.json().get("jobId") == first.job_id
    print(f"  POST /jobs (same X post, /i/status/ URL)  -> {again.status_code}, "
          f"{'same job' if same else 'A DIFFERENT JOB'}")  # fmt: skip


def _wait(api: httpx.Client, jobs: list[DemoJob], timeout: float) -> None:
    print("\nProgress:")
    seen: dict[str, tuple[str, int]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = 0
        for job in jobs:
            if job.finished_at is not None:
                continue
            response = api.get(f"/jobs/{job.job_id}")
            if response.status_code == 404:  # an SQS job before the worker created its record
                pending += 1
                continue
            job.last = response.json()
            state = (job.last["status"], job.last["progressPct"])
            if seen.get(job.label) != state:
                seen[job.label] = state
                elapsed = time.monotonic() - job.submitted_at
                print(f"  [{elapsed:5.1f}s] {job.label:<26} {state[0]:<9} {state[1]:>3}%", flush=True)
            if job.last["status"] in TERMINAL:
                job.finished_at = time.monotonic()
            else:
                pending += 1
        if not pending:
            return
        time.sleep(0.25)
    print(f"  timed out after {timeout:.0f}s")


def _summary(jobs: list[DemoJob]) -> bool:
    print("\nSummary:")
    header = f"  {'post':<26} {'status':<10} {'media':<28} {'size':>11} {'time':>6}  {'as expected'}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    ok = True
    for job in jobs:
        last = job.last or {}
        status = last.get("status", "unknown")
        media = (last.get("media") or [{}])[0]
        error = (last.get("error") or {}).get("code")
        if status == "completed":
            items = last.get("media") or []
            source = str(media.get("sourceUrl", "")).split("?", 1)[0].rsplit("/", 1)[-1]
            dims = f" {media['width']}x{media['height']}" if media.get("width") else ""
            what = f"{media.get('kind')}{dims} {source[:18]}" if len(items) == 1 else f"{len(items)} items"
            matches = (
                source == job.expect
                or (job.expect == "photo" and media.get("kind") == "photo")
                or job.expect == f"{media.get('width')}x{media.get('height')}"
            )
            good = job.expect_status == status and matches and len(items) == job.items
            size = f"{media.get('bytes', 0):,} B"
        else:
            what, size = error or "-", ""
            good = job.expect_status == status and error == job.expect
        took = f"{(job.finished_at or time.monotonic()) - job.submitted_at:.1f}s"
        ok &= good
        verdict = "yes" if good else f"NO: expected {job.expect}"
        print(f"  {job.label:<26} {status:<10} {what:<28} {size:>11} {took:>6}  {verdict}")
    return ok


def _export(stack: LocalStack, out: Path) -> list[Path]:
    s3 = stack.client("s3")
    bucket = stack.info()["bucket"]
    written = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            # tenants/<tenantId>/downloads/<accountSlug>/... -> <out>/<accountSlug>/...
            _, found, rest = obj["Key"].partition("downloads/")
            target = out / (rest if found else obj["Key"])
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            written.append(target)
    return written


if __name__ == "__main__":
    from mediavault_local.cli import find_root

    sys.exit(run_demo(find_root(), out=Path("downloads")))
