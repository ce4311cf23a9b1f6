"""What a body really is, from its first bytes: media types are trusted only when the bytes agree."""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_BYTES = 64


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: str  # video | gif | photo
    ext: str
    content_type: str


_HTML_MARKERS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<script", b"<div", b"<title", b"{", b"[")


def sniff(head: bytes) -> Sniffed | None:
    """The media type ``head`` (at least the first 12 bytes) proves, or ``None``."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return Sniffed("video", "mov", "video/quicktime")
        if brand in (b"avif", b"avis"):
            return Sniffed("photo", "avif", "image/avif")
        if brand in (b"heic", b"heix", b"mif1"):
            return Sniffed("photo", "heic", "image/heic")
        if brand.startswith(b"M4A"):
            return Sniffed("audio", "m4a", "audio/mp4")
        return Sniffed("video", "mp4", "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", "webm", "video/webm")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("gif", "gif", "image/gif")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("photo", "jpg", "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("photo", "png", "image/png")
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("photo", "webp", "image/webp")
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return Sniffed("video", "ts", "video/mp2t")
    return None


def looks_like_text(head: bytes, content_type: str | None = None) -> bool:
    """An HTML/JSON/XML page (what CDNs serve as errors, often labelled ``video/mp4``)."""
    if content_type and content_type.split(";")[0].strip().lower() in (
        "text/html", "application/json", "text/plain", "application/xml", "text/xml",
    ):  # fmt: skip
        return True
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return stripped.startswith(_HTML_MARKERS)
