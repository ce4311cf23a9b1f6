"""HLS archiving end to end on loopback: the generated HLS sets are served by a tiny site, fetched through
the egress-checked client, remuxed (stream copy) into MP4 and streamed into S3 (moto), or refused cleanly."""

from __future__ import annotations

import hashlib
import io
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import httpx
import pytest
from moto import mock_aws

from mediavault.errors import DeadlineReached, InvalidMedia, MediaTooLarge, UpstreamUnavailable
from mediavault.safety.egress import EgressPolicy, egress_client
from mediavault.storage import S3MediaStore
from mediavault.worker.deadline import Deadline
from mediavault.worker.hls import HlsDownloader
from mediavault_local.samples.hls import HLS_SECONDS, HLS_VARIANTS, generate_hls, serve_hls
from mediavault_local.samples.serving import Exchange, LoopbackSite

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "mediavault-hls"
KEY = "tenants/default/downloads/x-alice/job-hls.mp4"
BEST = max(HLS_VARIANTS, key=lambda v: (v.width * v.height, v.bandwidth))
LONG_REPEATS = 30


class HlsSite(LoopbackSite):
    """``/sep/...``: the separate-audio MPEG-TS set; ``/fmp4/...``: the muxed fMP4 set; ``/long/...``:
    the separate set with each media playlist repeated (discontinuities between the repeats)."""

    name = "hls-site"

    def __init__(self, separate: Path, muxed: Path) -> None:
        super().__init__()
        self.separate = separate
        self.muxed = muxed
        self.tamper: Callable[[str, bytes], bytes | int | None] | None = None

    def handle(self, exchange: Exchange) -> None:
        prefix, _, rest = exchange.path.lstrip("/").partition("/")
        if prefix == "sep":
            serve_hls(exchange, self.separate, rest, tamper=self.tamper)
        elif prefix == "fmp4":
            serve_hls(exchange, self.muxed, rest, tamper=self.tamper)
        elif prefix == "long" and rest.endswith("/index.m3u8"):
            exchange.send_bytes(200, self._long(rest).encode(), "application/vnd.apple.mpegurl")
        elif prefix == "long":
            serve_hls(exchange, self.separate, rest)
        else:
            exchange.send_html(404, "<!doctype html><title>Not found</title>")

    def _long(self, rest: str) -> str:
        folder = rest.rsplit("/", 1)[0]
        lines = (self.separate / rest).read_text().splitlines()
        body = [line for line in lines[lines.index("#EXT-X-PLAYLIST-TYPE:VOD") + 1 :] if line != "#EXT-X-ENDLIST"]
        body = [f"/sep/{folder}/{line}" if line and not line.startswith("#") else line for line in body]
        repeated: list[str] = []
        for index in range(LONG_REPEATS):
            repeated += (["#EXT-X-DISCONTINUITY"] if index else []) + body
        return "\n".join(["#EXTM3U", "#EXT-X-TARGETDURATION:3", *repeated, "#EXT-X-ENDLIST", ""])


@pytest.fixture(scope="module")
def hls_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cached = ROOT / ".mediavault" / "samples"
    directory = cached if cached.is_dir() else tmp_path_factory.mktemp("hls")
    return generate_hls(directory), generate_hls(directory, muxed=True)


@pytest.fixture
def site(hls_sets: tuple[Path, Path]) -> Iterator[HlsSite]:
    with HlsSite(*hls_sets) as running:
        yield running


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def client(site: HlsSite) -> Iterator[httpx.Client]:
    with egress_client(EgressPolicy(allow=frozenset({site.netloc})), timeout=10) as http:
        yield http


def downloader(client: httpx.Client, s3: Any, *, max_bytes: int = 10**9, part_size: int = 5 * 1024**2) -> HlsDownloader:
    return HlsDownloader(client, S3MediaStore(s3, BUCKET, part_size=part_size), max_bytes=max_bytes)


def store(d: HlsDownloader, url: str, **kwargs: Any) -> Any:
    return d.store(url, key_for=lambda _: KEY, min_bytes=10_000, **kwargs)


def nothing_left(s3: Any) -> bool:
    objects = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return not objects and not uploads


def packet_sizes(source: Any, kind: str) -> list[int]:
    """Sizes of the demuxed packets of the first ``kind`` stream of ``source`` (a path or file-like)."""
    with av.open(source, "r") as container:
        stream = getattr(container.streams, kind)[0]
        return [p.size for p in container.demux(stream) if p.dts is not None and p.size]


def slices(source: Any) -> list[bytes]:
    """The coded H.264 slices (NAL types 1 and 5) of the first video stream, in order: MPEG-TS carries
    them with Annex-B start codes, MP4 with length prefixes; the slices themselves must be identical."""
    found: list[bytes] = []
    with av.open(source, "r") as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.dts is None or not packet.size:
                continue
            data = bytes(packet)
            if data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
                units = [unit.rstrip(b"\x00") for unit in data.split(b"\x00\x00\x01") if unit.strip(b"\x00")]
            else:
                units, at = [], 0
                while at + 4 <= len(data):
                    length = int.from_bytes(data[at : at + 4], "big")
                    units.append(data[at + 4 : at + 4 + length])
                    at += 4 + length
            found += [unit for unit in units if unit[0] & 0x1F in (1, 5)]
    return found


