"""Archive an HLS video: choose the best variant, fetch it through the egress-checked client, remux it
to MP4 without re-encoding and stream the result into an S3 multipart upload.

Every playlist and segment is fetched with the given :class:`httpx.Client`; FFmpeg (PyAV) never opens
a URL. It reads Python file-likes that pull one segment at a time from HTTP on demand, and writes a
fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``, plus ``delay_moov`` so that the AAC
configuration the ``aac_adtstoasc`` filter derives from the first ADTS frame reaches the ``moov``) to
a write-only Python object that feeds the upload. Fragmented MP4 needs no seek back, so nothing is
held but one fragment (one GOP), one upload part and a few read buffers: no temp file.

Video and a separate audio rendition come from two demuxers read side by side and are interleaved by
DTS; timestamps are rebased so the earliest one is zero (keeping audio and video in sync). Packets are
copied, never decoded. Each segment is checked as it arrives (an HTML error page is refused), the
output is bounded by ``max_bytes`` and the input by a quarter more (container overheads differ), and
any failure aborts the upload: nothing half-written is ever visible.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import httpx
from av.bitstream import BitStreamFilterContext

from mediavault.errors import InvalidMedia, MediaTooLarge, MediaVaultError, UpstreamUnavailable
from mediavault.media.hls import ByteRange, MediaPlaylist, choose, is_master, parse_master, parse_media
from mediavault.media.sniff import Sniffed, looks_like_text
from mediavault.storage import MediaStore, Upload
from mediavault.worker.deadline import Deadline
from mediavault.worker.download import Progress, Stored, check_status, finish_upload, int_or_none

__all__ = ["HlsChoice", "HlsDownloader"]

MP4 = Sniffed("video", "mp4", "video/mp4")
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+delay_moov"
_CHUNK = 64 * 1024
_HEAD_BYTES = 512  # what a segment must show before it is believed to be media
_PROGRESS_STEP = 256 * 1024  # report progress at most once per 256 KiB written
_LOOKAHEAD_PACKETS = 2_000  # packets read ahead to find every stream's first timestamp
_BACKWARD_JUMP = 1.0  # seconds: a DTS going back further than this is a discontinuity
_MP4_BOXES = (b"ftyp", b"styp", b"moof", b"moov", b"sidx", b"emsg", b"prft", b"free", b"mdat", b"skip")


@dataclass(frozen=True, slots=True)
class HlsChoice:
    """What :meth:`HlsDownloader.probe` chose: the variant to archive and its audio rendition."""

    master_url: str
    playlist_url: str  # the chosen video variant's media playlist
    width: int | None
    height: int | None
    bandwidth: int | None  # BANDWIDTH of the variant; None when given a media playlist directly
    codecs: tuple[str, ...]
    audio_url: str | None  # media playlist of the separate audio rendition, None when muxed or absent
    audio_name: str | None
    segments: int  # segments of the video playlist
    duration: float  # seconds
    video: MediaPlaylist = field(repr=False, compare=False)
    audio: MediaPlaylist | None = field(default=None, repr=False, compare=False)

    @property
    def estimated_bytes(self) -> int | None:
        """BANDWIDTH x duration: the size to expect (an upper estimate: BANDWIDTH is a peak)."""
        return int(self.bandwidth * self.duration / 8) if self.bandwidth else None


class HlsDownloader:
    def __init__(
        self,
        client: httpx.Client,
        store: MediaStore,
        *,
        max_bytes: int,
        max_playlist_bytes: int = 2 * 1024 * 1024,
    ) -> None:
        self._client = client
        self._store = store
        self._max_bytes = max_bytes
        self._max_playlist_bytes = max_playlist_bytes

    # ----------------------------------------------------------------------------------------
    # Probe
    # ----------------------------------------------------------------------------------------

    def probe(self, master_url: str, *, headers: dict[str, str] | None = None) -> HlsChoice:
        """Fetch the master playlist (or a media playlist given directly) and choose what to archive."""
        text, url = self._playlist(master_url, headers)
        if not is_master(text):
            media = parse_media(text, url)
            return HlsChoice(
                master_url=master_url, playlist_url=url, width=None, height=None, bandwidth=None, codecs=(),
                audio_url=None, audio_name=None, segments=len(media.segments), duration=media.duration,
                video=media,
            )  # fmt: skip
        selection = choose(parse_master(text, url))
        variant = selection.variant
        video = parse_media(*self._playlist(variant.uri, headers))
        rendition = selection.audio
        audio = parse_media(*self._playlist(rendition.uri, headers)) if rendition and rendition.uri else None
        return HlsChoice(
            master_url=master_url,
            playlist_url=video.url,
            width=variant.width,
            height=variant.height,
            bandwidth=variant.bandwidth,
            codecs=variant.codecs,
            audio_url=audio.url if audio else None,
            audio_name=rendition.name if audio and rendition else None,
            segments=len(video.segments),
            duration=video.duration,
            video=video,
            audio=audio,
        )

    def _playlist(self, url: str, headers: dict[str, str] | None) -> tuple[str, str]:
        """The text of the playlist at ``url`` and the URL it was finally served from (after redirects)."""
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                check_status(url, response, partial=False)
                declared = int_or_none(response.headers.get("content-length"))
                if declared is not None and declared > self._max_playlist_bytes:
                    raise InvalidMedia(f"playlist {url} is {declared} bytes, over {self._max_playlist_bytes}")
                body = bytearray()
                for chunk in response.iter_bytes(_CHUNK):
                    body += chunk
                    if len(body) > self._max_playlist_bytes:
                        raise InvalidMedia(f"playlist {url} is over {self._max_playlist_bytes} bytes")
                final = str(response.url)
        except MediaVaultError:
            raise
        except httpx.TooManyRedirects as exc:
            raise InvalidMedia(f"too many redirects for {url}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"fetching {url} failed: {type(exc).__name__}") from exc
        return body.decode("utf-8", errors="replace"), final

    # ----------------------------------------------------------------------------------------
    # Store
    # ----------------------------------------------------------------------------------------

    def store(
        self,
        master_url: str,
        *,
        key_for: Callable[[Sniffed], str],
        min_bytes: int,
        deadline: Deadline | None = None,
        headers: dict[str, str] | None = None,
        progress: Progress | None = None,
        choice: HlsChoice | None = None,
    ) -> Stored:
        """Remux the best variant of ``master_url`` (and its audio) into one MP4 at ``key_for(mp4)``."""
        if choice is None:
            choice = self.probe(master_url, headers=headers)
        if deadline is not None:
            deadline.check("the HLS download")
        budget = _Budget(self._max_bytes + self._max_bytes // 4, master_url)
        readers = [_SegmentReader(self._client, choice.video, headers, budget, deadline)]
        if choice.audio is not None:
            readers.append(_SegmentReader(self._client, choice.audio, headers, budget, deadline))

        upload = self._store.open_upload(key_for(MP4), content_type=MP4.content_type)
        writer = _UploadWriter(upload, self._max_bytes, master_url, progress, choice.estimated_bytes)
        try:
            try:
                _remux(readers, writer, master_url)
            except av.FFmpegError as exc:
                # An error raised inside a reader/writer callback surfaces as itself; this is FFmpeg's own.
                raise InvalidMedia(f"{master_url} could not be remuxed to MP4: {exc}") from exc
            finally:
                for reader in readers:
                    reader.close()
            if writer.total < min_bytes:
                raise InvalidMedia(f"{master_url} remuxed to only {writer.total} bytes; media is at least {min_bytes}")
            writer.report(final=True)
            return finish_upload(
                self._store, upload, url=master_url, kind=MP4.kind, content_type=MP4.content_type,
                total=writer.total, sha256=writer.sha256, deadline=deadline,
            )  # fmt: skip
        except BaseException:
            upload.abort()
            raise


# --------------------------------------------------------------------------------------------
# Input: segments pulled from HTTP on demand
# --------------------------------------------------------------------------------------------


class _Budget:
    """Bytes read from segments, across all inputs."""

    def __init__(self, limit: int, url: str) -> None:
        self.limit = limit
        self.used = 0
        self._url = url

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise MediaTooLarge(f"{self._url}: its segments are over the {self.limit}-byte input limit")


class _SegmentReader:
    """A read-only, non-seekable file-like over a media playlist's segments (init sections included),
    fetching each segment only when the previous one is used up."""

    def __init__(
        self,
        client: httpx.Client,
        playlist: MediaPlaylist,
        headers: dict[str, str] | None,
        budget: _Budget,
        deadline: Deadline | None,
    ) -> None:
        self._client = client
        self._playlist = playlist
        self._headers = headers or {}
        self._budget = budget
        self._deadline = deadline
        self._parts = self._iter_parts()
        self._buffer = bytearray()
        self._done = False

    def head(self) -> bytes:
        """The first bytes of the first part (fetched now), to tell its container format."""
        while len(self._buffer) < _HEAD_BYTES and not self._done:
            if not self._fill():
                break
        return bytes(self._buffer[:_HEAD_BYTES])

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _CHUNK
        while not self._buffer and not self._done:
            self._fill()
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def close(self) -> None:
        self._done = True
        self._parts.close()

    def _fill(self) -> bool:
        chunk = next(self._parts, None)
        if chunk is None:
            self._done = True
            return False
        self._buffer += chunk
        return True

    def _iter_parts(self) -> Generator[bytes, None, None]:
        segments = self._playlist.segments
        current_init = None
        for index, segment in enumerate(segments):
            if self._deadline is not None:
                self._deadline.check(f"HLS segment {index + 1}/{len(segments)}")
            if segment.init is not None and segment.init != current_init:
                current_init = segment.init
                yield from self._fetch(current_init.uri, current_init.byte_range, init=True)
            yield from self._fetch(segment.uri, segment.byte_range, init=False)

    def _fetch(self, url: str, byte_range: ByteRange | None, *, init: bool) -> Iterator[bytes]:
        headers = dict(self._headers)
        if byte_range is not None:
            headers["Range"] = byte_range.header
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                check_status(url, response, partial=byte_range is not None)
                yield from self._body(url, response, byte_range, init=init)
        except MediaVaultError:
            raise
        except httpx.TooManyRedirects as exc:
            raise InvalidMedia(f"too many redirects for {url}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"HLS segment {url} failed: {type(exc).__name__}") from exc

    def _body(self, url: str, response: httpx.Response, byte_range: ByteRange | None, *, init: bool) -> Iterator[bytes]:
        declared = response.headers.get("content-type")
        skip, remaining = 0, None
        if byte_range is not None:
            remaining = byte_range.length
            if response.status_code != 206:  # the server ignored Range: cut the range out of the whole body
                skip = byte_range.start
        length = int_or_none(response.headers.get("content-length"))
        if length is not None and length - skip > self._budget.limit:
            raise MediaTooLarge(f"HLS segment {url} is {length} bytes, over the {self._budget.limit}-byte limit")
        head = bytearray()
        checked = False
        for chunk in response.iter_bytes(_CHUNK):
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            if remaining is not None:
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            if not chunk:
                if remaining == 0:
                    break
                continue
            self._budget.take(len(chunk))
            if not checked:
                head += chunk
                if len(head) < _HEAD_BYTES:
                    continue
                _check_segment(url, bytes(head), declared, init=init)
                checked, chunk = True, bytes(head)
            yield chunk
            if remaining == 0:
                break
        if not checked:
            if not head:
                raise InvalidMedia(f"HLS segment {url} answered an empty body")
            _check_segment(url, bytes(head), declared, init=init)
            yield bytes(head)
        if remaining:
            raise UpstreamUnavailable(f"HLS segment {url} ended {remaining} bytes short of its byte range")


def _check_segment(url: str, head: bytes, declared: str | None, *, init: bool) -> None:
    """The bytes decide (CDNs label segments loosely); the declared type only names what a refusal saw."""
    if looks_like_text(head):
        raise InvalidMedia(f"HLS segment {url} answered a page ({declared or 'no type'}), not media")
    if (head[4:8] == b"ftyp") if init else _container(head) is not None:
        return
    if looks_like_text(head, declared):
        raise InvalidMedia(f"HLS segment {url} answered a page ({declared or 'no type'}), not media")
    what = "an MP4 initialisation section" if init else "MPEG-TS, fragmented MP4 or AAC"
    raise InvalidMedia(f"HLS segment {url} is not {what} ({declared or 'no type'})")


def _container(head: bytes) -> str | None:
    """The FFmpeg demuxer for a segment (or init section) starting with ``head``."""
    if head[:1] == b"\x47" and (len(head) < 189 or head[188] == 0x47):
        return "mpegts"
    if len(head) >= 8 and head[4:8] in _MP4_BOXES:
        return "mp4"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0):
        return "aac"  # packed audio: ADTS frames, usually after an ID3 timestamp tag
    return None


# --------------------------------------------------------------------------------------------
# Output: a write-only object feeding the upload
# --------------------------------------------------------------------------------------------


class _UploadWriter:
    def __init__(self, upload: Upload, max_bytes: int, url: str, progress: Progress | None, estimate: int | None):
        self._upload = upload
        self._max_bytes = max_bytes
        self._url = url
        self._progress = progress
        self._estimate = estimate
        self._digest = hashlib.sha256()
        self._reported = 0
        self.total = 0
        self.discarding = False  # after a failure: swallow what the muxer still writes

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.discarding:
            return len(data)
        chunk = bytes(data)
        self.total += len(chunk)
        if self.total > self._max_bytes:
            raise MediaTooLarge(f"{self._url} remuxes to over the {self._max_bytes}-byte limit")
        self._digest.update(chunk)
        self._upload.write(chunk)
        self.report()
        return len(chunk)

    def report(self, *, final: bool = False) -> None:
        if self._progress is None or (not final and self.total - self._reported < _PROGRESS_STEP):
            return
        self._reported = self.total
        estimate = self._estimate
        if estimate is not None and estimate < self.total:
            estimate = self.total if final else None
        self._progress(self.total, self.total if final else estimate)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Remux
# --------------------------------------------------------------------------------------------


class _Source:
    """One input container: its selected streams' packets, in file order, mapped to output streams,
    with a look-ahead to find each stream's first timestamp."""

    def __init__(self, container: Any, routes: dict[int, tuple[Any, BitStreamFilterContext | None]]) -> None:
        self._routes = routes
        self._packets = self._iterate(container, [container.streams[i] for i in routes])
        self._ahead: deque[tuple[Any, Any]] = deque()

    def _iterate(self, container: Any, streams: list[Any]) -> Iterator[tuple[Any, Any]]:
        for packet in container.demux(*streams):
            out, bsf = self._routes[packet.stream.index]
            if bsf is None:
                if packet.dts is not None:
                    yield packet, out
                continue
            for filtered in bsf.filter(packet if packet.size else None):
                if filtered.dts is not None:
                    yield filtered, out

    def peek(self) -> tuple[Any, Any] | None:
        if not self._ahead:
            item = next(self._packets, None)
            if item is None:
                return None
            self._ahead.append(item)
        return self._ahead[0]

    def pop(self) -> tuple[Any, Any]:
        self.peek()
        return self._ahead.popleft()

    def first_dts(self) -> float | None:
        """The earliest DTS (seconds) of the first packet of each of its streams."""
        seen: dict[int, float] = {}
        index = 0
        while len(seen) < len(self._routes) and index < _LOOKAHEAD_PACKETS:
            if index >= len(self._ahead):
                item = next(self._packets, None)
                if item is None:
                    break
                self._ahead.append(item)
            packet, out = self._ahead[index]
            seen.setdefault(out.index, float(packet.dts * packet.time_base))
            index += 1
        return min(seen.values()) if seen else None


