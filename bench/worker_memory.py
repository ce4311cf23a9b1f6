"""Worker memory benchmark: peak RSS of the worker process while it archives big videos.

What it answers (the issue's requirement): the peak RSS of the worker process (the
``python -m awslambdaric`` container process; Chromium and the Playwright driver excluded) while
archiving a 500 MB video stays <= 128 MiB and does not grow with the file size (50 MB and 500 MB
side by side, in one run); the second job of a warm worker reuses the browser.

How:

* ``big_media`` writes valid MP4s of N MiB into a cache directory (``.mediavault/bench-media``);
  the sample site serves them as ``/media/big-<N>mb.mp4`` on loopback. The sample site has no
  page pointing at a big file, so a tiny extra HTTP server serves ``/big/<N>``: an Open Graph page
  whose ``og:video`` is that file.
* The local stack runs with one worker container. For each size the container is stopped first,
  so each size starts with a fresh process (cold first job: container start + browser launch),
  then ``--repeat`` jobs run in that same warm container.
* Per job: ``VmHWM`` of the worker process, reset at job start (``echo 5 > /proc/PID/clear_refs``)
  and read at the end = the kernel's exact peak RSS of that job; ``VmRSS`` sampled every 50 ms (max);
  the RSS sum of the process's descendants (Playwright's node driver + Chromium), for information.
* Browser launches come from the worker's ``browser launched`` log lines (``launches`` counter).
* Each stored object is checked in S3: size == file size, and the sha256 of the stored bytes
  == the file's sha256 == the job's ``sha256``.

Usage::

    .venv/bin/python bench/worker_memory.py --sizes 50 500 --repeat 3 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "mediavault"), str(ROOT)]

import boto3  # noqa: E402
import httpx  # noqa: E402
from botocore.config import Config  # noqa: E402

from mediavault_local.samples import SampleSite, big_media, big_media_name  # noqa: E402
from mediavault_local.stack import LocalStack, StackOptions  # noqa: E402

LIMIT_MIB = 128.0
GROWTH_TOLERANCE_MIB = 8.0  # "does not grow": largest-size median within this of the smallest-size median
MIB = 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SECTION_BEGIN = "<!-- bench/worker_memory.py: begin -->"
SECTION_END = "<!-- bench/worker_memory.py: end -->"


# --------------------------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------------------------


def proc_status_kib(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def reset_hwm(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces/parentheses, split after the last ')'
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


class Sampler(threading.Thread):
    """Samples the worker process's VmRSS every ``interval`` s (and its descendants' every 5th tick)."""

    def __init__(self, container: Any, interval: float) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.container = container
        self.interval = interval
        self.stop_event = threading.Event()
        self.max_rss = 0
        self.max_tree_rss = 0
        self.samples = 0
        self.pids: set[int] = set()

    def run(self) -> None:
        tick = 0
        while not self.stop_event.is_set():
            pid = self.container.pid
            if pid is not None:
                self.pids.add(pid)
                rss = rss_bytes(pid)
                if rss:
                    self.max_rss = max(self.max_rss, rss)
                    self.samples += 1
                if tick % 5 == 0:
                    tree = sum(rss_bytes(p) for p in descendants(pid))
                    self.max_tree_rss = max(self.max_tree_rss, tree)
            tick += 1
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()


# --------------------------------------------------------------------------------------------
# The page that points at a big file
# --------------------------------------------------------------------------------------------


def page_server(media_origin: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "big" or not parts[1].isdigit():
                self.send_error(404)
                return
            size = int(parts[1])
            video = f"{media_origin}/media/{big_media_name(size)}"
            body = (
                "<!doctype html><html><head><meta charset='utf-8'>"
                f"<title>Benchmark video {size} MB</title>"
                '<meta property="og:type" content="video.other">'
                f'<meta property="og:title" content="Benchmark video {size} MB">'
                f'<meta property="og:video" content="{html.escape(video)}">'
                '<meta property="og:video:type" content="video/mp4">'
                '<meta property="og:video:width" content="960"><meta property="og:video:height" content="540">'
                '<meta name="author" content="Bench User">'
                f"</head><body><h1>Benchmark video {size} MB</h1></body></html>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bench-pages", daemon=True).start()
    return server


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


@dataclass
class JobResult:
    size_mb: int
    index: int  # 1-based within the size's container
    job_id: str = ""
    status: str = ""
    attempt: int = 0
    pid: int | None = None
    pids: set[int] = field(default_factory=set)
    cold: bool = False
    seconds: float = 0.0
    transfer_seconds: float | None = None
    idle_rss_mib: float | None = None  # worker RSS just before the job (None: container not started yet)
    hwm_mib: float | None = None  # VmHWM at the end, reset at job start (cold job: since process start)
    sampled_max_mib: float = 0.0
    samples: int = 0
    chromium_rss_mib: float = 0.0
    launches_in_job: list[int] = field(default_factory=list)
    bytes: int = 0
    verified: bool = False
    verify_note: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def wait_for_job(client: httpx.Client, api: str, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{api}/jobs/{job_id}")
        response.raise_for_status()
        job = response.json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f}s")
        time.sleep(0.2)


def verify(s3: Any, bucket: str, job: dict[str, Any], path: Path, file_sha: str) -> tuple[bool, str, int]:
    media = job.get("media") or []
    if not media:
        return False, "job has no media", 0
    item = media[0]
    size = path.stat().st_size
    head = s3.head_object(Bucket=bucket, Key=item["key"])
    stored = int(head["ContentLength"])
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=item["key"])["Body"]
    for chunk in iter(lambda: body.read(4 * MIB), b""):
        digest.update(chunk)
    problems = []
    if stored != size:
        problems.append(f"stored {stored} B != file {size} B")
    if int(item["bytes"]) != size:
        problems.append(f"job bytes {item['bytes']} != file {size}")
    if digest.hexdigest() != file_sha:
        problems.append("stored sha256 != file sha256")
    if item["sha256"] != file_sha:
        problems.append("job sha256 != file sha256")
    return (not problems), ("; ".join(problems) or "size and sha256 match"), stored


def read_log(path: Path, offset: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode("utf-8", "replace").splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def log_time(entry: dict[str, Any]) -> float | None:
    try:
        return datetime.strptime(entry["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
    except (KeyError, ValueError):
        return None


def apply_logs(results: list[JobResult], entries: list[dict[str, Any]]) -> None:
    by_job: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if "job_id" in entry:
            by_job.setdefault(entry["job_id"], []).append(entry)
    for result in results:
        lines = by_job.get(result.job_id, [])
        result.launches_in_job = [int(e["launches"]) for e in lines if e.get("message") == "browser launched"]
        extracted = next((log_time(e) for e in lines if e.get("message") == "post extracted"), None)
        completed = next((log_time(e) for e in lines if e.get("message") == "job completed"), None)
        if extracted and completed:
            result.transfer_seconds = completed - extracted
        result.warnings = [
            f"{e.get('message')}: {e.get('error') or e.get('code') or ''}".strip(": ")
            for e in lines
            if e.get("level") in ("WARNING", "ERROR")
        ]


def run_job(
    stack: LocalStack, client: httpx.Client, page_url: str, size_mb: int, index: int, args: argparse.Namespace
) -> tuple[JobResult, dict[str, Any] | None]:
    container = stack.workers[0]
    result = JobResult(size_mb=size_mb, index=index)
    pid = container.pid
    idle_kib = proc_status_kib(pid, "VmRSS") if pid is not None else None
    if pid is not None and idle_kib is not None:
        result.idle_rss_mib = idle_kib / 1024
        if not reset_hwm(pid):
            print("  warning: could not reset VmHWM (clear_refs); HWM is the process-lifetime peak", flush=True)
    else:
        result.cold = True
    sampler = Sampler(container, args.interval)
    sampler.start()
    assert stack.api is not None
    api_url = stack.api.url
    started = time.monotonic()
    job: dict[str, Any] | None = None
    try:
        response = client.post(f"{api_url}/jobs", json={"url": page_url, "force": True})
        response.raise_for_status()
        result.job_id = response.json()["jobId"]
        job = wait_for_job(client, api_url, result.job_id, args.job_timeout)
        result.seconds = time.monotonic() - started
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.monotonic() - started
    finally:
        sampler.stop()
    # Read the peak after the sampler stopped: VmHWM then covers every sample (HWM >= sampled max).
    result.pid = container.pid
    if result.pid is not None:
        hwm = proc_status_kib(result.pid, "VmHWM")
        result.hwm_mib = hwm / 1024 if hwm is not None else None
    result.sampled_max_mib = sampler.max_rss / MIB
    result.samples = sampler.samples
    result.chromium_rss_mib = sampler.max_tree_rss / MIB
    result.pids = sampler.pids
    if job is not None:
        result.status = job["status"]
        result.attempt = int(job.get("attempt") or 0)
        if job["status"] != "completed":
            result.error = json.dumps(job.get("error"))
    return result, job


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summarise(results: list[JobResult], sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        jobs = [r for r in results if r.size_mb == size]
        ok = [r for r in jobs if r.status == "completed"]
        hwms = [r.hwm_mib for r in ok if r.hwm_mib is not None]
        sampled = [r.sampled_max_mib for r in ok]
        launches = [n for r in jobs for n in r.launches_in_job]
        transfer = [r.bytes / MIB / r.transfer_seconds for r in ok if r.transfer_seconds]
        rows.append(
            {
                "size": size,
                "jobs": len(jobs),
                "completed": len(ok),
                "verified": sum(r.verified for r in ok),
                "median_s": median([r.seconds for r in ok]),
                "median_warm_s": median([r.seconds for r in ok if not r.cold]),
                "hwm_median": median(hwms),
                "hwm_max": max(hwms) if hwms else None,
                "sampled_median": median(sampled),
                "sampled_max": max(sampled) if sampled else None,
                "idle_median": median([r.idle_rss_mib for r in ok if r.idle_rss_mib is not None]),
                "chromium_median": median([r.chromium_rss_mib for r in ok]),
                "launch_lines": len(launches),
                "launches_max": max(launches) if launches else 0,
                "containers": len({p for r in jobs for p in r.pids}),
                "throughput": median(transfer),
                "e2e_throughput": median([r.bytes / MIB / r.seconds for r in ok if r.seconds]),
            }
        )
    return rows


def reuse_text(results: list[JobResult]) -> str:
    containers: dict[int | None, list[JobResult]] = {}
    for r in results:
        containers.setdefault(r.pid, []).append(r)
    ok = True
    for jobs in containers.values():
        first, later = jobs[0], jobs[1:]
        ok &= first.launches_in_job == [1] and all(not r.launches_in_job for r in later)
    if ok:
        return (
            f"Browser: each of the {len(containers)} containers launched Chromium once, in its first job "
            "(`launches` = 1); every later job of the warm worker logged no launch, i.e. it reused the browser."
        )
    detail = "; ".join(f"pid {pid}: {[r.launches_in_job for r in jobs]}" for pid, jobs in containers.items())
    return f"Browser: **unexpected launches** per container/job: {detail}."


def verdict(rows: list[dict[str, Any]]) -> tuple[bool, bool, str]:
    peaks = [r["hwm_max"] for r in rows if r["hwm_max"] is not None]
    sampled = [r["sampled_max"] for r in rows if r["sampled_max"] is not None]
    worst = max(peaks + sampled) if (peaks or sampled) else None
    under = worst is not None and worst <= LIMIT_MIB
    small, large = rows[0], rows[-1]
    grows = False
    text = ""
    if len(rows) >= 2 and small["hwm_median"] is not None and large["hwm_median"] is not None:
        delta = large["hwm_median"] - small["hwm_median"]
        grows = delta > GROWTH_TOLERANCE_MIB
        factor = large["size"] / small["size"]
        text = (
            f"Median per-job peak RSS is {small['hwm_median']:.1f} MiB at {small['size']} MB and "
            f"{large['hwm_median']:.1f} MiB at {large['size']} MB ({delta:+.1f} MiB for a {factor:.0f}x larger file): "
            + (
                "it does **not** grow with the file size"
                if not grows
                else f"it **grows** with the file size (more than the {GROWTH_TOLERANCE_MIB:.0f} MiB tolerance)"
            )
            + "."
        )
    return under, grows, text


def render_markdown(
    results: list[JobResult], rows: list[dict[str, Any]], args: argparse.Namespace, meta: dict[str, Any]
) -> str:
    under, _grows, growth_text = verdict(rows)
    worst = max(
        [r["hwm_max"] for r in rows if r["hwm_max"] is not None]
        + [r["sampled_max"] for r in rows if r["sampled_max"] is not None]
    )
    lines = [
        SECTION_BEGIN,
        "## Worker memory while archiving big videos",
        "",
        "Requirement: peak RSS of the worker process (Chromium excluded) while archiving a 500 MB video",
        f"stays <= {LIMIT_MIB:.0f} MiB and does not grow with the file size; the second job of a warm worker",
        "reuses the browser.",
        "",
        "Command (from the repository root):",
        "",
        "```sh",
        meta["command"],
        "```",
        "",
        f"Machine: {meta['machine']}. Run on {meta['date']}, total {meta['total_s']:.0f} s. "
        "Timings and memory are noisy on this 2-core machine, so sizes are compared side by side in one run "
        "and medians are quoted.",
        "",
        "Setup: the local stack (moto, local API, SQS poller) with one worker container "
        "(`python -m awslambdaric`, the image's entrypoint); `big_media` MP4s served by `SampleSite` on "
        "loopback, behind a minimal page whose `og:video` points at them. For each size the container is "
        f"restarted, then {args.repeat} jobs run in it (job 1 cold: process start + browser launch; "
        f"jobs 2-{args.repeat} warm). Part size: {meta['part_size']}."
        + (f" Extra env: `{meta['extra_env']}`." if meta["extra_env"] else ""),
        "",
        "| size | jobs (ok / verified) | median job s (warm) | worker peak RSS MiB, median / max | "
        "sampled max RSS MiB, median / max | idle RSS before job MiB | Chromium tree RSS MiB | "
        "browser launches | throughput MiB/s |",
        "|---:|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        launches = (
            f"{r['launch_lines']} in {r['jobs']} jobs (counter max {r['launches_max']}, {r['containers']} container)"
        )
        lines.append(
            f"| {r['size']} MB | {r['jobs']} ({r['completed']} / {r['verified']}) | "
            f"{fmt(r['median_s'])} ({fmt(r['median_warm_s'])}) | "
            f"{fmt(r['hwm_median'])} / {fmt(r['hwm_max'])} | {fmt(r['sampled_median'])} / {fmt(r['sampled_max'])} | "
            f"{fmt(r['idle_median'])} | {fmt(r['chromium_median'], 0)} | {launches} | "
            f"{fmt(r['throughput'])} ({fmt(r['e2e_throughput'])} end to end) |"
        )
    lines += [
        "",
        "Per job:",
        "",
        "| size | job | container pid | cold | job s | transfer s | idle RSS MiB | peak RSS (VmHWM) MiB | "
        "sampled max MiB | Chromium RSS MiB | launches logged | attempt | S3 check |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for job in results:
        lines.append(
            f"| {job.size_mb} MB | {job.index} | {job.pid} | {'yes' if job.cold else 'no'} | {job.seconds:.1f} | "
            f"{fmt(job.transfer_seconds)} | {fmt(job.idle_rss_mib)} | {fmt(job.hwm_mib)} | {job.sampled_max_mib:.1f} | "
            f"{job.chromium_rss_mib:.0f} | {job.launches_in_job or '-'} | {job.attempt} | "
            f"{'ok' if job.verified else (job.error or job.verify_note)} |"
        )
    lines += [
        "",
        "Columns:",
        "",
        "- *worker peak RSS*: `VmHWM` of the worker process (`/proc/PID/status`), reset to the current RSS at the "
        "start of each job (`echo 5 > /proc/PID/clear_refs`) and read when the job is completed, i.e. the kernel's "
        "exact peak of that job. For the cold job it is the peak since the process started.",
        "- *sampled max RSS*: the largest `VmRSS` of the same process, sampled every "
        f"{args.interval * 1000:.0f} ms during the job (can miss short spikes; cross-check of the above).",
        "- *Chromium tree RSS*: the sum of `VmRSS` over the worker's descendants (Playwright's node driver, "
        "Chromium and its helpers), largest value sampled during the job; pages shared between them are counted "
        "in every process that maps them, so it overstates the real footprint. For information only: it is "
        "excluded from the requirement.",
        "- *browser launches*: `browser launched` lines the worker logged for these jobs, and the largest "
        "`launches` counter they carried. One line per container = the later jobs reused the browser.",
        "- *throughput*: file MiB / (`job completed` - `post extracted` in the worker log), i.e. the "
        "download -> S3 multipart phase; end to end = file MiB / (submit -> completed seen through the API).",
        "- *S3 check*: the stored object's size equals the file's, and the sha256 of the stored bytes equals "
        "both the file's sha256 and the job's `sha256`.",
        "",
        "Result: "
        + (f"worst peak {worst:.1f} MiB, " + ("within" if under else "**over**") + f" the {LIMIT_MIB:.0f} MiB limit. ")
        + growth_text
        + (f" Growth tolerance: {GROWTH_TOLERANCE_MIB:.0f} MiB between the medians of the smallest and largest size."),
        "",
        reuse_text(results),
    ]
    notes = meta.get("notes") or []
    if notes:
        lines += ["", "Notes from this run:", ""] + [f"- {n}" for n in notes]
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


DOC_INTRO = """# Benchmarks