def concatenated(directory: Path, pattern: str, init: str | None = None) -> io.BytesIO:
    parts = ([directory / init] if init else []) + sorted(directory.glob(pattern))
    return io.BytesIO(b"".join(p.read_bytes() for p in parts))


def stored_bytes(s3: Any) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    return body


# --------------------------------------------------------------------------------------------
# Success
# --------------------------------------------------------------------------------------------


def test_probe_chooses_the_best_variant_and_its_audio(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    choice = downloader(client, s3).probe(site.url("sep/master.m3u8"))
    assert (choice.width, choice.height, choice.bandwidth) == (BEST.width, BEST.height, BEST.bandwidth)
    assert choice.playlist_url == site.url(f"sep/{BEST.name}/index.m3u8")
    assert choice.audio_url == site.url("sep/audio/index.m3u8")
    assert choice.audio_name == "English"
    assert choice.segments == 3
    assert choice.duration == pytest.approx(HLS_SECONDS, abs=0.1)
    assert choice.estimated_bytes == int(BEST.bandwidth * choice.duration / 8)


def test_separate_audio_is_remuxed_with_the_best_video_without_reencoding(
    site: HlsSite, client: httpx.Client, s3: Any, hls_sets: tuple[Path, Path]
) -> None:
    # Given the master of the MPEG-TS set (video-only variants + a separate AAC rendition)
    url = site.url("sep/master.m3u8")
    progress: list[tuple[int, int | None]] = []

    # When it is stored
    stored = store(downloader(client, s3), url, progress=lambda done, total: progress.append((done, total)))

    # Then one valid MP4 is in S3, its hash and size as reported
    body = stored_bytes(s3)
    assert (stored.key, stored.kind, stored.content_type, stored.source_url) == (KEY, "video", "video/mp4", url)
    assert stored.bytes == len(body)
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert body[4:8] == b"ftyp"
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ContentType"] == "video/mp4"
    with av.open(io.BytesIO(body), "r") as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 1
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.width, video.codec_context.height) == (
            "h264", BEST.width, BEST.height,
        )  # fmt: skip
        assert (audio.codec_context.name, audio.codec_context.sample_rate) == ("aac", 44_100)
        assert audio.codec_context.extradata  # the AudioSpecificConfig MP4 needs (from ADTS)
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(HLS_SECONDS, abs=0.2)

    # And the packets are the source's, copied: same video sizes, audio sizes less their 7-byte ADTS header
    separate = hls_sets[0]
    assert slices(io.BytesIO(body)) == slices(concatenated(separate / BEST.name, "seg*.ts"))
    source_audio = packet_sizes(concatenated(separate / "audio", "seg*.ts"), "audio")
    assert packet_sizes(io.BytesIO(body), "audio") == [size - 7 for size in source_audio]
    # And the whole file decodes
    with av.open(io.BytesIO(body), "r") as container:
        assert sum(1 for _ in container.decode(video=0)) == round(HLS_SECONDS * 25)

    # And progress grew up to the final size
    done = [d for d, _ in progress]
    assert len(done) >= 2
    assert done == sorted(done)
    assert progress[-1] == (stored.bytes, stored.bytes)


def test_muxed_fmp4_variants_are_remuxed(
    site: HlsSite, client: httpx.Client, s3: Any, hls_sets: tuple[Path, Path]
) -> None:
    # Given the fMP4 set: audio muxed into each variant, segments behind an #EXT-X-MAP init section
    choice = downloader(client, s3).probe(site.url("fmp4/master.m3u8"))
    assert choice.audio_url is None

    stored = store(downloader(client, s3), site.url("fmp4/master.m3u8"), choice=choice)

    body = stored_bytes(s3)
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    source = hls_sets[1] / BEST.name
    with av.open(io.BytesIO(body), "r") as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (BEST.width, BEST.height)
        assert len(container.streams.audio) == 1
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(HLS_SECONDS, abs=0.2)
    for kind in ("video", "audio"):
        expected = packet_sizes(concatenated(source, "seg*.m4s", init="init.mp4"), kind)
        assert packet_sizes(io.BytesIO(body), kind) == expected