def _open_input(reader: _SegmentReader, url: str) -> Any:
    head = reader.head()
    if not head:
        raise InvalidMedia(f"{url} has no media")
    fmt = _container(head)
    if fmt is None:
        raise InvalidMedia(f"{url} is neither MPEG-TS, fragmented MP4 nor AAC")
    return av.open(reader, mode="r", format=fmt)


def _remux(readers: list[_SegmentReader], writer: _UploadWriter, url: str) -> None:
    inputs = [_open_input(reader, url) for reader in readers]
    try:
        output = av.open(writer, mode="w", format="mp4", options={"movflags": _MOVFLAGS})
        try:
            _interleave(_plan(inputs, output, url), output)
        except BaseException:
            # Closing writes the trailer: discard it, and keep the first error rather than a later one.
            writer.discarding = True
            with contextlib.suppress(Exception):
                output.close()
            raise
        output.close()
    finally:
        for container in inputs:
            container.close()


def _plan(inputs: list[Any], output: Any, url: str) -> list[_Source]:
    """Map the video stream (first input) and the audio stream (separate input, else the first) to
    output streams copied from them (no codec is opened)."""
    video_in = inputs[0]
    if not video_in.streams.video:
        raise InvalidMedia(f"{url}: the chosen HLS variant has no video stream")
    video = video_in.streams.video[0]
    audio_container = inputs[1] if len(inputs) > 1 else video_in
    audio = audio_container.streams.audio[0] if audio_container.streams.audio else None
    if len(inputs) > 1 and audio is None:
        raise InvalidMedia(f"{url}: the HLS audio rendition has no audio stream")

    routes: list[dict[int, tuple[Any, BitStreamFilterContext | None]]] = [{} for _ in inputs]
    routes[0][video.index] = (output.add_stream_from_template(video), None)
    if audio is not None:
        out_audio = output.add_stream_from_template(audio)
        bsf = None
        if audio.codec_context.name == "aac" and not audio.codec_context.extradata:
            # ADTS (MPEG-TS, packed audio) -> raw AAC + AudioSpecificConfig, which MP4 requires.
            bsf = BitStreamFilterContext("aac_adtstoasc", audio)
        routes[len(inputs) - 1 if len(inputs) > 1 else 0][audio.index] = (out_audio, bsf)
    return [_Source(container, route) for container, route in zip(inputs, routes, strict=True)]


