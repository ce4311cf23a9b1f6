"""Which platform a URL belongs to, and parsing of what its pages and JSON say (pure, no browser)."""

from __future__ import annotations

from mediavault.platforms.base import PostInfo

__all__ = ["PostInfo", "detect_platform"]


def detect_platform(url: str) -> str:
    """The platform that serves ``url``; every page that is not a known platform is ``generic``."""
    return "generic"
