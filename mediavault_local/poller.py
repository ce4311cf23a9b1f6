"""The SQS event source mapping, locally: poll the queue, invoke the worker, delete what succeeded.

Short polls with a pause when idle: moto serves one request at a time, and a long poll would hold
every other client (API, other workers) waiting.

Batch size, batching window, partial batch responses and maximum concurrency come from the
worker's ``SQS`` event in ``template.yaml``; visibility timeout and redrive (``maxReceiveCount`` ->
DLQ) are the queue's own, enforced by SQS (moto) itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mediavault_local.lambda_runtime import Invocable
from mediavault_local.template import REGION

Log = Callable[[str], None]


class SqsPoller:
    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        queue_arn: str,
        instances: list[Invocable],
        batch_size: int,
        report_failures: bool,
        idle_seconds: float = 0.25,
        log: Log = print,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._queue_arn = queue_arn
        self._instances = instances
        self._batch_size = max(1, min(batch_size, 10))
        self._report_failures = report_failures
        self._idle = idle_seconds
        self._log = log
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[int, list[dict[str, Any]]] = {}
        self.busy = 0
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors = 0

    def start(self) -> SqsPoller:
        for index in range(len(self._instances)):
            thread = threading.Thread(target=self._run, args=(index,), name=f"worker-{index + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 60.0) -> list[tuple[Invocable, list[dict[str, Any]]]]:
        """Stop receiving; wait up to ``timeout`` for in-flight batches to finish.

        Returns what is still running then: each busy instance with the messages it holds.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return [(self._instances[i], list(m)) for i, m in self._in_flight.items() if m]

    def busy_instances(self) -> list[Invocable]:
        """The instances handling a batch right now."""
        with self._lock:
            return [self._instances[i] for i, messages in self._in_flight.items() if messages]

    def _run(self, index: int) -> None:
        instance = self._instances[index]
        try:
            while not self._stop.is_set():
                try:
                    messages = self._sqs.receive_message(
                        QueueUrl=self.queue_url,
                        MaxNumberOfMessages=self._batch_size,
                        WaitTimeSeconds=0,
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                except Exception as exc:
                    if self._stop.is_set():
                        return
                    self._log(f"poller: receive failed ({type(exc).__name__}); retrying")
                    time.sleep(1)
                    continue
                if messages:
                    self._deliver(index, instance, messages)
                else:
                    self._stop.wait(self._idle)
        finally:
            _close_browser()

    def _deliver(self, index: int, instance: Invocable, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        with self._lock:
            self.busy += 1
            self.invocations += 1
            self._in_flight[index] = messages
        try:
            result = instance.invoke(event)
        except Exception as exc:
            with self._lock:
                self.errors += 1
            self._log(f"poller: worker invocation failed ({type(exc).__name__}: {exc}); batch will be retried")
            return
        finally:
            with self._lock:
                self.busy -= 1
                self._in_flight.pop(index, None)
        failed = set()
        if self._report_failures and isinstance(result, dict):
            failed = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType"),
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": REGION,
        }


def _close_browser() -> None:
    """Close the browser this worker thread started (Playwright objects belong to their thread)."""
    try:
        from mediavault.worker.browser import close_thread_session
    except ImportError:
        return
    close_thread_session()
