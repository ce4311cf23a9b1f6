"""Deterministic S3 keys: the same job always writes to the same place, under its tenant.

``tenants/<tenantId>/downloads/<accountSlug>/<jobId>.<ext>``, the thumbnail under ``thumbnails/`` beside
it, ``<jobId>.info.json`` next to the media. One prefix per tenant, so a tenant's objects can be listed,
exported, replicated or given a lifecycle rule of their own.
"""

from __future__ import annotations

import re
import unicodedata

from mediavault.tenants import check_tenant_id

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slugify(*parts: str | None, fallback: str = "unknown") -> str:
    """``("x", "@Some_User")`` -> ``x-some-user``: lower-case ASCII, digits and single dashes."""
    text = "-".join(p for p in parts if p)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = _UNSAFE.sub("-", ascii_text).strip("-")[:80].strip("-")
    return slug or fallback


def tenant_prefix(tenant_id: str) -> str:
    """``tenants/<tenantId>/``; refuses a tenant id that could escape its prefix."""
    return f"tenants/{check_tenant_id(tenant_id)}/"


def media_key(tenant_id: str, slug: str, job_id: str, ext: str, *, index: int | None = None) -> str:
    suffix = f"-{index}" if index is not None else ""
    return f"{tenant_prefix(tenant_id)}downloads/{slug}/{job_id}{suffix}.{ext}"


def thumbnail_key(tenant_id: str, slug: str, job_id: str, ext: str, *, index: int | None = None) -> str:
    suffix = f"-{index}" if index is not None else ""
    return f"{tenant_prefix(tenant_id)}downloads/{slug}/thumbnails/{job_id}{suffix}.{ext}"


def info_key(tenant_id: str, slug: str, job_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}downloads/{slug}/{job_id}.info.json"
