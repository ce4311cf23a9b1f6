"""SQS: the job message schema and the only code that sends, delays or reads messages."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from mediavault import aws
from mediavault.tenants import TENANT_ID_PATTERN


class JobMessage(BaseModel):
    """The body of a message on the jobs queue.

    ``{"url": "..."}`` alone is a complete job: the worker creates the record itself, with an id
    derived from the SQS message id so a redelivered message never makes a second job, in the tenant
    the message names (``tenantId``) or, when it names none, the deployment's default tenant
    (``MEDIAVAULT_DEFAULT_TENANT``). A message naming an existing job (``jobId``) runs it in the job's
    own tenant, whatever ``tenantId`` says. A ``tenantId`` that is not a tenant id (see
    :mod:`mediavault.tenants`) makes the message malformed: it ends in the dead-letter queue.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    url: StrictStr = Field(min_length=1, max_length=4096)
    job_id: StrictStr | None = Field(default=None, alias="jobId", max_length=128)
    force: StrictBool = False
    tenant_id: StrictStr | None = Field(default=None, alias="tenantId", pattern=TENANT_ID_PATTERN)
    correlation_id: StrictStr | None = Field(default=None, alias="correlationId", max_length=256)
    include_quoted: StrictBool = Field(default=False, alias="includeQuoted")

    def body(self) -> str:
        # includeQuoted only when set: the everyday message stays the documented minimal one.
        skip = None if self.include_quoted else {"include_quoted"}
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude=skip)


class JobQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.url = queue_url

    def send(self, message: JobMessage, *, delay_seconds: int = 0) -> str:
        response = _sqs(
            self._client.send_message,
            QueueUrl=self.url,
            MessageBody=message.body(),
            DelaySeconds=max(0, min(delay_seconds, 900)),
        )
        return str(response["MessageId"])

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Keep a failed message invisible for ``seconds`` (SQS retry with backoff)."""
        _sqs(
            self._client.change_message_visibility,
            QueueUrl=self.url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, 43_200)),
        )

    def attributes(self) -> dict[str, int]:
        response = _sqs(
            self._client.get_queue_attributes,
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        return {k: int(v) for k, v in response.get("Attributes", {}).items()}

    def receive(self, *, max_messages: int = 10, wait_seconds: int = 0) -> list[dict[str, Any]]:
        response = _sqs(
            self._client.receive_message,
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def delete(self, receipt_handle: str) -> None:
        _sqs(self._client.delete_message, QueueUrl=self.url, ReceiptHandle=receipt_handle)


def parse_body(body: str) -> JobMessage:
    """Raises ``ValueError`` (or pydantic's ``ValidationError``) for anything that is not a job message."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("message body is not a JSON object")
    return JobMessage.model_validate(data)


def _sqs(method: Any, **kwargs: Any) -> Any:
    return aws.call("SQS", method, **kwargs)
