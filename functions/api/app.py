"""API function: POST/GET /jobs, retry, cancel, media links, /health, /openapi.json.

Thin by design: routes parse input, call one service in ``mediavault.jobs.service``, map the result.
The tenant of every key-required route is the caller's API key (``mediavault.tenants``); errors are
mapped to HTTP once, below.
"""

import base64
import binascii
import functools
import json
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediavault import deps
from mediavault.api import openapi
from mediavault.api.models import (
    CURSOR_PATTERN,
    JOB_ID_PATTERN,
    MAX_CURSOR_CHARS,
    CreateJobRequest,
    ErrorBody,
    ErrorResponse,
    Health,
    JobPage,
    JobView,
    MediaLinks,
)
from mediavault.api.requests import (
    JSON_HINT,
    check_body_size,
    check_no_body,
    check_query,
    is_json_content_type,
    parse_json_body,
)
from mediavault.errors import InvalidRequest, MediaVaultError, UnsupportedMediaType
from mediavault.health import health_report
from mediavault.jobs import service
from mediavault.observability import logger, metrics, tracer
from mediavault.tenants import tenant_for_api_key

app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=parse_json_body)

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="the job's id, as POST /jobs returned it")]
KEY = openapi.KEY_REQUIRED


def _tenant() -> str:
    """The caller's tenant: its API key id (set by API Gateway), or the default tenant without one."""
    identity = (app.current_event.get("requestContext") or {}).get("identity") or {}
    tenant = tenant_for_api_key(identity.get("apiKeyId"), default=deps.settings().default_tenant)
    logger.thread_safe_append_keys(tenant_id=tenant)  # removed when the invocation ends
    return tenant


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def takes(*, query: tuple[str, ...] = (), body: bool = False) -> Callable[..., Response[Any]]:
    """A route's middleware refusing what it does not take: unknown query parameters (400); a body on
    routes that take none (400); a body that is not JSON (415) or over the limit (413)."""

    def middleware(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event
        route = f"{event.http_method} {event.get('resource') or event.path}"
        names = (event.get("multiValueQueryStringParameters") or event.get("queryStringParameters") or {}).keys()
        check_query(names, allowed=query, route=route)
        if not body:
            check_no_body(event.body, base64_encoded=bool(event.is_base64_encoded), route=route)
        elif event.body:
            content_type = event.headers.get("content-type")
            if not is_json_content_type(content_type):
                raise UnsupportedMediaType(f"the request body is {content_type}; {JSON_HINT}")
            check_body_size(event.decoded_body)
        return next_middleware(app)

    return middleware


@app.post(
    "/jobs",
    summary="Archive the media of a post",
    responses=openapi.responses(
        {202: ("job created and queued", JobView), 200: ("the existing job", JobView)}, 400, 403, 413, 415, 429, 503
    ),
    security=KEY,
    middlewares=[takes(body=True)],
)
@tracer.capture_method
def create_job(request: Annotated[CreateJobRequest, Body()]) -> Response[dict[str, Any]]:
    submitted = service.submit_job(
        request.url,
        force=request.force,
        tenant_id=_tenant(),
        correlation_id=app.current_event.request_context.request_id,
        repo=deps.repository(),
        queue=deps.queue(),
        policy=deps.egress_policy(),
        clock=deps.clock,
        max_attempts=deps.settings().max_attempts,
        platforms=deps.platforms(),
        include_quoted=request.include_quoted,
    )
    job = submitted.job
    return _json(202 if submitted.created else 200, job.to_public(), {"Location": f"/jobs/{job.job_id}"})


@app.get(
    "/jobs",
    summary="List your jobs, newest first",
    responses=openapi.responses({200: ("a page of jobs", JobPage)}, 400, 403, 413, 429, 503),
    security=KEY,
    middlewares=[takes(query=("limit", "cursor"))],
)
@tracer.capture_method
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page")] = 25,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_CHARS, pattern=CURSOR_PATTERN, description="nextCursor of the previous page"),
    ] = None,
) -> Response[dict[str, Any]]:
    start = _decode_cursor(cursor)
    jobs, last = service.list_jobs(tenant_id=_tenant(), repo=deps.repository(), limit=limit, cursor=start)
    return _json(200, {"jobs": [j.to_public() for j in jobs], "nextCursor": _encode_cursor(last)})


@app.get(
    "/jobs/<jobId>",
    summary="Read one of your jobs",
    responses=openapi.responses({200: ("the job", JobView)}, 400, 403, 404, 413, 429, 503),
    security=KEY,
    middlewares=[takes()],
)
@tracer.capture_method
def get_job(jobId: JobId) -> Response[dict[str, Any]]:
    return _json(200, service.get_job(jobId, tenant_id=_tenant(), repo=deps.repository()).to_public())


@app.post(
    "/jobs/<jobId>/retry",
    summary="Queue a failed or cancelled job again",
    responses=openapi.responses({202: ("the job, queued again", JobView)}, 400, 403, 404, 409, 413, 429, 503),
    security=KEY,
    middlewares=[takes()],
)
@tracer.capture_method
def retry_job(jobId: JobId) -> Response[dict[str, Any]]:
    job = service.retry_job(jobId, tenant_id=_tenant(), repo=deps.repository(), queue=deps.queue(), clock=deps.clock)
    return _json(202, job.to_public())


