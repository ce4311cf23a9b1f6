"""Lazily built, cached boto3 clients: created on first use (never at import), reused while warm.

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at the local stack.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mediavault.errors import StorageUnavailable

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=16,
)


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@functools.cache
def client(service: str) -> Any:
    """A cached low-level client for ``service`` (``s3``, ``sqs``, ``dynamodb``...)."""
    config = _CONFIG
    if service == "s3":
        # Presigned links must name the bucket region's endpoint.
        config = _CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    return _session().client(service, config=config)  # type: ignore[call-overload]


@functools.cache
def dynamodb_table(name: str) -> Any:
    """A cached DynamoDB ``Table`` resource (it converts numbers and types for us)."""
    return _session().resource("dynamodb", config=_CONFIG).Table(name)


def reset_clients() -> None:
    """Forget every cached client (tests, and processes whose endpoint changed)."""
    _session.cache_clear()
    client.cache_clear()
    dynamodb_table.cache_clear()


_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "SlowDown",
    "InternalServerError",
    "ServiceUnavailable",
}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def unavailable(service: str, exc: ClientError | BotoCoreError) -> StorageUnavailable:
    """A boto3 failure as the taxonomy's retryable ``STORAGE_UNAVAILABLE`` (callers ``raise ... from exc``)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        return StorageUnavailable(f"{service} request failed ({'throttled' if code in _THROTTLED else code})")
    return StorageUnavailable(f"{service} unreachable ({type(exc).__name__})")


def call(service: str, method: Any, **kwargs: Any) -> Any:
    """``method(**kwargs)`` with boto3's errors translated by :func:`unavailable`."""
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise unavailable(service, exc) from exc
