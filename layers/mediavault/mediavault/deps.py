"""Collaborators built from settings, once per warm process (zip functions: no Playwright here)."""

from __future__ import annotations

import functools

from mediavault import aws
from mediavault.clock import SystemClock
from mediavault.config import Settings, get_settings
from mediavault.health import CloudWatchQueueAge
from mediavault.heartbeat import DynamoHeartbeatStore, Heartbeat
from mediavault.jobs.repository import DynamoJobRepository
from mediavault.platforms import Platforms
from mediavault.queue import JobQueue
from mediavault.safety.egress import EgressPolicy
from mediavault.storage import S3MediaStore


@functools.cache
def settings() -> Settings:
    return get_settings()


def repository() -> DynamoJobRepository:
    return DynamoJobRepository(aws.dynamodb_table(settings().table))


def queue() -> JobQueue:
    return JobQueue(aws.client("sqs"), settings().queue_url)


def dead_letter_queue() -> JobQueue | None:
    url = settings().dlq_url
    return JobQueue(aws.client("sqs"), url) if url else None


def media_store() -> S3MediaStore:
    return S3MediaStore(aws.client("s3"), settings().bucket, part_size=settings().part_size_bytes)


def heartbeats() -> DynamoHeartbeatStore:
    return DynamoHeartbeatStore(aws.dynamodb_table(settings().table))


def heartbeat(component: str) -> Heartbeat:
    """A heartbeat for ``component`` at the configured period (use as a context manager)."""
    return Heartbeat(heartbeats(), component, every=settings().heartbeat_seconds, clock=clock)


@functools.cache
def platforms() -> Platforms:
    """The platform registry with this deployment's extra hosts and JSON endpoints."""
    return Platforms(hosts=settings().platform_hosts, api=settings().platform_api)


def queue_age() -> CloudWatchQueueAge:
    """The jobs queue's ``ApproximateAgeOfOldestMessage`` from CloudWatch (``GET /health``)."""
    return CloudWatchQueueAge(aws.client("cloudwatch"), settings().queue_url)


def egress_policy() -> EgressPolicy:
    return EgressPolicy(allow=settings().egress_allow)


clock = SystemClock()


def reset() -> None:
    """Forget settings and clients (tests; the local stack after it configured the environment)."""
    from mediavault.config import reset_settings

    settings.cache_clear()
    platforms.cache_clear()
    reset_settings()
    aws.reset_clients()
