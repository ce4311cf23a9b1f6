"""The OpenAPI document's parts the resolver does not generate: the API key scheme, the error responses
each route really answers, the server prefix, and error messages that say what to fix."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from mediavault.api.models import (
    CURSOR_PATTERN,
    JOB_ID_RULE,
    MAX_BODY_BYTES,
    ErrorResponse,
    GatewayError,
    TooLarge,
)

API_KEY_SCHEME = "apiKey"
SECURITY_SCHEMES = {
    API_KEY_SCHEME: APIKey(
        name="x-api-key",
        in_=APIKeyIn.header,
        description="The API key of your usage plan; it is also your tenant: you see only your own jobs.",
    )
}
KEY_REQUIRED: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}]
DOCUMENT_RESPONSE: dict[int, Any] = {
    200: {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}
}

_ERRORS: dict[int, tuple[str, type]] = {
    400: ("INVALID_REQUEST, INVALID_URL or EGRESS_BLOCKED: the message says what to fix", ErrorResponse),
    403: ("API Gateway: no or wrong x-api-key", GatewayError),
    404: ("JOB_NOT_FOUND: no job with this id for your API key", ErrorResponse),
    409: ("JOB_CONFLICT: the job's status does not allow this", ErrorResponse),
    413: (f"PAYLOAD_TOO_LARGE: the body is over {MAX_BODY_BYTES} bytes (API Gateway: over 10 MB)", TooLarge),
    415: ("UNSUPPORTED_MEDIA_TYPE: the body is not application/json", ErrorResponse),
    429: ("API Gateway: throttle or quota of your usage plan reached", GatewayError),
    503: ("STORAGE_UNAVAILABLE: DynamoDB, SQS or S3 did not answer; retry later", ErrorResponse),
}


def responses(ok: Mapping[int, tuple[str, type]], *errors: int) -> dict[int, dict[str, Any]]:
    """A route's ``responses``: its successes and the error statuses it can answer, each with its model."""
    listed = {**ok, **{status: _ERRORS[status] for status in errors if status not in ok}}
    return {
        status: {"description": description, "content": {"application/json": {"model": model}}}
        for status, (description, model) in sorted(listed.items())
    }


def base_path(request_path: str | None, resource_path: str) -> str:
    """The prefix clients put before the routes: the stage (``/v1``) on an execute-api URL, the base path
    mapping on a custom domain, nothing when called directly."""
    if request_path and resource_path and request_path.endswith(resource_path):
        return request_path[: len(request_path) - len(resource_path)].rstrip("/") or "/"
    return "/"


def finish(document: dict[str, Any], *, base_path: str) -> dict[str, Any]:
    """The resolver's document, made true to the wire: no 422 (validation errors answer 400 here) and
    the server prefix the document was fetched under."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    # The resolver's own error schemas, left without a use once its 422s are gone.
    schemas = document.get("components", {}).get("schemas", {})
    generated = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
    kept = {k: v for k, v in schemas.items() if k not in generated}
    text = json.dumps({**document, "components": {**document.get("components", {}), "schemas": kept}})
    if not any(f"#/components/schemas/{name}" in text for name in generated):
        for name in generated:
            schemas.pop(name, None)
    document["servers"] = [{"url": base_path}]
    return document


# --- validation errors, in words that say what to fix ---------------------------------------------

_FIELD_HINTS = {
    ("path", "jobId"): f"must be {JOB_ID_RULE}",
    ("query", "cursor"): f"must be the nextCursor of a previous page ({CURSOR_PATTERN})",
}


def validation_problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The resolver's validation errors as ``[{"field", "problem"}]``, e.g. ``url``: ``Field required``."""
    details = []
    for err in errors:
        loc = tuple(str(p) for p in err.get("loc", ()))
        where, names = (loc[0], loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else ("body", loc)
        field = ".".join(names)
        kind = str(err.get("type", ""))
        problem = _FIELD_HINTS.get((where, field)) if kind.startswith("string_pattern") else None
        if problem is None:
            problem = _problem(kind, str(err.get("msg", "")), where, field)
        label = field if where == "body" else f"{where} parameter {field}"
        details.append({"field": label or "body", "problem": problem})
    return details


def _problem(kind: str, message: str, where: str, field: str) -> str:
    if where == "body" and not field and kind in ("missing", "model_attributes_type", "dict_type"):
        return 'send a JSON object like {"url": "https://..."}'
    if kind == "extra_forbidden":
        return "unknown field; the body takes url and force"
    if kind == "missing" and where == "body":
        return "required"
    return message
