"""Serve the sample site in the foreground: ``python -m mediavault_local.samples``.

    python -m mediavault_local.samples --port 8123 --media-dir .mediavault/samples [--big 50]

Prints the post URLs and serves until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from .media import big_media, generate_media
from .site import SAMPLE_POSTS, SampleSite


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mediavault_local.samples",
        description="Serve Media Vault's sample social-post site on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8123, help="port, 0 for any free one (default: %(default)s)")
    parser.add_argument(
        "--media-dir",
        type=Path,
        default=Path(".mediavault/samples"),
        help="where generated media is cached and served from (default: %(default)s)",
    )
    parser.add_argument(
        "--big",
        type=int,
        action="append",
        default=[],
        metavar="MB",
        help="also generate /media/big-<MB>mb.mp4 (repeatable)",
    )
    parser.add_argument("--flaky-failures", type=int, default=2, help="503s served by /posts/flaky before it recovers")
    parser.add_argument("--throttle", type=int, default=None, metavar="BYTES_PER_S", help="limit each media response")
    parser.add_argument("--force", action="store_true", help="regenerate media even if cached")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    started = time.perf_counter()
    generate_media(args.media_dir, force=args.force)
    for size in args.big:
        big_media(args.media_dir, size, force=args.force)
    print(f"media ready in {args.media_dir} ({time.perf_counter() - started:.1f}s)")

    site = SampleSite(
        args.media_dir,
        host=args.host,
        port=args.port,
        flaky_failures=args.flaky_failures,
        throttle_bps=args.throttle,
        generate=False,
        verbose=args.verbose,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    with site:
        print(f"Sample site on {site.base_url}/  (Ctrl-C to stop)")
        width = max(len(site.url(p.path)) for p in SAMPLE_POSTS)
        for post in SAMPLE_POSTS:
            expected = post.expected_media or "-"
            print(f"  {site.url(post.path):<{width}}  {post.status}  expect: {expected}")
        for size in args.big:
            print(f"  {site.url(f'/media/big-{size}mb.mp4')}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
