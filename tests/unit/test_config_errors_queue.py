"""Settings from the environment, the error taxonomy, and the job message schema."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

import mediavault.errors as errors_module
from mediavault.config import ConfigError, Settings, get_settings, load_settings, reset_settings
from mediavault.errors import MediaVaultError, as_media_vault_error
from mediavault.queue import JobMessage, parse_body

pytestmark = pytest.mark.unit


# --- config ------------------------------------------------------------------------------------


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("MEDIAVAULT_TABLE", "jobs")
    monkeypatch.setenv("MEDIAVAULT_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/jobs")
    monkeypatch.setenv("MEDIAVAULT_BUCKET", "media")
    return monkeypatch


def test_settings_are_read_from_the_environment(configured: pytest.MonkeyPatch) -> None:
    configured.setenv("MEDIAVAULT_MAX_ATTEMPTS", "3")
    settings = load_settings()
    assert (settings.table, settings.bucket, settings.max_attempts) == ("jobs", "media", 3)
    assert settings.egress_allow == frozenset()
    assert settings.min_media_bytes == 10 * 1024


def test_a_missing_variable_is_named(configured: pytest.MonkeyPatch) -> None:
    configured.delenv("MEDIAVAULT_TABLE")
    with pytest.raises(ConfigError, match="MEDIAVAULT_TABLE is not set"):
        load_settings()


def test_a_malformed_variable_is_named(configured: pytest.MonkeyPatch) -> None:
    configured.setenv("MEDIAVAULT_MAX_ATTEMPTS", "five")
    with pytest.raises(ConfigError, match="MEDIAVAULT_MAX_ATTEMPTS is invalid"):
        load_settings()


def test_egress_allow_is_a_comma_separated_set_of_host_port(configured: pytest.MonkeyPatch) -> None:
    configured.setenv("MEDIAVAULT_EGRESS_ALLOW", "127.0.0.1:8123, LocalHost:9 ,,")
    assert load_settings().egress_allow == frozenset({"127.0.0.1:8123", "localhost:9"})


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1:http", ":8123"])
def test_egress_allow_items_need_host_and_port(configured: pytest.MonkeyPatch, value: str) -> None:
    configured.setenv("MEDIAVAULT_EGRESS_ALLOW", f"127.0.0.1:8123,{value}")
    with pytest.raises(ConfigError, match="MEDIAVAULT_EGRESS_ALLOW"):
        load_settings()


def test_settings_are_cached_until_reset(configured: pytest.MonkeyPatch) -> None:
    first = get_settings()
    configured.setenv("MEDIAVAULT_TABLE", "other")
    assert get_settings() is first
    reset_settings()
    assert get_settings().table == "other"


# --- errors ------------------------------------------------------------------------------------


def all_error_classes() -> list[type[MediaVaultError]]:
    found: list[type[MediaVaultError]] = []
    pending = [MediaVaultError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__ == errors_module.__name__:
                found.append(sub)
                pending.append(sub)
    return found


def test_every_error_class_has_its_own_stable_code() -> None:
    classes = all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(classes) >= 20
    assert len(codes) == len(set(codes)), sorted(codes)
    assert all(code.isupper() and " " not in code for code in codes)


@pytest.mark.parametrize(
    ("name", "code", "retryable", "status"),
    [
        ("InvalidRequest", "INVALID_REQUEST", False, 400),
        ("InvalidUrl", "INVALID_URL", False, 400),
        ("PayloadTooLarge", "PAYLOAD_TOO_LARGE", False, 413),
        ("EgressBlocked", "EGRESS_BLOCKED", False, 400),
        ("JobNotFound", "JOB_NOT_FOUND", False, 404),
        ("JobConflict", "JOB_CONFLICT", False, 409),
        ("LeaseLost", "LEASE_LOST", False, 500),
        ("DeadlineReached", "DEADLINE_REACHED", True, 500),
        ("NoMedia", "NO_MEDIA", False, 500),
        ("InvalidMedia", "INVALID_MEDIA", False, 500),
        ("UpstreamUnavailable", "UPSTREAM_UNAVAILABLE", True, 500),
        ("BrowserError", "BROWSER_ERROR", True, 500),
        ("StorageUnavailable", "STORAGE_UNAVAILABLE", True, 503),
        ("InternalError", "INTERNAL_ERROR", True, 500),
    ],
)
def test_error_codes_retryability_and_http_status(name: str, code: str, retryable: bool, status: int) -> None:
    cls = getattr(errors_module, name)
    assert (cls.code, cls.retryable, cls.http_status) == (code, retryable, status)


def test_an_error_without_message_uses_its_description() -> None:
    error = errors_module.NoMedia()
    assert error.message == "No video, GIF or photo was found in the post."
    assert error.to_dict() == {"code": "NO_MEDIA", "message": error.message, "retryable": False}


def test_unknown_exceptions_become_retryable_internal_errors() -> None:
    # Given an exception from outside the taxonomy
    cause = KeyError("boom")
    # When wrapped
    wrapped = as_media_vault_error(cause)
    # Then it is an internal, retryable error that keeps its cause
    assert (wrapped.code, wrapped.retryable) == ("INTERNAL_ERROR", True)
    assert "KeyError" in wrapped.message
    assert wrapped.__cause__ is cause


def test_taxonomy_errors_pass_through_unchanged() -> None:
    error = errors_module.NoMedia("nothing here")
    assert as_media_vault_error(error) is error


# --- queue message -----------------------------------------------------------------------------


def test_a_url_alone_is_a_complete_message() -> None:
    message = parse_body('{"url": "https://site.example/p/1"}')
    assert (message.url, message.job_id, message.force, message.tenant_id) == (
        "https://site.example/p/1",
        None,
        False,
        None,
    )


def test_camel_case_aliases_are_read_and_unknown_keys_ignored() -> None:
    body = json.dumps(
        {"url": "https://x/p", "jobId": "j-1", "tenantId": "t-1", "correlationId": "c-1", "force": True, "extra": 1}
    )
    message = parse_body(body)
    assert (message.job_id, message.tenant_id, message.correlation_id, message.force) == ("j-1", "t-1", "c-1", True)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '["https://x/p"]',
        '"https://x/p"',
        "{}",
        '{"url": 42}',
        '{"url": ""}',
        '{"url": "https://x/p", "force": "yes"}',
        '{"url": "https://x/p", "jobId": 7}',
    ],
)
def test_anything_else_is_refused(body: str) -> None:
    with pytest.raises((ValueError, ValidationError)):
        parse_body(body)


def test_body_round_trips_in_camel_case_without_nulls() -> None:
    # Given a message naming a job but no tenant
    message = JobMessage(url="https://x/p", jobId="j-1", correlationId="c-1")
    # When serialised
    body = message.body()
    # Then it is camelCase, has no nulls, and parses back to the same message
    data = json.loads(body)
    assert data == {"url": "https://x/p", "jobId": "j-1", "force": False, "correlationId": "c-1"}
    assert parse_body(body) == message


def test_settings_for_tests_need_only_the_three_required_values() -> None:
    settings = Settings(table="t", queue_url="q", bucket="b")
    assert (settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds) == (5, 30, 900)
