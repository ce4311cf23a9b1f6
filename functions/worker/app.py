"""Worker function: SQS batch -> one record at a time through the archive pipeline.

A record that raises is reported in ``batchItemFailures`` (only it is retried); the others are
deleted by the event source mapping.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediavault import deps
from mediavault.observability import logger, metrics, tracer
from mediavault.worker.runtime import handle_record

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    handle_record(record, lambda_context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="WorkerHeartbeat", unit="Count", value=1)
    with deps.heartbeat("worker"):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
