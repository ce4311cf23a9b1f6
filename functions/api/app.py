"""API function: POST/GET /jobs, retry, cancel, media links, /health, /openapi.json.

Thin by design: routes parse input, call one service in ``mediavault.jobs.service``, map the result.
Errors are mapped to HTTP once, below.
"""

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediavault import deps
from mediavault.api.models import MAX_BODY_BYTES, CreateJobRequest, ErrorBody, ErrorResponse
from mediavault.errors import InvalidRequest, MediaVaultError, PayloadTooLarge
from mediavault.health import health_report
from mediavault.jobs import service
from mediavault.observability import logger, metrics, tracer

app = APIGatewayRestResolver(enable_validation=True)


def _tenant() -> str:
    return service.DEFAULT_TENANT


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@app.post("/jobs", responses={202: {"description": "job queued"}, 200: {"description": "existing job"}})
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
    )
    job = submitted.job
    return _json(202 if submitted.created else 200, job.to_public(), {"Location": f"/jobs/{job.job_id}"})


@app.get("/jobs")
@tracer.capture_method
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[dict[str, Any]]:
    start = _decode_cursor(cursor)
    jobs, last = service.list_jobs(tenant_id=_tenant(), repo=deps.repository(), limit=limit, cursor=start)
    return _json(200, {"jobs": [j.to_public() for j in jobs], "nextCursor": _encode_cursor(last)})


@app.get("/jobs/<jobId>")
@tracer.capture_method
def get_job(jobId: str) -> Response[dict[str, Any]]:
    return _json(200, service.get_job(jobId, tenant_id=_tenant(), repo=deps.repository()).to_public())


@app.post("/jobs/<jobId>/retry")
@tracer.capture_method
def retry_job(jobId: str) -> Response[dict[str, Any]]:
    job = service.retry_job(jobId, tenant_id=_tenant(), repo=deps.repository(), queue=deps.queue(), clock=deps.clock)
    return _json(202, job.to_public())


@app.post("/jobs/<jobId>/cancel")
@tracer.capture_method
def cancel_job(jobId: str) -> Response[dict[str, Any]]:
    job = service.cancel_job(jobId, tenant_id=_tenant(), repo=deps.repository(), clock=deps.clock)
    return _json(200, job.to_public())


@app.get("/jobs/<jobId>/media")
@tracer.capture_method
def media_links(jobId: str) -> Response[dict[str, Any]]:
    job = service.get_job(jobId, tenant_id=_tenant(), repo=deps.repository())
    links = service.media_links(job, store=deps.media_store(), expires_in=deps.settings().presign_seconds)
    return _json(200, links)


@app.get("/health")
def health() -> Response[dict[str, Any]]:
    report = health_report(repo=deps.repository(), queue=deps.queue(), dlq=deps.dead_letter_queue())
    return _json(200 if report["healthy"] else 503, report)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[dict[str, Any]]:
    return _json(200, json.loads(app.get_openapi_json_schema(title="Media Vault API", version="1")))


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
    if len((app.current_event.body or "").encode()) > MAX_BODY_BYTES:
        return on_media_vault_error(PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes"))
    details = [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "problem": err.get("msg", "")}
        for err in exc.errors()
    ]
    problem = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details) or "invalid request"
    return _error(400, ErrorBody(code=InvalidRequest.code, message=problem, details=details))


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
    except ValueError:
        raise InvalidRequest("cursor is not one this API returned") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest("cursor is not one this API returned")
    return value


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
