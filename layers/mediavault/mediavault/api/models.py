"""Request and response models of the HTTP API (they also make its OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

MAX_BODY_BYTES = 16 * 1024


class CreateJobRequest(BaseModel):
    """``POST /jobs``: the post to archive."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Field(min_length=1, max_length=4096, description="http(s) URL of the post")
    force: StrictBool = Field(default=False, description="archive again even if this post was archived")


class ErrorBody(BaseModel):
    code: str
    message: str
    retryable: bool = False
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