Measured figures for Media Vault's requirements, each with the command that produced them.
Numbers are from real runs only; re-run the command to refresh a section (the script replaces
its own section between the markers and leaves the rest of this file alone).

"""


def write_doc(path: Path, section: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else DOC_INTRO
    if SECTION_BEGIN in text and SECTION_END in text:
        before, rest = text.split(SECTION_BEGIN, 1)
        after = rest.split(SECTION_END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def print_table(results: list[JobResult], rows: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'size':>6} {'jobs':>4} {'ok':>3} {'med s':>6} {'warm s':>6} {'HWM med':>8} {'HWM max':>8} "
        f"{'smp med':>8} {'smp max':>8} {'idle':>6} {'chrome':>7} {'launch':>7} {'MiB/s':>6}"
    )
    for r in rows:
        print(
            f"{r['size']:>4}MB {r['jobs']:>4} {r['completed']:>3} {fmt(r['median_s']):>6} {fmt(r['median_warm_s']):>6} "
            f"{fmt(r['hwm_median']):>8} {fmt(r['hwm_max']):>8} {fmt(r['sampled_median']):>8} "
            f"{fmt(r['sampled_max']):>8} {fmt(r['idle_median']):>6} {fmt(r['chromium_median'], 0):>7} "
            f"{r['launch_lines']:>3}/{r['launches_max']:<3} {fmt(r['throughput']):>6}"
        )
    print()
    for job in results:
        print(
            f"  {job.size_mb:>4}MB #{job.index} pid={job.pid} cold={job.cold!s:5} {job.seconds:6.1f}s "
            f"transfer={fmt(job.transfer_seconds)}s idle={fmt(job.idle_rss_mib)} hwm={fmt(job.hwm_mib)} "
            f"sampled={job.sampled_max_mib:.1f} ({job.samples} samples) chromium={job.chromium_rss_mib:.0f} "
            f"launches={job.launches_in_job} attempt={job.attempt} s3={'ok' if job.verified else job.verify_note} "
            f"{job.error or ''}"
        )
        for w in job.warnings:
            print(f"      log: {w}")
    _, _, text = verdict(rows)
    print()
    print(text)
    print(reuse_text(results))


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500], help="video sizes in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="jobs per size, all in one container")
    parser.add_argument("--out", type=Path, help="write the results section into this Markdown file")
    parser.add_argument("--media-dir", type=Path, default=ROOT / ".mediavault" / "bench-media")
    parser.add_argument("--interval", type=float, default=0.05, help="VmRSS sampling interval, seconds")
    parser.add_argument("--job-timeout", type=float, default=600.0)
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the functions (e.g. MEDIAVAULT_PART_SIZE_BYTES=5242880)",
    )  # fmt: skip
    parser.add_argument("--keep-objects", action="store_true", help="do not delete verified objects from moto")
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.env)
    sizes = sorted(set(args.sizes))
    t0 = time.monotonic()

    print(f"generating media in {args.media_dir} ...", flush=True)
    files: dict[int, Path] = {}
    shas: dict[int, str] = {}
    for size in sizes:
        t = time.monotonic()
        files[size] = big_media(args.media_dir, size)
        shas[size] = sha256_file(files[size])
        print(
            f"  {files[size].name}: {files[size].stat().st_size} B ({time.monotonic() - t:.1f}s incl. sha256)",
            flush=True,
        )

    site = SampleSite(args.media_dir, generate=False).start()
    pages = page_server(site.base_url)
    page_host = f"127.0.0.1:{pages.server_address[1]}"
    log_path = ROOT / ".mediavault" / "logs" / "worker-1.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    options = StackOptions(
        root=ROOT,
        egress_allow=[f"{site.host}:{site.port}", page_host],
        workers=1,
        write_state=False,
        extra_env=extra_env,
    )
    results: list[JobResult] = []
    notes: list[str] = []
    stack = LocalStack(options)
    try:
        stack.start()
        part_size = extra_env.get("MEDIAVAULT_PART_SIZE_BYTES") or stack.env.get("MEDIAVAULT_PART_SIZE_BYTES")
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.moto.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
            config=Config(read_timeout=300),
        )
        bucket = stack.env["MEDIAVAULT_BUCKET"]
        with httpx.Client(headers={"x-api-key": stack.api_key}, timeout=60) as client:
            for size in sizes:
                stack.workers[0].stop()  # fresh container for this size; the next invoke starts one
                print(f"\n== {size} MB: fresh worker container, {args.repeat} jobs", flush=True)
                for index in range(1, args.repeat + 1):
                    url = f"http://{page_host}/big/{size}"
                    result, job = run_job(stack, client, url, size, index, args)
                    if job is not None and result.status == "completed":
                        t = time.monotonic()
                        try:
                            result.verified, result.verify_note, result.bytes = verify(
                                s3, bucket, job, files[size], shas[size]
                            )
                        except Exception as exc:
                            result.verify_note = f"verify failed: {type(exc).__name__}: {exc}"
                        if not args.keep_objects:
                            for item in job.get("media") or []:
                                s3.delete_object(Bucket=bucket, Key=item["key"])
                        verify_s = time.monotonic() - t
                    else:
                        verify_s = 0.0
                    results.append(result)
                    print(
                        f"  job {index}: {result.status or 'error'} in {result.seconds:.1f}s, "
                        f"idle {fmt(result.idle_rss_mib)} MiB, peak (VmHWM) {fmt(result.hwm_mib)} MiB, "
                        f"sampled max {result.sampled_max_mib:.1f} MiB, chromium {result.chromium_rss_mib:.0f} MiB, "
                        f"S3 {result.verify_note or result.error} (check {verify_s:.1f}s)",
                        flush=True,
                    )
    finally:
        stack.stop()
        pages.shutdown()
        pages.server_close()
        site.stop()

    apply_logs(results, read_log(log_path, log_offset))
    total = time.monotonic() - t0
    rows = summarise(results, sizes)
    print_table(results, rows)

    for r in results:
        if r.attempt > 1:
            notes.append(f"{r.size_mb} MB job {r.index} needed {r.attempt} attempts (retries).")
        if r.error:
            notes.append(f"{r.size_mb} MB job {r.index}: {r.error}")
        for w in r.warnings:
            notes.append(f"{r.size_mb} MB job {r.index} logged: {w}")

    if args.out:
        command = ".venv/bin/python bench/worker_memory.py --sizes " + " ".join(map(str, sizes))
        command += f" --repeat {args.repeat}"
        command += "".join(f" --env {e}" for e in args.env)
        command += f" --out {args.out}"
        meta = {
            "command": command,
            "machine": f"{os.cpu_count()} CPU cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, Chromium {chromium_version()}",
            "date": time.strftime("%Y-%m-%d"),
            "total_s": total,
            "part_size": f"{int(part_size) // MIB} MiB" if part_size else "default (8 MiB)",
            "extra_env": " ".join(args.env),
            "notes": notes,
        }
        out = args.out if args.out.is_absolute() else ROOT / args.out
        write_doc(out, render_markdown(results, rows, args, meta))
        print(f"\nwrote {out}")
    print(f"total {total:.0f}s")
    ok = all(r.verified for r in results)
    return 0 if ok else 1


def chromium_version() -> str:
    import shutil
    import subprocess

    exe = os.environ.get("MEDIAVAULT_CHROMIUM_PATH") or shutil.which("chromium")
    if not exe:
        return "(Playwright's)"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
        return out.split()[1] if len(out.split()) > 1 else out
    except (OSError, subprocess.SubprocessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
