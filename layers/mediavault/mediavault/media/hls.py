"""HLS playlists (RFC 8216), parsed from text: master and media playlists, and the variant to archive.

Pure functions over strings: nothing here fetches a URL. Every URI is resolved against the URL of
the playlist that names it and must be http(s). What an archiver cannot use is refused with
:class:`~mediavault.errors.InvalidMedia` and a sentence saying why: encrypted media
(``#EXT-X-KEY`` / ``#EXT-X-SESSION-KEY`` with a METHOD other than NONE) and live playlists (no
``#EXT-X-ENDLIST``, so the media never ends).

The tags read are those an archiver needs; others are ignored, as the RFC asks of clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from mediavault.errors import InvalidMedia

__all__ = [
    "ByteRange",
    "HlsSelection",
    "InitSection",
    "MasterPlaylist",
    "MediaPlaylist",
    "Rendition",
    "Segment",
    "Variant",
    "choose",
    "is_master",
    "parse_attributes",
    "parse_master",
    "parse_media",
]

#: CODECS entries (RFC 6381 prefixes) that carry video / audio.
_VIDEO_CODECS = ("avc1", "avc3", "hvc1", "hev1", "dvh1", "dvhe", "vp09", "vp08", "av01", "mp4v")
_AUDIO_CODECS = ("mp4a", "ac-3", "ec-3", "opus", "flac", "fLaC", "alac", "mp3")

_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)\s*=\s*("[^"\r\n]*"|[^,]*?)\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A sub-range of a resource: ``length`` bytes from ``start``."""

    start: int
    length: int

    @property
    def header(self) -> str:
        """The HTTP ``Range`` header value."""
        return f"bytes={self.start}-{self.start + self.length - 1}"


@dataclass(frozen=True, slots=True)
class InitSection:
    """``#EXT-X-MAP``: the initialisation section (fMP4 ``ftyp``+``moov``) the segments need."""

    uri: str
    byte_range: ByteRange | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    uri: str
    duration: float
    byte_range: ByteRange | None = None
    init: InitSection | None = None  # the EXT-X-MAP in force for this segment
    discontinuity: bool = False


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    url: str
    segments: tuple[Segment, ...]
    target_duration: float | None = None
    playlist_type: str | None = None  # VOD | EVENT | None

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


@dataclass(frozen=True, slots=True)
class Rendition:
    """``#EXT-X-MEDIA``: an alternative rendition (here, what matters is audio)."""

    type: str  # AUDIO | VIDEO | SUBTITLES | CLOSED-CAPTIONS
    group_id: str
    name: str
    uri: str | None  # None: the rendition is muxed into the variant's own stream
    default: bool = False
    autoselect: bool = False
    language: str | None = None
    channels: str | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """``#EXT-X-STREAM-INF`` and the media playlist URI that follows it."""

    uri: str
    bandwidth: int
    average_bandwidth: int | None = None
    width: int | None = None
    height: int | None = None
    codecs: tuple[str, ...] = ()
    frame_rate: float | None = None
    audio: str | None = None  # GROUP-ID of its audio renditions

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    @property
    def has_video(self) -> bool:
        """False only for a variant whose CODECS name audio and nothing else."""
        if self.width or self.height or not self.codecs:
            return True
        return any(_codec_is(codec, _VIDEO_CODECS) for codec in self.codecs) or not all(
            _codec_is(codec, _AUDIO_CODECS) for codec in self.codecs
        )

    @property
    def declares_audio(self) -> bool | None:
        """Whether CODECS names an audio codec; ``None`` when CODECS is absent."""
        if not self.codecs:
            return None
        return any(_codec_is(codec, _AUDIO_CODECS) for codec in self.codecs)


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    url: str
    variants: tuple[Variant, ...]
    renditions: tuple[Rendition, ...] = ()

    def audio_group(self, group_id: str) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if r.type == "AUDIO" and r.group_id == group_id)


@dataclass(frozen=True, slots=True)
class HlsSelection:
    """The variant to archive and the separate audio rendition to add (``None``: none, or muxed in)."""

    variant: Variant
    audio: Rendition | None


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def parse_attributes(text: str) -> dict[str, str]:
    """An attribute list (``KEY=value,KEY="quoted, value"``) as a dict, quotes removed."""
    attributes: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _ATTRIBUTE.match(text, position)
        if match is None or match.end() == position:
            raise InvalidMedia(f"malformed HLS attribute list near {text[position : position + 40]!r}")
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        attributes[match.group(1)] = value
        position = match.end()
    return attributes


def is_master(text: str) -> bool:
    """Whether ``text`` is a master (multivariant) playlist rather than a media playlist."""
    return any(line.startswith("#EXT-X-STREAM-INF") for line in _lines(text))


