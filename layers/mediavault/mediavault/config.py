"""One typed settings object, read from the environment once.

Nothing else in the code base reads ``os.environ``: functions call :func:`get_settings`, tests
call :func:`reset_settings` after changing the environment. A missing or malformed variable fails
at start with a sentence that names it.
"""

from __future__ import annotations

import functools
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Environment variable names, as template.yaml and the local stack set them.
ENV_TABLE = "MEDIAVAULT_TABLE"
ENV_QUEUE_URL = "MEDIAVAULT_QUEUE_URL"
ENV_DLQ_URL = "MEDIAVAULT_DLQ_URL"
ENV_BUCKET = "MEDIAVAULT_BUCKET"
ENV_EGRESS_ALLOW = "MEDIAVAULT_EGRESS_ALLOW"
ENV_CHROMIUM_PATH = "MEDIAVAULT_CHROMIUM_PATH"


class ConfigError(RuntimeError):
    """The environment does not describe a usable deployment."""


class Settings(BaseSettings):
    """Everything the functions need to know about their deployment."""

    model_config = SettingsConfigDict(env_prefix="MEDIAVAULT_", extra="ignore", frozen=True)

    table: str = Field(description="DynamoDB jobs table name")
    queue_url: str = Field(description="SQS jobs queue URL")
    dlq_url: str | None = Field(default=None, description="SQS dead-letter queue URL")
    bucket: str = Field(description="S3 media bucket name")

    max_attempts: int = Field(default=5, ge=1, le=50)
    lease_seconds: int = Field(default=960, ge=10, description="claim lease; > function timeout + margin")
    deadline_margin_seconds: int = Field(default=30, ge=1, description="stop this long before the timeout")
    retry_base_seconds: int = Field(default=30, ge=0, description="first SQS retry delay, doubled each attempt")
    retry_max_seconds: int = Field(default=900, ge=0)

    min_media_bytes: int = Field(default=10 * 1024, ge=1, description="smaller bodies are not media")
    max_media_bytes: int = Field(default=5 * 1024**3, ge=1)
    part_size_bytes: int = Field(default=8 * 1024**2, ge=5 * 1024**2, description="S3 multipart part size")
    fetch_timeout_seconds: float = Field(default=30.0, gt=0, description="per network operation of a fetch")
    fetch_max_seconds: float = Field(
        default=600.0, gt=0, description="total time of one fetch (each redirect hop; browser connections too)"
    )
    page_timeout_seconds: float = Field(default=30.0, gt=0)
    page_settle_seconds: float = Field(default=2.5, ge=0, description="wait for media after DOM ready")

    chromium_path: str | None = Field(default=None, description="use this Chromium instead of Playwright's")
    egress_allow: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), description="host:port pairs that may be fetched although private (local only)"
    )

    platform_hosts: Annotated[dict[str, frozenset[str]], NoDecode] = Field(
        default_factory=dict,
        description="extra hosts a platform answers to: x=127.0.0.1:8123,x=mirror.example,bluesky=...",
    )
    platform_api: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="base URL of a platform's JSON endpoint: x=http://127.0.0.1:8123,bluesky=https://...",
    )
    include_quoted: bool = Field(default=False, description="also archive the media of a quoted post")

    heartbeat_seconds: float = Field(default=30.0, gt=0, description="worker heartbeat period while it works")
    heartbeat_stale_seconds: float = Field(default=120.0, gt=0, description="older with work pending: unhealthy")
    recovery_stale_seconds: float = Field(default=600.0, gt=0, description="no recovery run for this long: unhealthy")
    oldest_message_max_seconds: float = Field(
        default=1800.0, gt=0, description="oldest job message older than this: unhealthy (template alarm threshold)"
    )
    cookies_secret_prefix: str | None = Field(
        default=None, description="Secrets Manager name prefix of per-tenant login cookies (<prefix><tenantId>)"
    )
    cookies_file: str | None = Field(default=None, description="local runs: a file of login cookies instead")
    presign_seconds: int = Field(default=3600, ge=1, le=3600)
    # Same rule as mediavault.tenants.TENANT_ID_PATTERN (a unit test keeps them equal).
    default_tenant: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="tenant of key-less requests and of queue messages without tenantId",
    )
    recovery_grace_seconds: int = Field(default=3600, ge=0)
    queued_stale_seconds: int = Field(default=900, ge=0, description="queued this long unclaimed: resend")

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_allow(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(item.strip().lower() for item in value.split(",") if item.strip())
        return value

    @field_validator("platform_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        hosts: dict[str, set[str]] = {}
        for name, host in _pairs(value, "MEDIAVAULT_PLATFORM_HOSTS"):
            hosts.setdefault(name, set()).add(host.lower())
        return {name: frozenset(items) for name, items in hosts.items()}

    @field_validator("platform_api", mode="before")
    @classmethod
    def _split_api(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        bases = dict(_pairs(value, "MEDIAVAULT_PLATFORM_API"))
        for name, base in bases.items():
            if not base.startswith(("http://", "https://")):
                raise ValueError(f"{name}={base!r}: the base URL must start with http:// or https://")
        return {name: base.rstrip("/") for name, base in bases.items()}

    @field_validator("egress_allow")
    @classmethod
    def _check_allow(cls, value: frozenset[str]) -> frozenset[str]:
        for item in value:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{item!r} is not host:port")
        return value


def _pairs(value: str, variable: str) -> list[tuple[str, str]]:
    """``a=1,b=2,a=3`` -> ``[("a", "1"), ("b", "2"), ("a", "3")]``; platform names lower-cased."""
    pairs = []
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ValueError(f"{item.strip()!r} is not platform=value")
        pairs.append((name.strip().lower(), target.strip()))
    return pairs


def load_settings() -> Settings:
    """Build settings from the process environment, failing with a message that names the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "MEDIAVAULT_" + str(err["loc"][0]).upper() if err["loc"] else "environment"
            reason = "is not set" if err["type"] == "missing" else f"is invalid: {err['msg']}"
            problems.append(f"{name} {reason}")
        raise ConfigError("Media Vault is not configured: " + "; ".join(problems)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests, and the local stack after it sets the environment)."""
    get_settings.cache_clear()
