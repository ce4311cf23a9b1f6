"""Recovery function (EventBridge schedule): stale leases, lost messages, dead letters, stray uploads."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mediavault import deps
from mediavault.jobs.recovery import RecoveryReport, recover
from mediavault.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with deps.heartbeat("recovery"):
        report = _sweep(event)
    counts = report.counts()
    metrics.add_metric(name="RecoveryHeartbeat", unit="Count", value=1)
    for name, value in counts.items():
        metrics.add_metric(name=f"Recovery{name[0].upper()}{name[1:]}", unit="Count", value=value)
    logger.info("recovery run", extra={"counts": counts, "dry_run": report.dry_run})
    return {"dryRun": report.dry_run, **counts}


def _sweep(event: dict[str, Any]) -> RecoveryReport:
    return recover(
        repo=deps.repository(),
        queue=deps.queue(),
        dlq=deps.dead_letter_queue(),
        store=deps.media_store(),
        settings=deps.settings(),
        clock=deps.clock,
        dry_run=bool((event.get("detail") or {}).get("dryRun", False)),
    )
