"""Small, real HLS sets for the sample site and the tests, generated with PyAV.

Two sets of the same moving test pattern and tone (see :mod:`.media` for the frame synthesis):

* :func:`generate_hls` writes ``<directory>/hls/`` — the layout most platforms serve: a master
  playlist with two video-only variants (MPEG-TS segments) that share a separate AAC audio
  rendition (``#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud"``), also in MPEG-TS segments::

      hls/master.m3u8
      hls/360p/index.m3u8  hls/360p/seg000.ts ...
      hls/720p/index.m3u8  hls/720p/seg000.ts ...
      hls/audio/index.m3u8 hls/audio/seg000.ts ...

* ``generate_hls(directory, muxed=True)`` writes ``<directory>/hls-fmp4/`` — variants with audio
  and video muxed together in fragmented-MP4 segments behind an ``#EXT-X-MAP`` init section, no
  separate audio group::

      hls-fmp4/master.m3u8
      hls-fmp4/360p/index.m3u8  hls-fmp4/360p/init.mp4  hls-fmp4/360p/seg000.m4s ...
      hls-fmp4/720p/...

Every URI in every playlist is relative. Segments are ~2 s long (one keyframe each), the clip lasts
:data:`HLS_SECONDS`. A set is cached: it is built in a scratch directory and renamed into place once
complete, and an existing set is kept unless ``force=True``.

:func:`serve_hls` answers a request for one file of a set through a :class:`~.serving.Exchange`, with
the content types players expect and ``Range`` support (for ``#EXT-X-BYTERANGE``), optionally
tampered with to play a failure.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from http import HTTPStatus
from pathlib import Path
from typing import cast

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from .media import _pattern_frame, _tone, _video_codec
from .serving import Exchange

__all__ = [
    "HLS_AUDIO",
    "HLS_CONTENT_TYPES",
    "HLS_DIR",
    "HLS_MUXED_DIR",
    "HLS_SECONDS",
    "HLS_VARIANTS",
    "MASTER",
    "HlsAudioSpec",
    "HlsVariantSpec",
    "Tamper",
    "generate_hls",
    "serve_hls",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HlsVariantSpec:
    """One video variant of the sample HLS sets."""

    name: str  # sub-directory of the set, e.g. "720p"
    width: int
    height: int
    video_bitrate: int  # encoder target, bits per second
    bandwidth: int  # BANDWIDTH declared in the master playlist (peak, audio included)
    average_bandwidth: int  # AVERAGE-BANDWIDTH declared in the master playlist


@dataclass(frozen=True, slots=True)
class HlsAudioSpec:
    """The audio rendition: a mono AAC tone."""

    name: str  # sub-directory of the separate-audio set
    group_id: str
    language: str
    label: str
    sample_rate: int
    bitrate: int


#: Lowest first, as the master playlist lists them (a client must not pick by order).
HLS_VARIANTS: tuple[HlsVariantSpec, ...] = (
    HlsVariantSpec("360p", 640, 360, 400_000, bandwidth=700_000, average_bandwidth=500_000),
    HlsVariantSpec("720p", 1280, 720, 1_200_000, bandwidth=1_800_000, average_bandwidth=1_300_000),
)
HLS_AUDIO = HlsAudioSpec("audio", "aud", "en", "English", 44_100, 64_000)
HLS_SECONDS = 6.0  # three ~2 s segments per playlist
HLS_SEGMENT_SECONDS = 2
HLS_FPS = 25
HLS_DIR = "hls"  # the separate-audio MPEG-TS set
HLS_MUXED_DIR = "hls-fmp4"  # the muxed fMP4 set
MASTER = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"

#: Content types by file suffix, as CDNs commonly label HLS files.
HLS_CONTENT_TYPES: Mapping[str, str] = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/mp4",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
}

#: ``tamper(relative_path, body)``: bytes to send instead, an HTTP status to answer instead, or
#: ``None`` to serve the file unchanged.
Tamper = Callable[[str, bytes], "bytes | int | None"]

_AUDIO_FRAME_SAMPLES = 1024


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _hls_options(playlist: Path, *, fmp4: bool) -> dict[str, str]:
    options = {
        "hls_time": str(HLS_SEGMENT_SECONDS),
        "hls_playlist_type": "vod",
        "hls_list_size": "0",
    }
    if fmp4:
        options |= {
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": "init.mp4",
            "hls_segment_filename": str(playlist.parent / "seg%03d.m4s"),
        }
    else:
        options["hls_segment_filename"] = str(playlist.parent / "seg%03d.ts")
    return options


def _add_video(out: OutputContainer, spec: HlsVariantSpec) -> VideoStream:
    codec = _video_codec()
    video = cast(VideoStream, out.add_stream(codec, rate=HLS_FPS))
    video.width = spec.width
    video.height = spec.height
    video.pix_fmt = "yuv420p"
    video.bit_rate = spec.video_bitrate
    gop = str(HLS_FPS * HLS_SEGMENT_SECONDS)
    if codec == "libx264":
        # A keyframe exactly every segment, so every segment starts decodable.
        video.options = {
            "preset": "superfast",
            "profile": "main",
            "maxrate": str(spec.video_bitrate),
            "bufsize": str(spec.video_bitrate),
            "g": gop,
            "keyint_min": gop,
            "sc_threshold": "0",
        }
    else:
        video.gop_size = int(gop)
    return video


def _add_audio(out: OutputContainer) -> AudioStream:
    audio = cast(AudioStream, out.add_stream("aac", rate=HLS_AUDIO.sample_rate))
    audio.layout = "mono"
    audio.bit_rate = HLS_AUDIO.bitrate
    return audio


def _audio_frames(until_sample: int, start: int) -> Iterator[av.AudioFrame]:
    """Tone frames from sample ``start`` up to (not past) ``until_sample``."""
    while start + _AUDIO_FRAME_SAMPLES <= until_sample:
        frame = av.AudioFrame(format="fltp", layout="mono", samples=_AUDIO_FRAME_SAMPLES)
        frame.sample_rate = HLS_AUDIO.sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, HLS_AUDIO.sample_rate)
        frame.planes[0].update(_tone(_AUDIO_FRAME_SAMPLES, start, 440.0))
        yield frame
        start += _AUDIO_FRAME_SAMPLES


def _avc_codecs(data: bytes) -> str | None:
    """The RFC 6381 ``avc1.PPCCLL`` string from the first SPS in Annex-B ``data``."""
    at = 0
    while True:
        at = data.find(b"\x00\x00\x01", at)
        if at < 0 or at + 6 >= len(data):
            return None
        if data[at + 3] & 0x1F == 7:
            return "avc1." + data[at + 4 : at + 7].hex()
        at += 3


def _encode_playlist(playlist: Path, *, video: HlsVariantSpec | None, audio: bool, fmp4: bool) -> str | None:
    """Encode the clip into ``playlist`` (+ its segments); returns the video's CODECS entry."""
    playlist.parent.mkdir(parents=True, exist_ok=True)
    frames = round(HLS_SECONDS * HLS_FPS)
    total_samples = int(HLS_SECONDS * HLS_AUDIO.sample_rate)
    codecs: str | None = None
    with av.open(str(playlist), "w", format="hls", options=_hls_options(playlist, fmp4=fmp4)) as out:
        vstream = _add_video(out, video) if video is not None else None
        astream = _add_audio(out) if audio else None
        next_sample = 0

        def mux_audio(until: int) -> None:
            nonlocal next_sample
            if astream is None:
                return
            for frame in _audio_frames(until, next_sample):
                out.mux(astream.encode(frame))
                next_sample = frame.pts + _AUDIO_FRAME_SAMPLES  # type: ignore[operator]

        if vstream is not None and video is not None:
            noise_rows = video.height // 8
            for i in range(frames):
                frame = _pattern_frame(video.width, video.height, i / frames, noise_rows=noise_rows)
                frame.pts = i
                frame.time_base = Fraction(1, HLS_FPS)
                for packet in vstream.encode(frame):
                    if codecs is None:
                        codecs = _avc_codecs(bytes(vstream.codec_context.extradata or b"") + bytes(packet))
                    out.mux(packet)
                # Interleave: audio up to the end of this video frame.
                mux_audio((i + 1) * HLS_AUDIO.sample_rate // HLS_FPS)
            out.mux(vstream.encode(None))
        mux_audio(total_samples)
        if astream is not None:
            out.mux(astream.encode(None))
    if video is not None and codecs is None:
        codecs = "avc1.4d401f" if _video_codec() == "libx264" else "mp4v.20.9"
    return codecs


def _master(variants: list[tuple[HlsVariantSpec, str]], *, separate_audio: bool) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:6" if not separate_audio else "#EXT-X-VERSION:4", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if separate_audio:
        a = HLS_AUDIO
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{a.group_id}",NAME="{a.label}",LANGUAGE="{a.language}",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="1",URI="{a.name}/{MEDIA_PLAYLIST}"'
        )
    for spec, video_codecs in variants:
        attrs = [
            f"BANDWIDTH={spec.bandwidth}",
            f"AVERAGE-BANDWIDTH={spec.average_bandwidth}",
            f"RESOLUTION={spec.width}x{spec.height}",
            f"FRAME-RATE={HLS_FPS:.3f}",
            f'CODECS="{video_codecs},mp4a.40.2"',
        ]
        if separate_audio:
            attrs.append(f'AUDIO="{HLS_AUDIO.group_id}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(f"{spec.name}/{MEDIA_PLAYLIST}")
    return "\n".join(lines) + "\n"


def _build(target: Path, *, muxed: bool) -> None:
    scratch = target.with_name(target.name + ".part")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    variants: list[tuple[HlsVariantSpec, str]] = []
    for spec in HLS_VARIANTS:
        codecs = _encode_playlist(scratch / spec.name / MEDIA_PLAYLIST, video=spec, audio=muxed, fmp4=muxed)
        variants.append((spec, codecs or ""))
    if not muxed:
        _encode_playlist(scratch / HLS_AUDIO.name / MEDIA_PLAYLIST, video=None, audio=True, fmp4=False)
    (scratch / MASTER).write_text(_master(variants, separate_audio=not muxed))
    shutil.rmtree(target, ignore_errors=True)
    scratch.replace(target)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate_hls(directory: Path, *, force: bool = False, muxed: bool = False) -> Path:
    """Write an HLS set under ``directory`` and return the directory holding its ``master.m3u8``.

    ``muxed=False`` (default): ``<directory>/hls``, MPEG-TS video-only variants + a separate AAC
    audio rendition. ``muxed=True``: ``<directory>/hls-fmp4``, fMP4 variants with audio muxed in.
    A complete existing set is reused unless ``force``. Takes a few seconds.
    """
    target = Path(directory) / (HLS_MUXED_DIR if muxed else HLS_DIR)
    if force or not (target / MASTER).is_file():
        log.info("generating sample HLS set %s", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _build(target, muxed=muxed)
    return target


def serve_hls(exchange: Exchange, directory: Path, relative_path: str, *, tamper: Tamper | None = None) -> bool:
    """Answer ``relative_path`` of the set in ``directory`` (as :func:`generate_hls` returned it).

    Returns ``True`` when a file was found (and answered, possibly tampered with); on ``False`` a
    404 page was sent. Paths outside ``directory`` are never served. ``tamper(relative_path,
    body)`` may return replacement bytes (sent with the file's usual content type, like a CDN error
    page labelled as media), an HTTP status to answer with an HTML page instead, or ``None``.
    """
    root = Path(directory).resolve()
    relative = relative_path.lstrip("/")
    file = (root / relative).resolve()
    if not relative or not file.is_relative_to(root) or not file.is_file():
        exchange.send_html(HTTPStatus.NOT_FOUND, "<!doctype html><title>Not found</title><h1>Not found</h1>\n")
        return False
    content_type = HLS_CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
    if tamper is not None:
        body = file.read_bytes()
        replaced = tamper(relative, body)
        if isinstance(replaced, int):
            phrase = HTTPStatus(replaced).phrase
            exchange.send_html(replaced, f"<!doctype html><title>{phrase}</title><h1>{phrase}</h1>\n")
            return True
        if replaced is not None:
            body = replaced
        exchange.send_stream(io.BytesIO(body), len(body), content_type)
        return True
    with file.open("rb") as stream:
        exchange.send_stream(stream, file.stat().st_size, content_type)
    return True