def test_a_media_playlist_given_directly_is_stored(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    d = downloader(client, s3)
    choice = d.probe(site.url("sep/360p/index.m3u8"))
    assert (choice.width, choice.bandwidth, choice.audio_url) == (None, None, None)
    store(d, site.url("sep/360p/index.m3u8"), choice=choice)
    with av.open(io.BytesIO(stored_bytes(s3)), "r") as container:
        assert (container.streams.video[0].width, len(container.streams.audio)) == (640, 0)


# --------------------------------------------------------------------------------------------
# Refusals: nothing is left behind
# --------------------------------------------------------------------------------------------


def test_a_segment_answering_html_is_refused_and_the_upload_aborted(
    site: HlsSite, client: httpx.Client, s3: Any
) -> None:
    # Given the last video segment answers an error page labelled video/mp2t, after parts were uploaded
    site.tamper = lambda path, body: (
        b"<!doctype html><html><body>Oops</body></html>" if path.endswith(f"{BEST.name}/seg002.ts") else None
    )
    d = downloader(client, s3, part_size=128 * 1024)
    uploaded: list[int] = []
    with pytest.raises(InvalidMedia, match="answered a page"):
        store(d, site.url("sep/master.m3u8"), progress=lambda done, _: uploaded.append(done))
    assert uploaded  # bytes had been sent when the bad segment arrived
    assert nothing_left(s3)


@pytest.mark.parametrize(
    ("status", "error"), [(503, UpstreamUnavailable), (429, UpstreamUnavailable), (404, InvalidMedia)]
)
def test_segment_http_errors_are_mapped(
    site: HlsSite, client: httpx.Client, s3: Any, status: int, error: type[Exception]
) -> None:
    site.tamper = lambda path, _: status if path == "audio/seg001.ts" else None
    with pytest.raises(error, match=str(status)):
        store(downloader(client, s3), site.url("sep/master.m3u8"))
    assert nothing_left(s3)


def test_a_master_answering_503_is_upstream_unavailable(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    site.tamper = lambda path, _: 503 if path == "master.m3u8" else None
    with pytest.raises(UpstreamUnavailable):
        downloader(client, s3).probe(site.url("sep/master.m3u8"))


def test_an_encrypted_playlist_is_refused(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    def encrypt(path: str, body: bytes) -> bytes | None:
        if path != f"{BEST.name}/index.m3u8":
            return None
        return body.replace(b"#EXTINF", b'#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n#EXTINF', 1)

    site.tamper = encrypt
    with pytest.raises(InvalidMedia, match="encrypted"):
        store(downloader(client, s3), site.url("sep/master.m3u8"))
    assert nothing_left(s3)


def test_over_max_bytes_is_media_too_large(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    with pytest.raises(MediaTooLarge):
        store(downloader(client, s3, max_bytes=300_000, part_size=64 * 1024), site.url("sep/master.m3u8"))
    assert nothing_left(s3)


def test_the_deadline_is_checked_per_segment(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    checks = iter([60_000] * 3 + [1_000] * 100)  # plenty of time at first, then nearly none
    deadline = Deadline(lambda: next(checks), margin_seconds=10)
    with pytest.raises(DeadlineReached, match="HLS segment"):
        store(downloader(client, s3), site.url("sep/master.m3u8"), deadline=deadline)
    assert nothing_left(s3)


def test_a_playlist_over_the_limit_is_refused(site: HlsSite, client: httpx.Client, s3: Any) -> None:
    d = HlsDownloader(client, S3MediaStore(s3, BUCKET), max_bytes=10**9, max_playlist_bytes=200)
    with pytest.raises(InvalidMedia, match="playlist"):
        d.probe(site.url("sep/master.m3u8"))


# --------------------------------------------------------------------------------------------
# Memory: a measurement, reported (run with -s to see it)
# --------------------------------------------------------------------------------------------


class _FileUpload:
    """An upload into a temp file: lets the memory measurement exclude moto's in-memory objects."""

    def __init__(self, path: Path) -> None:
        self.key = KEY
        self.path = path
        self._file = path.open("wb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def complete(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class _FileStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def open_upload(self, key: str, *, content_type: str) -> _FileUpload:
        return _FileUpload(self.path)


def test_memory_stays_flat_while_a_long_stream_is_remuxed(site: HlsSite, client: httpx.Client) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "long.mp4"
        d = HlsDownloader(client, _FileStore(target), max_bytes=10**9)  # type: ignore[arg-type]
        choice = d.probe(site.url("long/master.m3u8"))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.monotonic()
        try:
            stored = d.store(site.url("long/master.m3u8"), key_for=lambda _: KEY, min_bytes=1, choice=choice)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        seconds = time.monotonic() - started
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        print(
            f"\nHLS remux of {stored.bytes / 1e6:.1f} MB ({LONG_REPEATS * HLS_SECONDS:.0f} s): "
            f"Python peak {peak / 1e6:.1f} MB, max RSS growth {rss_growth / 1e3:.1f} MB, {seconds:.1f} s"
        )
        # The repeats (each a discontinuity back to t=0) come out as one continuous timeline.
        with av.open(str(target), "r") as container:
            assert container.duration is not None
            assert container.duration / 1e6 == pytest.approx(LONG_REPEATS * HLS_SECONDS, rel=0.02)
            assert len(container.streams.audio) == 1
        # Generous bound: a fraction of the output, never the output itself.
        assert peak < stored.bytes / 3
