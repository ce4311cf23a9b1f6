"""What an extractor learns about a post."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mediavault.media.candidates import Candidate


class PostInfo(BaseModel):
    """Everything known about a post: its media candidates and its metadata."""

    url: str
    platform: str = "generic"
    post_id: str | None = None
    title: str | None = None
    caption: str | None = None
    author_handle: str | None = None
    author_name: str | None = None
    author_id: str | None = None
    posted_at: str | None = None
    site_name: str | None = None
    thumbnail_url: str | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="likes, reposts, replies, quotes, views...")
    sensitive: bool | None = None
    quoted_post_id: str | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)

    def merge(self, other: PostInfo) -> PostInfo:
        """Fill what this one does not know from ``other``; candidates are pooled."""
        data = self.model_dump()
        for name, value in other.model_dump().items():
            if name == "candidates":
                continue
            if data.get(name) in (None, "", {}) and value not in (None, ""):
                data[name] = value
        data["candidates"] = [*self.candidates, *other.candidates]
        return PostInfo.model_validate(data)
