"""Tenants: who owns a job, and the one rule for turning an API key into a tenant id.

The tenant *is* the API key: API Gateway checks the ``x-api-key`` header against the keys attached to a
usage plan and puts the key's id into ``requestContext.identity.apiKeyId``. The tenant id is that key
id, as it is (API Gateway key ids are ten lower-case letters and digits), so an operator can read it
straight off ``aws apigateway get-api-keys``. A key id that is not safe to use in S3 keys and
DynamoDB values (never seen on AWS) is mapped to ``key-<sha256 prefix>`` instead: stable, and never
the id of another key.

A request that reaches a key-required route without a key id (a direct invoke, a test event) and a
queue message without ``tenantId`` belong to the deployment's default tenant
(``MEDIAVAULT_DEFAULT_TENANT``, ``default`` unless set).

Tenant ids appear in S3 keys (``tenants/<tenantId>/...``), so every tenant id that is stored has been
checked against :data:`TENANT_ID_PATTERN`.
"""

from __future__ import annotations

import hashlib
import re

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_TENANT_ID = re.compile(TENANT_ID_PATTERN)
TENANT_ID_RULE = "1-64 letters, digits, '-' or '_', starting with a letter or digit"


def is_tenant_id(value: object) -> bool:
    return isinstance(value, str) and _TENANT_ID.fullmatch(value) is not None


def check_tenant_id(value: str) -> str:
    """``value`` if it is a usable tenant id, else ``ValueError`` naming the rule."""
    if not is_tenant_id(value):
        raise ValueError(f"tenant id {value[:80]!r} is not {TENANT_ID_RULE}")
    return value


def tenant_for_api_key(api_key_id: str | None, *, default: str) -> str:
    """The tenant of a request: its API key id, or ``default`` when the request carried none."""
    if not api_key_id:
        return default
    if is_tenant_id(api_key_id):
        return api_key_id
    return "key-" + hashlib.sha256(api_key_id.encode()).hexdigest()[:32]