def _interleave(sources: list[_Source], output: Any) -> None:
    """Mux packets across sources in DTS order, rebased to start at zero and kept monotonic."""
    starts = [start for source in sources if (start := source.first_dts()) is not None]
    if not starts:
        raise InvalidMedia("the HLS media holds no packets")
    origin = min(starts)
    last: dict[int, int] = {}
    shift: dict[int, int] = {}
    while True:
        pending = [(source, item) for source in sources if (item := source.peek()) is not None]
        if not pending:
            return
        source, _ = min(pending, key=lambda pair: _seconds(pair[1], origin, shift))
        packet, out = source.pop()
        time_base: Fraction = packet.time_base
        offset = round(origin / time_base) - shift.get(out.index, 0)
        dts = packet.dts - offset
        pts = packet.pts - offset if packet.pts is not None else dts
        previous = last.get(out.index)
        if previous is not None and dts <= previous:
            if (previous - dts) * time_base > _BACKWARD_JUMP:  # a discontinuity: continue after the previous
                step = previous + max(packet.duration or 1, 1) - dts
                shift[out.index] = shift.get(out.index, 0) + step
            else:
                step = previous + 1 - dts
            dts, pts = dts + step, pts + step
        packet.dts, packet.pts = dts, max(pts, dts)
        last[out.index] = dts
        packet.stream = out
        output.mux(packet)


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def _seconds(item: tuple[Any, Any], origin: float, shift: dict[int, int]) -> float:
    """A packet's DTS on the output timeline (seconds), to order packets across sources."""
    packet, out = item
    return float((packet.dts + shift.get(out.index, 0)) * packet.time_base) - origin