def parse_master(text: str, url: str) -> MasterPlaylist:
    """Parse a master playlist fetched from ``url``."""
    lines = _lines(text, url)
    variants: list[Variant] = []
    renditions: list[Rendition] = []
    pending: dict[str, str] | None = None
    for line in lines:
        if line.startswith("#"):
            tag, _, value = line.partition(":")
            if tag == "#EXT-X-STREAM-INF":
                pending = parse_attributes(value)
            elif tag == "#EXT-X-MEDIA":
                renditions.append(_rendition(parse_attributes(value), url))
            elif tag == "#EXT-X-SESSION-KEY":
                _refuse_key(parse_attributes(value), url)
            elif tag in ("#EXTINF", "#EXT-X-TARGETDURATION"):
                raise InvalidMedia(f"{url} mixes master and media playlist tags")
            continue
        if pending is None:
            raise InvalidMedia(f"{url}: URI {line[:80]!r} does not follow an #EXT-X-STREAM-INF")
        variants.append(_variant(pending, _resolve(url, line)))
        pending = None
    if not variants:
        raise InvalidMedia(f"{url} is a master playlist without variants")
    return MasterPlaylist(url=url, variants=tuple(variants), renditions=tuple(renditions))


def parse_media(text: str, url: str) -> MediaPlaylist:
    """Parse a media playlist fetched from ``url``; refuses encrypted and live playlists."""
    lines = _lines(text, url)
    segments: list[Segment] = []
    target: float | None = None
    playlist_type: str | None = None
    ended = False
    duration: float | None = None
    byte_range: tuple[int, int | None] | None = None
    init: InitSection | None = None
    discontinuity = False
    # Where the last byte-range segment of each resource ended: the implicit start of the next.
    range_ends: dict[str, int] = {}
    for line in lines:
        if line.startswith("#"):
            tag, _, value = line.partition(":")
            if tag == "#EXTINF":
                duration = _duration(value.partition(",")[0], url)
            elif tag == "#EXT-X-BYTERANGE":
                byte_range = _byte_range(value, url)
            elif tag == "#EXT-X-MAP":
                attributes = parse_attributes(value)
                if "URI" not in attributes:
                    raise InvalidMedia(f"{url}: #EXT-X-MAP without URI")
                map_range = None
                if "BYTERANGE" in attributes:
                    length, start = _byte_range(attributes["BYTERANGE"], url)
                    map_range = ByteRange(start or 0, length)
                init = InitSection(_resolve(url, attributes["URI"]), map_range)
            elif tag == "#EXT-X-KEY":
                _refuse_key(parse_attributes(value), url)
            elif tag == "#EXT-X-TARGETDURATION":
                target = _duration(value, url)
            elif tag == "#EXT-X-PLAYLIST-TYPE":
                playlist_type = value.strip().upper()
            elif tag == "#EXT-X-DISCONTINUITY":
                discontinuity = True
            elif tag == "#EXT-X-ENDLIST":
                ended = True
            elif tag in ("#EXT-X-STREAM-INF", "#EXT-X-MEDIA"):
                raise InvalidMedia(f"{url} mixes master and media playlist tags")
            continue
        if duration is None:
            raise InvalidMedia(f"{url}: segment {line[:80]!r} has no #EXTINF")
        uri = _resolve(url, line)
        segment_range = None
        if byte_range is not None:
            length, start = byte_range
            if start is None:
                if uri not in range_ends:
                    raise InvalidMedia(f"{url}: #EXT-X-BYTERANGE without offset does not follow a range of {uri}")
                start = range_ends[uri]
            segment_range = ByteRange(start, length)
            range_ends[uri] = start + length
        segments.append(Segment(uri, duration, segment_range, init, discontinuity))
        duration, byte_range, discontinuity = None, None, False
    if not ended:
        raise InvalidMedia(f"{url} is a live HLS playlist (no #EXT-X-ENDLIST); only finished videos can be archived")
    if not segments:
        raise InvalidMedia(f"{url} is an HLS playlist without segments")
    return MediaPlaylist(url=url, segments=tuple(segments), target_duration=target, playlist_type=playlist_type)


# --------------------------------------------------------------------------------------------
# Choice
# --------------------------------------------------------------------------------------------


def choose(master: MasterPlaylist) -> HlsSelection:
    """The best video variant (most pixels, then highest BANDWIDTH; the first listed on a tie) and
    its audio rendition: the variant group's DEFAULT one, else its first with a URI.

    A DEFAULT rendition without URI means the audio is muxed into the variant: no separate
    rendition then, unless the variant's CODECS say it carries no audio.
    """
    videos = [variant for variant in master.variants if variant.has_video]
    if not videos:
        raise InvalidMedia(f"{master.url} lists only audio variants; there is no video to archive")
    best = videos[0]
    for variant in videos[1:]:
        if (variant.pixels, variant.bandwidth) > (best.pixels, best.bandwidth):
            best = variant
    return HlsSelection(best, _audio_for(master, best))