@app.post(
    "/jobs/<jobId>/cancel",
    summary="Cancel a queued job",
    responses=openapi.responses({200: ("the cancelled job", JobView)}, 400, 403, 404, 409, 413, 429, 503),
    security=KEY,
    middlewares=[takes()],
)
@tracer.capture_method
def cancel_job(jobId: JobId) -> Response[dict[str, Any]]:
    job = service.cancel_job(jobId, tenant_id=_tenant(), repo=deps.repository(), clock=deps.clock)
    return _json(200, job.to_public())


@app.get(
    "/jobs/<jobId>/media",
    summary="Presigned links to a completed job's media, thumbnails and info.json",
    responses=openapi.responses(
        {200: ("links, valid expiresIn seconds", MediaLinks)}, 400, 403, 404, 409, 413, 429, 503
    ),
    security=KEY,
    middlewares=[takes()],
)
@tracer.capture_method
def media_links(jobId: JobId) -> Response[dict[str, Any]]:
    job = service.get_job(jobId, tenant_id=_tenant(), repo=deps.repository())
    links = service.media_links(job, store=deps.media_store(), expires_in=deps.settings().presign_seconds)
    return _json(200, links)


@app.get(
    "/health",
    summary="Queue depth, in flight, dead letters, jobs by status (no API key)",
    responses=openapi.responses({200: ("healthy", Health), 503: ("degraded, with reasons", Health)}, 400, 413),
    middlewares=[takes()],
)
def health() -> Response[dict[str, Any]]:
    report = health_report(
        repo=deps.repository(),
        queue=deps.queue(),
        dlq=deps.dead_letter_queue(),
        heartbeats=deps.heartbeats(),
        queue_age=deps.queue_age(),
        settings=deps.settings(),
        clock=deps.clock,
    )
    return _json(200 if report["healthy"] else 503, report)


@app.get(
    "/openapi.json",
    summary="This document (no API key)",
    responses=openapi.DOCUMENT_RESPONSE,
    middlewares=[takes()],
)
def openapi_document() -> Response[dict[str, Any]]:
    context = app.current_event.get("requestContext") or {}
    return _json(200, _document(openapi.base_path(context.get("path"), app.current_event.path)))


@functools.lru_cache(maxsize=8)
def _document(base_path: str) -> dict[str, Any]:
    generated = app.get_openapi_json_schema(
        title="Media Vault API",
        version="1",
        summary="Archive the media of social posts into your own S3 bucket",
        security_schemes=openapi.SECURITY_SCHEMES,
    )
    return openapi.finish(json.loads(generated), base_path=base_path)


# --- errors: mapped to HTTP once ------------------------------------------------------------------


def _error(status: int, body: ErrorBody) -> Response[dict[str, Any]]:
    return _json(status, ErrorResponse(error=body).model_dump(exclude_none=True))


@app.exception_handler(MediaVaultError)
def on_media_vault_error(exc: MediaVaultError) -> Response[dict[str, Any]]:
    if exc.http_status >= 500:
        logger.exception("request failed", extra={"code": exc.code})
    return _error(exc.http_status, ErrorBody(code=exc.code, message=exc.message, retryable=exc.retryable))


@app.exception_handler(RequestValidationError)
def on_validation_error(exc: RequestValidationError) -> Response[dict[str, Any]]:
    content_type = app.current_event.headers.get("content-type")
    if app.current_event.get("body") and not is_json_content_type(content_type):
        return on_media_vault_error(UnsupportedMediaType(f"the request body is {content_type}; {JSON_HINT}"))
    details = openapi.validation_problems(exc.errors())
    problem = "; ".join(f"{d['field']}: {d['problem']}" for d in details) or "invalid request"
    return _error(400, ErrorBody(code=InvalidRequest.code, message=problem, details=details))


@app.exception_handler(RequestUnsupportedContentType)
def on_unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    content_type = app.current_event.headers.get("content-type")
    return on_media_vault_error(UnsupportedMediaType(f"the request body is {content_type}; {JSON_HINT}"))


@app.exception_handler([UnicodeDecodeError, binascii.Error])
def on_undecodable_body(exc: Exception) -> Response[dict[str, Any]]:
    return on_media_vault_error(InvalidRequest("the request body is not UTF-8 text; send a JSON object in UTF-8"))


@app.exception_handler(NotFoundError)
def on_not_found(exc: NotFoundError) -> Response[dict[str, Any]]:
    return _error(404, ErrorBody(code="NOT_FOUND", message=f"no route for {app.current_event.path}"))


@app.exception_handler(Exception)
def on_unexpected(exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("unexpected error")
    return _error(500, ErrorBody(code="INTERNAL_ERROR", message="internal error", retryable=True))


def _decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidRequest("cursor is not one this API returned; start again without it") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest("cursor is not one this API returned; start again without it")
    return value


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return app.resolve(event, context)
    finally:
        logger.thread_safe_remove_keys(["tenant_id"])
