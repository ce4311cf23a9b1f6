"""Media candidates found in a post, and how the best one is chosen."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Where a candidate came from, most trustworthy first: structured data the page's own player read,
# then what the markup declares, then any media response seen on the network.
SOURCE_PRIORITY = {
    "platform": 0,
    "network-json": 0,
    "jsonld": 1,
    "video-tag": 2,
    "og:video": 3,
    "twitter:player:stream": 4,
    "network": 5,
    "og:image": 6,
}
_KIND_PRIORITY = {"video": 0, "gif": 1, "photo": 2}
_STREAMING_TYPES = ("mpegurl", "dash+xml")
_STREAMING_SUFFIXES = (".m3u8", ".mpd")


class Candidate(BaseModel):
    """One way to download one media item."""

    url: str
    kind: str = "video"  # video | gif | photo
    source: str = "network"
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    bitrate: int | None = None
    duration: float | None = Field(default=None, description="seconds")
    poster: str | None = None
    item: int = Field(default=0, description="which media item of the post this is a variant of")
    preference: int = Field(
        default=0,
        description="ranks variants the platform names without figures "
        "(photo sizes: orig > 4096x4096 > large); compared before bitrate",
    )
    quoted: bool = Field(default=False, description="media of the quoted post, archived only on request")

    @property
    def is_streaming_manifest(self) -> bool:
        ctype = (self.content_type or "").lower()
        path = self.url.split("?", 1)[0].lower()
        return any(t in ctype for t in _STREAMING_TYPES) or path.endswith(_STREAMING_SUFFIXES)

    def quality(self) -> tuple[int, int, int, int]:
        """Higher is better: the platform's preference, bitrate, then pixels, then source trust."""
        pixels = (self.width or 0) * (self.height or 0)
        return (self.preference, self.bitrate or 0, pixels, -SOURCE_PRIORITY.get(self.source, 9))


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Downloadable candidates, best first: videos before GIFs before photos, then by quality.

    Streaming manifests (HLS/DASH) are left out: they are not files to copy. A page's preview image
    (``og:image``) is a candidate only when the post has no video or GIF. Duplicates (same URL) keep
    their best-described copy.
    """
    moving = any(c.kind in ("video", "gif") and not c.is_streaming_manifest for c in candidates)
    best: dict[str, Candidate] = {}
    for cand in candidates:
        if moving and cand.source == "og:image":
            continue
        if cand.is_streaming_manifest or not cand.url.startswith(("http://", "https://")):
            continue
        seen = best.get(cand.url)
        if seen is None or _described(cand) > _described(seen):
            best[cand.url] = cand
    return sorted(
        best.values(),
        key=lambda c: (_KIND_PRIORITY.get(c.kind, 3), tuple(-x for x in c.quality())),
    )


def _described(cand: Candidate) -> tuple[int, int]:
    known = sum(v is not None for v in (cand.width, cand.height, cand.bitrate, cand.content_type))
    return (known, -SOURCE_PRIORITY.get(cand.source, 9))
