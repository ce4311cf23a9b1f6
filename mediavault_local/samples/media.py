"""Small, real, playable media files for the sample site, generated with PyAV.

Everything is synthesised locally (no downloads, no numpy, no Pillow): frames are built as raw
``yuv420p`` planes from ``bytes`` and encoded with the FFmpeg bundled in PyAV.

* :func:`generate_media` writes the everyday set: the same moving test pattern at 360p / 720p /
  1080p (H.264 + AAC, ``+faststart``), a GIF-like silent loop, a JPEG poster and a larger photo.
* :func:`big_media` writes a valid MP4 of roughly a requested size (benchmarks: 50 MB, 500 MB) by
  encoding a handful of intra-only noise frames once and muxing those packets over and over with
  increasing timestamps, which runs at disk speed instead of encoder speed.

Files are cached by name: a file that already exists is kept unless ``force=True``.
"""

from __future__ import annotations

import logging
import math
import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import cast

import av
from av.container import OutputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

__all__ = [
    "ANIMATED",
    "CLIP_VARIANTS",
    "PHOTO",
    "POSTER",
    "ClipSpec",
    "big_media",
    "big_media_name",
    "generate_media",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """One encoded rendition of the sample clip."""

    filename: str
    width: int
    height: int
    bitrate: int  # target video bits per second
    seconds: float
    fps: int = 25
    audio: bool = True  # add a mono AAC tone
    noise: bool = True  # add a band of noise so the encoder spends the bitrate, like real footage


#: The three renditions of the same clip, lowest first (the order an adaptive player lists them).
CLIP_VARIANTS: tuple[ClipSpec, ...] = (
    ClipSpec("clip-360p.mp4", 640, 360, 300_000, 3.0),
    ClipSpec("clip-720p.mp4", 1280, 720, 1_200_000, 3.0),
    ClipSpec("clip-1080p.mp4", 1920, 1080, 2_500_000, 3.0),
)
#: A short, silent, seamlessly looping clip: what platforms serve in place of an animated GIF.
ANIMATED = ClipSpec("animated.mp4", 480, 270, 400_000, 2.0, fps=25, audio=False, noise=False)
POSTER = "poster.jpg"  # 1280x720, the clip's test pattern at t=0
PHOTO = "photo.jpg"  # 2048x1536 still
POSTER_SIZE = (1280, 720)
PHOTO_SIZE = (2048, 1536)

_AUDIO_RATE = 44_100
_AUDIO_FRAME_SAMPLES = 1024  # the AAC encoder's frame size


# --------------------------------------------------------------------------------------------
# Frame synthesis (pure Python over bytes; every operation below works on whole rows/slices)
# --------------------------------------------------------------------------------------------


def _fill_plane(frame: VideoFrame, index: int, rows: list[bytes]) -> None:
    """Copy ``rows`` (each exactly the plane's visible width) into plane ``index``.

    FFmpeg pads each line to ``line_size`` for alignment, so every row is padded before the single
    ``update`` call, which requires the buffer's exact size.
    """
    plane = frame.planes[index]
    pad = plane.line_size - plane.width
    if pad:
        filler = bytes(pad)
        plane.update(b"".join(row + filler for row in rows))
    else:
        plane.update(b"".join(rows))


def _pattern_frame(
    width: int,
    height: int,
    t: float,
    *,
    noise_rows: int = 0,
    fmt: str = "yuv420p",
) -> VideoFrame:
    """A moving test pattern at phase ``t`` (0..1 repeats seamlessly).

    Luma: a horizontal brightness ramp that scrolls with ``t`` plus a bright square bouncing
    along a sine path. Chroma: eight vertical colour bars whose hues drift with ``t``. An optional
    band of random noise at the bottom gives the encoder real work, so higher renditions really
    are bigger files, as on a real platform.
    """
    frame = VideoFrame(width, height, fmt)

    # Luma ramp: a triangle wave over video range (16..235) with a period of one frame width,
    # computed over two widths so that any offset in [0, width) can be sliced out directly.
    period = width
    ramp = bytes(
        16 + (219 * (2 * (x % period) if x % period < period // 2 else 2 * (period - x % period)) // period)
        for x in range(2 * width)
    )
    offset = int(t * period) % period
    row = ramp[offset : offset + width]
    luma = [row] * height

    # Bouncing square, a quarter of the frame height.
    side = max(8, height // 4)
    cx = int((width - side) * (0.5 + 0.5 * math.sin(2 * math.pi * t)))
    cy = int((height - side) * (0.5 + 0.5 * math.sin(4 * math.pi * t + 1.0)))
    box_row = row[:cx] + b"\xeb" * side + row[cx + side :]
    for y in range(cy, cy + side):
        luma[y] = box_row

    if noise_rows:
        for y in range(height - noise_rows, height):
            luma[y] = os.urandom(width)
    _fill_plane(frame, 0, luma)

    # Chroma: colour bars, hue rotating with t.
    cw, ch = frame.planes[1].width, frame.planes[1].height
    bar = max(1, cw // 8)
    u_row = bytearray(cw)
    v_row = bytearray(cw)
    for i in range(cw):
        angle = 2 * math.pi * ((i // bar) / 8 + t)
        u_row[i] = 128 + int(100 * math.cos(angle))
        v_row[i] = 128 + int(100 * math.sin(angle))
    _fill_plane(frame, 1, [bytes(u_row)] * ch)
    _fill_plane(frame, 2, [bytes(v_row)] * ch)
    return frame


def _noise_frame(width: int, height: int) -> VideoFrame:
    """A frame of pure random noise: incompressible, so each encoded frame is large."""
    frame = VideoFrame(width, height, "yuv420p")
    for plane in frame.planes:
        plane.update(os.urandom(plane.buffer_size))
    return frame


def _tone(samples: int, start: int, freq: float) -> bytes:
    """Mono float32 sine samples starting at sample index ``start``."""
    step = 2 * math.pi * freq / _AUDIO_RATE
    return array("f", (0.2 * math.sin(step * (start + i)) for i in range(samples))).tobytes()


# --------------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------------


def _video_codec() -> str:
    """H.264 when PyAV's FFmpeg ships libx264, otherwise MPEG-4 part 2 (still a valid .mp4)."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _add_video_stream(out: OutputContainer, codec: str, fps: int, width: int, height: int) -> VideoStream:
    # add_stream() is typed per codec literal; with a codec chosen at run time it is a video stream.
    video = cast(VideoStream, out.add_stream(codec, rate=fps))
    video.width = width
    video.height = height
    video.pix_fmt = "yuv420p"
    return video


def _encode_clip(path: Path, spec: ClipSpec) -> None:
    """Encode one rendition of the test pattern (plus a tone) into a fast-start MP4."""
    tmp = path.with_name(path.name + ".part")
    codec = _video_codec()
    frames = round(spec.seconds * spec.fps)
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = _add_video_stream(out, codec, spec.fps, spec.width, spec.height)
        video.bit_rate = spec.bitrate
        if codec == "libx264":
            video.options = {
                "preset": "superfast",
                "maxrate": str(spec.bitrate),
                "bufsize": str(spec.bitrate),
                "g": str(spec.fps * 2),
            }
        audio = None
        if spec.audio and "aac" in av.codecs_available:
            audio = out.add_stream("aac", rate=_AUDIO_RATE)
            audio.layout = "mono"
            audio.bit_rate = 64_000

        # A band of noise about 1/8 of the height keeps bitrate demand proportional to frame area.
        noise_rows = spec.height // 8 if spec.noise else 0
        for i in range(frames):
            frame = _pattern_frame(spec.width, spec.height, i / frames, noise_rows=noise_rows)
            frame.pts = i
            frame.time_base = Fraction(1, spec.fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))

        if audio is not None:
            total = int(spec.seconds * _AUDIO_RATE)
            for start in range(0, total, _AUDIO_FRAME_SAMPLES):
                aframe = av.AudioFrame(format="fltp", layout="mono", samples=_AUDIO_FRAME_SAMPLES)
                aframe.sample_rate = _AUDIO_RATE
                aframe.pts = start
                aframe.time_base = Fraction(1, _AUDIO_RATE)
                aframe.planes[0].update(_tone(_AUDIO_FRAME_SAMPLES, start, 440.0))
                out.mux(audio.encode(aframe))
            out.mux(audio.encode(None))
    tmp.replace(path)


def _encode_jpeg(path: Path, width: int, height: int, t: float, quality: int) -> None:
    """Write one pattern frame as a baseline JPEG using FFmpeg's mjpeg encoder.

    An mjpeg packet is a complete JFIF image (SOI ... EOI), so the packet bytes are the file.
    ``quality`` is the mjpeg qscale: 2 (best) .. 31 (worst).
    """
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    ctx.options = {"qmin": str(quality), "qmax": str(quality)}
    frame = _pattern_frame(width, height, t, fmt="yuvj420p")
    frame.pts = 0
    data = b"".join(bytes(p) for p in ctx.encode(frame))
    data += b"".join(bytes(p) for p in ctx.encode(None))
    if not data.startswith(b"\xff\xd8"):
        raise RuntimeError(f"mjpeg encoder did not produce a JPEG for {path.name}")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate_media(directory: Path, *, force: bool = False) -> dict[str, Path]:
    """Create the sample media set in ``directory`` and return ``{filename: path}``.

    Files already present are reused unless ``force`` is true. Each file is written to a
    ``.part`` name and renamed, so an interrupted run never leaves a half file behind that a
    later run would mistake for a cached one. Takes a few seconds on two cores.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    jobs: list[tuple[str, Callable[[Path], None]]] = [
        (spec.filename, partial(_encode_clip, spec=spec)) for spec in (*CLIP_VARIANTS, ANIMATED)
    ]
    jobs.append((POSTER, partial(_encode_jpeg, width=POSTER_SIZE[0], height=POSTER_SIZE[1], t=0.0, quality=3)))
    jobs.append((PHOTO, partial(_encode_jpeg, width=PHOTO_SIZE[0], height=PHOTO_SIZE[1], t=0.3, quality=2)))

    produced: dict[str, Path] = {}
    for name, build in jobs:
        path = directory / name
        if force or not path.is_file() or path.stat().st_size == 0:
            log.info("generating sample media %s", path)
            build(path)
        produced[name] = path
    return produced


def big_media_name(size_mb: int) -> str:
    """The file name :func:`big_media` uses (and the sample site serves) for ``size_mb``."""
    return f"big-{int(size_mb)}mb.mp4"


def big_media(directory: Path, size_mb: int, *, force: bool = False) -> Path:
    """Write ``big-<size_mb>mb.mp4`` of about ``size_mb`` MiB (never more than ~1 MiB off) and return it.

    A few 960x540 random-noise frames are encoded once as intra-only frames (every packet a
    keyframe that decodes on its own); those packets are then muxed again and again with
    increasing timestamps until the next one would pass the size. The result is an ordinary,
    playable, fast-start MP4 (ftyp, moov, mdat) showing noise at 25 fps. No encoding happens in
    the loop, so the cost is disk writes: ~0.2 s for 50 MB, ~2-5 s for 500 MB (the faststart pass
    rewrites the file once to put the moov first).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / big_media_name(size_mb)
    if path.is_file() and path.stat().st_size > 0 and not force:
        return path

    target = max(1, int(size_mb)) * 1024 * 1024
    fps = 25
    width, height = 960, 540
    codec = _video_codec()
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = _add_video_stream(out, codec, fps, width, height)
        if codec == "libx264":
            # keyint=1: every frame an IDR; a fixed low QP on noise gives ~1 MiB packets.
            video.options = {"preset": "ultrafast", "qp": "10", "keyint": "1"}
        else:
            video.gop_size = 1
            video.options = {"qmin": "2", "qmax": "2"}

        # Encode a small pool of distinct frames once.
        pool: list[bytes] = []
        for i in range(6):
            frame = _noise_frame(width, height)
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            pool.extend(bytes(p) for p in video.encode(frame))
        pool.extend(bytes(p) for p in video.encode(None))

        # Re-mux the pool with increasing timestamps up to the size (at least one frame).
        written = 0
        index = 0
        while index == 0 or written + len(pool[index % len(pool)]) <= target:
            payload = pool[index % len(pool)]
            packet = av.Packet(payload)
            packet.stream = video
            packet.time_base = Fraction(1, fps)
            packet.pts = packet.dts = index
            packet.duration = 1
            packet.is_keyframe = True
            out.mux(packet)
            written += len(payload)
            index += 1
    tmp.replace(path)
    return path
