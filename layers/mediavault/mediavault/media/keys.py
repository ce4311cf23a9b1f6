"""Deterministic S3 keys: the same job always writes to the same place."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slugify(*parts: str | None, fallback: str = "unknown") -> str:
    """``("x", "@Some_User")`` -> ``x-some-user``: lower-case ASCII, digits and single dashes."""
    text = "-".join(p for p in parts if p)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = _UNSAFE.sub("-", ascii_text).strip("-")[:80].strip("-")
    return slug or fallback


def media_key(slug: str, job_id: str, ext: str, *, index: int | None = None) -> str:
    suffix = f"-{index}" if index is not None else ""
    return f"downloads/{slug}/{job_id}{suffix}.{ext}"


def thumbnail_key(slug: str, job_id: str, ext: str, *, index: int | None = None) -> str:
    suffix = f"-{index}" if index is not None else ""
    return f"downloads/{slug}/thumbnails/{job_id}{suffix}.{ext}"


def info_key(slug: str, job_id: str) -> str:
    return f"downloads/{slug}/{job_id}.info.json"
