"""The error taxonomy: every failure has a stable code and says whether a retry can help.

The API maps these to HTTP once (``http_status``); the worker maps them to retry or fail once
(``retryable``). Adapters translate library errors into them with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MediaVaultError(Exception):
    """Base error: ``code`` is stable (scripts rely on it), ``message`` is for people."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    retryable: ClassVar[bool] = False
    http_status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.__doc__ or self.code
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


# --- input (API and message validation) --------------------------------------------------------


class InvalidRequest(MediaVaultError):
    """The request is malformed."""

    code = "INVALID_REQUEST"
    http_status = 400


class InvalidUrl(InvalidRequest):
    """The URL is not an http(s) URL that can be archived."""

    code = "INVALID_URL"


class PayloadTooLarge(InvalidRequest):
    """The request body is too large."""

    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(InvalidRequest):
    """The request body is not JSON."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class EgressBlocked(MediaVaultError):
    """The address may not be fetched (private, loopback, link-local or otherwise not public)."""

    code = "EGRESS_BLOCKED"
    http_status = 400


# --- jobs ----------------------------------------------------------------------------------------


class JobNotFound(MediaVaultError):
    """No such job."""

    code = "JOB_NOT_FOUND"
    http_status = 404


class JobConflict(MediaVaultError):
    """The job is not in a state that allows this operation."""

    code = "JOB_CONFLICT"
    http_status = 409


class LeaseLost(MediaVaultError):
    """Another worker took the job over; this worker's writes are refused."""

    code = "LEASE_LOST"


class DeadlineReached(MediaVaultError):
    """The invocation is about to time out; the job is released for another attempt."""

    code = "DEADLINE_REACHED"
    retryable = True


class AttemptsExhausted(MediaVaultError):
    """Every attempt failed."""

    code = "ATTEMPTS_EXHAUSTED"


class RecoveredFromRestart(MediaVaultError):
    """The worker stopped mid-job and no attempts are left."""

    code = "RECOVERED_FROM_RESTART"


class DeadLettered(MediaVaultError):
    """The job's message was moved to the dead-letter queue after repeated failures."""

    code = "DEAD_LETTERED"


class MalformedMessage(MediaVaultError):
    """The queue message is not a job message."""

    code = "MALFORMED_MESSAGE"


# --- extraction and download --------------------------------------------------------------------


class PostNotFound(MediaVaultError):
    """The post does not exist (404) or is gone (410)."""

    code = "POST_NOT_FOUND"


class PostUnavailable(MediaVaultError):
    """The post exists but its media cannot be read."""

    code = "POST_UNAVAILABLE"


class PostPrivate(PostUnavailable):
    """The post is protected: only its author's approved followers can see it."""

    code = "POST_PRIVATE"


class LoginRequired(PostUnavailable):
    """The platform shows the post only to a logged-in viewer (sensitive content, age check):
    configure login cookies for the tenant."""

    code = "LOGIN_REQUIRED"


class NoMedia(MediaVaultError):
    """No video, GIF or photo was found in the post."""

    code = "NO_MEDIA"


class InvalidMedia(MediaVaultError):
    """The downloaded body is not media (an HTML page, empty, too small or of the wrong type)."""

    code = "INVALID_MEDIA"


class MediaTooLarge(MediaVaultError):
    """The media is larger than the configured limit."""

    code = "MEDIA_TOO_LARGE"


class UpstreamUnavailable(MediaVaultError):
    """The site answered with a server error or did not answer in time."""

    code = "UPSTREAM_UNAVAILABLE"
    retryable = True


class BrowserError(MediaVaultError):
    """The headless browser failed."""

    code = "BROWSER_ERROR"
    retryable = True


class StorageUnavailable(MediaVaultError):
    """S3 or DynamoDB could not be reached or throttled the request."""

    code = "STORAGE_UNAVAILABLE"
    retryable = True
    http_status = 503


def as_media_vault_error(exc: BaseException) -> MediaVaultError:
    """Any exception as a taxonomy error (unknown ones are internal and retryable)."""
    if isinstance(exc, MediaVaultError):
        return exc
    error = InternalError(f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


class InternalError(MediaVaultError):
    """An unexpected failure; retried in case it was transient."""

    code = "INTERNAL_ERROR"
    retryable = True


class ReleasedAtShutdown(MediaVaultError):
    """The worker was stopped mid-job; the job was given back for another attempt."""

    code = "RELEASED_AT_SHUTDOWN"
    retryable = True