def _audio_for(master: MasterPlaylist, variant: Variant) -> Rendition | None:
    if variant.audio is None:
        return None
    group = master.audio_group(variant.audio)
    if not group:
        raise InvalidMedia(f"{master.url}: variant {variant.uri} names an unlisted audio group {variant.audio!r}")
    default = next((r for r in group if r.default), None)
    if default is not None and (default.uri is not None or variant.declares_audio is not False):
        return default if default.uri is not None else None
    return next((r for r in group if r.uri is not None), None)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _lines(text: str, url: str | None = None) -> list[str]:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    lines = [line for line in lines if line and not (line.startswith("#") and not line.startswith("#EXT"))]
    if url is not None and (not lines or lines[0] != "#EXTM3U"):
        raise InvalidMedia(f"{url} is not an HLS playlist (no #EXTM3U header)")
    return lines[1:] if url is not None else lines


def _resolve(base: str, uri: str) -> str:
    resolved = urljoin(base, uri.strip())
    if urlsplit(resolved).scheme not in ("http", "https"):
        raise InvalidMedia(f"{base}: HLS URI {uri[:80]!r} is not http(s)")
    return resolved


def _refuse_key(attributes: dict[str, str], url: str) -> None:
    method = attributes.get("METHOD", "").upper()
    if method != "NONE":
        raise InvalidMedia(f"{url} is encrypted HLS (METHOD={method or '?'}); encrypted media cannot be archived")


def _duration(value: str, url: str) -> float:
    try:
        duration = float(value.strip())
    except ValueError:
        raise InvalidMedia(f"{url}: bad HLS duration {value[:40]!r}") from None
    if not 0 <= duration < 86_400:
        raise InvalidMedia(f"{url}: bad HLS duration {value[:40]!r}")
    return duration


def _byte_range(value: str, url: str) -> tuple[int, int | None]:
    """``length[@start]``."""
    length_s, at, start_s = value.strip().partition("@")
    try:
        length = int(length_s)
        start = int(start_s) if at else None
    except ValueError:
        raise InvalidMedia(f"{url}: bad HLS byte range {value[:40]!r}") from None
    if length <= 0 or (start is not None and start < 0):
        raise InvalidMedia(f"{url}: bad HLS byte range {value[:40]!r}")
    return length, start


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _variant(attributes: dict[str, str], uri: str) -> Variant:
    bandwidth = _int(attributes.get("BANDWIDTH"))
    if bandwidth is None or bandwidth < 0:
        raise InvalidMedia(f"variant {uri} has no valid BANDWIDTH")
    width = height = None
    resolution = attributes.get("RESOLUTION")
    if resolution:
        w, x, h = resolution.lower().partition("x")
        width, height = _int(w), _int(h)
        if not x or width is None or height is None or width <= 0 or height <= 0:
            raise InvalidMedia(f"variant {uri} has a bad RESOLUTION {resolution[:40]!r}")
    frame_rate = None
    if "FRAME-RATE" in attributes:
        try:
            frame_rate = float(attributes["FRAME-RATE"])
        except ValueError:
            frame_rate = None
    codecs = tuple(c.strip() for c in attributes.get("CODECS", "").split(",") if c.strip())
    return Variant(
        uri=uri,
        bandwidth=bandwidth,
        average_bandwidth=_int(attributes.get("AVERAGE-BANDWIDTH")),
        width=width,
        height=height,
        codecs=codecs,
        frame_rate=frame_rate,
        audio=attributes.get("AUDIO"),
    )


def _rendition(attributes: dict[str, str], url: str) -> Rendition:
    kind, group = attributes.get("TYPE"), attributes.get("GROUP-ID")
    if not kind or group is None:
        raise InvalidMedia(f"{url}: #EXT-X-MEDIA without TYPE or GROUP-ID")
    uri = attributes.get("URI")
    return Rendition(
        type=kind.upper(),
        group_id=group,
        name=attributes.get("NAME", ""),
        uri=_resolve(url, uri) if uri else None,
        default=attributes.get("DEFAULT", "NO").upper() == "YES",
        autoselect=attributes.get("AUTOSELECT", "NO").upper() == "YES",
        language=attributes.get("LANGUAGE"),
        channels=attributes.get("CHANNELS"),
    )


def _codec_is(codec: str, prefixes: tuple[str, ...]) -> bool:
    return codec.split(".")[0] in prefixes
