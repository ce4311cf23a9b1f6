"""Where jobs live: a small interface and its DynamoDB implementation.

Every state change is one conditional write, so concurrent workers, the API and the recovery
function can never move a job along a path the state machine does not allow. Worker writes after the
claim carry a :class:`~mediavault.jobs.model.Fence` and are refused once the job was taken over.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import BotoCoreError, ClientError

from mediavault import aws
from mediavault.errors import InvalidRequest, LeaseLost, StorageUnavailable
from mediavault.jobs.model import Account, Fence, Job, JobError, JobStatus, MediaItem


class JobRepository(Protocol):
    """What services need from job storage (tests pass an in-memory fake)."""

    def create(self, job: Job) -> bool: ...
    def get(self, job_id: str) -> Job | None: ...
    def claim(self, job_id: str, *, owner: str, now: float, lease_seconds: int) -> Job | None: ...
    def renew(self, job_id: str, fence: Fence, *, now: float, lease_seconds: int) -> None: ...
    def progress(self, job_id: str, fence: Fence, *, pct: int, now: float) -> None: ...
    def complete(
        self, job_id: str, fence: Fence, *, now: float, platform: str, account: Account,
        media: list[MediaItem], info_key: str,
    ) -> Job: ...  # fmt: skip
    def fail(self, job_id: str, fence: Fence, *, error: JobError, now: float) -> Job: ...
    def release(self, job_id: str, fence: Fence, *, error: JobError, now: float) -> Job: ...
    def requeue_expired(self, job: Job, *, now: float, error: JobError) -> Job | None: ...
    def fail_expired(self, job: Job, *, now: float, error: JobError) -> Job | None: ...
    def fail_unclaimed(self, job_id: str, *, now: float, error: JobError) -> Job | None: ...
    def fail_dead_lettered(self, job_id: str, *, now: float, error: JobError) -> Job | None: ...
    def reopen(self, job_id: str, *, now: float) -> Job | None: ...
    def cancel(self, job_id: str, *, now: float) -> Job | None: ...
    def mark_message_sent(self, job_id: str, *, now: float) -> None: ...
    def by_status(self, status: JobStatus, *, updated_before: str | None = None) -> Iterator[Job]: ...
    def by_tenant(
        self, tenant_id: str, *, limit: int, cursor: dict[str, Any] | None = None
    ) -> tuple[list[Job], dict[str, Any] | None]: ...
    def count_by_status(self, status: JobStatus) -> int: ...


def _iso(now: float) -> str:
    from mediavault.clock import iso

    return iso(now)


class DynamoJobRepository:
    """:class:`JobRepository` on a DynamoDB table (``jobId`` hash key, ``byStatus``/``byTenant`` GSIs)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    # --- creation and reads -------------------------------------------------------------------

    def create(self, job: Job) -> bool:
        """Store a new job; ``False`` when a job with this id exists already."""
        try:
            self._table.put_item(Item=job.to_item(), ConditionExpression=Attr("jobId").not_exists())
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _storage_error(exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc) from exc
        return True

    def get(self, job_id: str) -> Job | None:
        item = self._call("get_item", Key={"jobId": job_id}, ConsistentRead=True).get("Item")
        return Job.from_item(item) if item else None

    # --- the worker's writes ----------------------------------------------------------------

    def claim(self, job_id: str, *, owner: str, now: float, lease_seconds: int) -> Job | None:
        """Take the job: queued, or running with an expired lease, and attempts left. ``None`` if not."""
        return self._update(
            job_id,
            "SET #s = :running, attempt = attempt + :one, leaseOwner = :owner, leaseExpiresAt = :lease,"
            " startedAt = if_not_exists(startedAt, :now), updatedAt = :now, progressPct = :zero"
            " REMOVE #err",
            "attribute_exists(jobId) AND attempt < maxAttempts AND"
            " (#s = :queued OR (#s = :running AND leaseExpiresAt < :epoch))",
            {
                ":running": JobStatus.RUNNING.value,
                ":queued": JobStatus.QUEUED.value,
                ":one": 1,
                ":zero": 0,
                ":owner": owner,
                ":lease": int(now) + lease_seconds,
                ":epoch": int(now),
                ":now": _iso(now),
            },
            names={"#s": "status", "#err": "error"},
        )

    def renew(self, job_id: str, fence: Fence, *, now: float, lease_seconds: int) -> None:
        self._fenced(job_id, fence, "SET leaseExpiresAt = :lease", {":lease": int(now) + lease_seconds})

    def progress(self, job_id: str, fence: Fence, *, pct: int, now: float) -> None:
        self._fenced(job_id, fence, "SET progressPct = :pct, updatedAt = :now", {":pct": pct, ":now": _iso(now)})

    def complete(
        self,
        job_id: str,
        fence: Fence,
        *,
        now: float,
        platform: str,
        account: Account,
        media: list[MediaItem],
        info_key: str,
    ) -> Job:
        return self._fenced(
            job_id,
            fence,
            "SET #s = :done, progressPct = :full, completedAt = :now, updatedAt = :now, platform = :platform,"
            " account = :account, media = :media, infoKey = :info REMOVE leaseOwner, leaseExpiresAt, #err",
            {
                ":done": JobStatus.COMPLETED.value,
                ":full": 100,
                ":now": _iso(now),
                ":platform": platform,
                ":account": account.model_dump(mode="json", by_alias=True, exclude_none=True),
                ":media": [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in media],
                ":info": info_key,
            },
        )

    def fail(self, job_id: str, fence: Fence, *, error: JobError, now: float) -> Job:
        return self._fenced(
            job_id,
            fence,
            "SET #s = :failed, #err = :error, updatedAt = :now REMOVE leaseOwner, leaseExpiresAt",
            {":failed": JobStatus.FAILED.value, ":error": _err(error), ":now": _iso(now)},
        )

    def release(self, job_id: str, fence: Fence, *, error: JobError, now: float) -> Job:
        """Give the job back (retryable failure): ``running -> queued`` with the cause recorded."""
        return self._fenced(
            job_id,
            fence,
            "SET #s = :queued, #err = :error, updatedAt = :now, progressPct = :zero REMOVE leaseOwner, leaseExpiresAt",
            {":queued": JobStatus.QUEUED.value, ":error": _err(error), ":now": _iso(now), ":zero": 0},
        )

    # --- recovery and user transitions ---------------------------------------------------------

    def requeue_expired(self, job: Job, *, now: float, error: JobError) -> Job | None:
        """``running -> queued`` for a job whose lease expired, if nobody touched it since it was read."""
        return self._update(
            job.job_id,
            "SET #s = :queued, #err = :error, updatedAt = :now, progressPct = :zero REMOVE leaseOwner, leaseExpiresAt",
            "#s = :running AND leaseExpiresAt < :epoch AND leaseOwner = :owner AND attempt = :attempt",
            {
                ":queued": JobStatus.QUEUED.value,
                ":running": JobStatus.RUNNING.value,
                ":error": _err(error),
                ":now": _iso(now),
                ":zero": 0,
                ":epoch": int(now),
                ":owner": job.lease_owner or "",
                ":attempt": job.attempt,
            },
            names={"#s": "status", "#err": "error"},
        )

    def fail_expired(self, job: Job, *, now: float, error: JobError) -> Job | None:
        return self._update(
            job.job_id,
            "SET #s = :failed, #err = :error, updatedAt = :now REMOVE leaseOwner, leaseExpiresAt",
            "#s = :running AND leaseExpiresAt < :epoch AND leaseOwner = :owner AND attempt = :attempt",
            {
                ":failed": JobStatus.FAILED.value,
                ":running": JobStatus.RUNNING.value,
                ":error": _err(error),
                ":now": _iso(now),
                ":epoch": int(now),
                ":owner": job.lease_owner or "",
                ":attempt": job.attempt,
            },
            names={"#s": "status", "#err": "error"},
        )

    def fail_unclaimed(self, job_id: str, *, now: float, error: JobError) -> Job | None:
        """``queued -> failed`` (a message that can never be processed, or no attempts left)."""
        return self._update(
            job_id,
            "SET #s = :failed, #err = :error, updatedAt = :now",
            "#s = :queued",
            {
                ":failed": JobStatus.FAILED.value,
                ":queued": JobStatus.QUEUED.value,
                ":error": _err(error),
                ":now": _iso(now),
            },
            names={"#s": "status", "#err": "error"},
        )

    def fail_dead_lettered(self, job_id: str, *, now: float, error: JobError) -> Job | None:
        """A dead-lettered job ends ``failed``, unless a worker holds it under a live lease."""
        return self._update(
            job_id,
            "SET #s = :failed, #err = :error, updatedAt = :now REMOVE leaseOwner, leaseExpiresAt",
            "#s = :queued OR (#s = :running AND leaseExpiresAt < :epoch)",
            {
                ":failed": JobStatus.FAILED.value,
                ":queued": JobStatus.QUEUED.value,
                ":running": JobStatus.RUNNING.value,
                ":error": _err(error),
                ":now": _iso(now),
                ":epoch": int(now),
            },
            names={"#s": "status", "#err": "error"},
        )

    def reopen(self, job_id: str, *, now: float) -> Job | None:
        """``failed | cancelled -> queued`` with a fresh attempt budget (user retry)."""
        return self._update(
            job_id,
            "SET #s = :queued, attempt = :zero, progressPct = :zero, updatedAt = :now"
            " REMOVE #err, completedAt, startedAt",
            "#s IN (:failed, :cancelled)",
            {
                ":queued": JobStatus.QUEUED.value,
                ":failed": JobStatus.FAILED.value,
                ":cancelled": JobStatus.CANCELLED.value,
                ":zero": 0,
                ":now": _iso(now),
            },
            names={"#s": "status", "#err": "error"},
        )

    def cancel(self, job_id: str, *, now: float) -> Job | None:
        return self._update(
            job_id,
            "SET #s = :cancelled, updatedAt = :now",
            "#s = :queued",
            {":cancelled": JobStatus.CANCELLED.value, ":queued": JobStatus.QUEUED.value, ":now": _iso(now)},
            names={"#s": "status"},
        )

    def mark_message_sent(self, job_id: str, *, now: float) -> None:
        self._call(
            "update_item",
            Key={"jobId": job_id},
            UpdateExpression="SET messageSentAt = :now",
            ConditionExpression="attribute_exists(jobId)",
            ExpressionAttributeValues={":now": _iso(now)},
        )

    # --- queries -------------------------------------------------------------------------------

    def by_status(self, status: JobStatus, *, updated_before: str | None = None) -> Iterator[Job]:
        condition: Any = Key("status").eq(status.value)
        if updated_before is not None:
            condition = condition & Key("updatedAt").lt(updated_before)
        kwargs: dict[str, Any] = {"IndexName": "byStatus", "KeyConditionExpression": condition}
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                yield Job.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def by_tenant(
        self, tenant_id: str, *, limit: int, cursor: dict[str, Any] | None = None
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """One page of the tenant's jobs, newest first. The cursor is ``{"jobId", "createdAt"}`` as the
        previous page returned it; the tenant is never read from it, so a cursor cannot open another
        tenant's listing, and one that is not a position answers ``InvalidRequest``."""
        kwargs: dict[str, Any] = {
            "IndexName": "byTenant",
            "KeyConditionExpression": Key("tenantId").eq(tenant_id),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = {**_position(cursor), "tenantId": tenant_id}
        page = self._call("query", **kwargs)
        last = page.get("LastEvaluatedKey")
        position = {k: v for k, v in last.items() if k in _POSITION_KEYS} if last else None
        return [Job.from_item(i) for i in page.get("Items", [])], position

    def count_by_status(self, status: JobStatus) -> int:
        kwargs: dict[str, Any] = {
            "IndexName": "byStatus",
            "KeyConditionExpression": Key("status").eq(status.value),
            "Select": "COUNT",
        }
        total = 0
        while True:
            page = self._call("query", **kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- plumbing ------------------------------------------------------------------------------

    def _fenced(self, job_id: str, fence: Fence, update: str, values: dict[str, Any]) -> Job:
        """A worker write that only lands while this worker still holds the job."""
        job = self._update(
            job_id,
            update,
            "#s = :running_ AND leaseOwner = :owner_ AND attempt = :attempt_",
            {**values, ":running_": JobStatus.RUNNING.value, ":owner_": fence.owner, ":attempt_": fence.attempt},
            names={"#s": "status", "#err": "error"} if "#err" in update else {"#s": "status"},
        )
        if job is None:
            raise LeaseLost(f"job {job_id} is no longer held by {fence.owner} (attempt {fence.attempt})")
        return job

    def _update(
        self,
        job_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        names: dict[str, str] | None = None,
    ) -> Job | None:
        """A conditional ``UpdateItem`` returning the new job, or ``None`` when the condition failed."""
        kwargs: dict[str, Any] = {
            "Key": {"jobId": job_id},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        used = {n: v for n, v in (names or {"#s": "status"}).items() if n in update or n in condition}
        if used:
            kwargs["ExpressionAttributeNames"] = used
        try:
            return Job.from_item(self._table.update_item(**kwargs)["Attributes"])
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise _storage_error(exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc) from exc

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._table, method)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc) from exc


_POSITION_KEYS = frozenset({"jobId", "createdAt"})


def _position(cursor: dict[str, Any]) -> dict[str, str]:
    """A listing position, checked before DynamoDB sees it (a bad start key would be a 400 there)."""
    if set(cursor) != _POSITION_KEYS or not all(isinstance(v, str) and 0 < len(v) <= 128 for v in cursor.values()):
        raise InvalidRequest("cursor is not one this API returned; start again without it")
    return {k: str(v) for k, v in cursor.items()}


def _err(error: JobError) -> dict[str, Any]:
    return error.model_dump(mode="json", by_alias=True)


def _storage_error(exc: ClientError | BotoCoreError) -> StorageUnavailable:
    return aws.unavailable("DynamoDB", exc)
