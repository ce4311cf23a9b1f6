"""S3: streamed multipart uploads that appear only whole, JSON documents, presigned links.

Only this module talks to S3. An upload is visible only after ``CompleteMultipartUpload``; any
failure aborts it, so a half-written object never exists under its final key.

Final objects are written with S3 conditional writes (``If-None-Match: *``): the first writer of a key
wins. A retry, a duplicate delivery or a zombie worker that reaches a key already written gets
:class:`ObjectExists` (its own upload aborted) and describes the existing object instead of replacing it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mediavault import aws
from mediavault.errors import StorageUnavailable
from mediavault.observability import logger

# Fields of a JSON document that differ between two writers of the same content (info.json's time of
# archiving): an existing document equal to ours but for these is kept as it is.
VOLATILE_FIELDS = frozenset({"archivedAt"})
_READ_CHUNK = 1024 * 1024


class ObjectExists(Exception):
    """An object is already stored under ``key`` (written by an earlier attempt of the same job or by a
    duplicate worker); ours was not written, and its upload was aborted.

    ``etag`` is the ETag our object would have had (multipart: MD5 of the parts' MD5s, ``-<parts>``), so
    the caller can tell cheaply whether the existing object holds the same bytes. Internal to the storage
    contract, never a job's error: the worker keeps the existing object and carries on.
    """

    def __init__(self, key: str, *, etag: str | None = None) -> None:
        super().__init__(f"an object already exists at {key}")
        self.key = key
        self.etag = etag


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD of an object tells: enough to describe an object another writer stored."""

    key: str
    size: int
    etag: str
    content_type: str | None = None


class Upload(Protocol):
    key: str

    def write(self, chunk: bytes) -> None: ...
    def complete(self) -> None: ...
    def abort(self) -> None: ...


class MediaStore(Protocol):
    """What the worker needs from object storage (tests pass a fake)."""

    def open_upload(self, key: str, *, content_type: str) -> Upload: ...
    def put_json(self, key: str, document: Any, *, may_replace: Callable[[], None] | None = None) -> None: ...
    def head(self, key: str) -> ObjectInfo | None: ...
    def sha256(self, key: str, *, each_chunk: Callable[[], None] | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    modified: float


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    key: str
    upload_id: str
    initiated: float


class S3MultipartUpload:
    """Buffers at most one part in memory; parts go to S3 as they fill."""

    def __init__(self, client: Any, bucket: str, key: str, *, content_type: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self.key = key
        self._part_size = part_size
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._content_type = content_type
        self.closed = False

    def _ensure_started(self) -> str:
        if self._upload_id is None:
            response = _s3(
                self._client.create_multipart_upload,
                Bucket=self._bucket,
                Key=self.key,
                ContentType=self._content_type,
            )
            self._upload_id = response["UploadId"]
        return self._upload_id

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            # Hand the full buffer itself to S3 and keep only the overshoot: one part in memory,
            # not three (slicing and bytes() would each copy it).
            part, self._buffer = self._buffer, bytearray(self._buffer[self._part_size :])
            del part[self._part_size :]
            self._send(part)

    def _send(self, body: bytes | bytearray) -> None:
        upload_id = self._ensure_started()
        number = len(self._parts) + 1
        response = _s3(
            self._client.upload_part,
            Bucket=self._bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    @property
    def etag(self) -> str:
        """The ETag S3 gives the completed object: MD5 of the parts' MD5s, then ``-<number of parts>``
        (SSE-S3 buckets; with SSE-KMS it is opaque and simply never matches)."""
        digests = b"".join(bytes.fromhex(str(part["ETag"]).strip('"')) for part in self._parts)
        return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(self._parts)}"'

    def complete(self) -> None:
        """Make the object visible, unless one exists under the key already: then abort ours and raise
        :class:`ObjectExists` (``If-None-Match: *`` on ``CompleteMultipartUpload``)."""
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self.key,
                UploadId=self._ensure_started(),
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            self.abort()
            if _precondition_failed(exc):
                raise ObjectExists(self.key, etag=self.etag) from None
            # 409 ConditionalRequestConflict (a concurrent write to the key) is retryable like the rest:
            # the next attempt finds the winner's object and takes the ObjectExists path.
            raise aws.unavailable("S3", exc) from exc
        except BotoCoreError as exc:
            self.abort()
            raise aws.unavailable("S3", exc) from exc
        self.closed = True

    def abort(self) -> None:
        """Drop the upload; nothing appears under the key. Safe to call twice."""
        self._buffer.clear()
        if self.closed or self._upload_id is None:
            self.closed = True
            return
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self.key, UploadId=self._upload_id)
        except (ClientError, BotoCoreError) as exc:
            # The bucket's lifecycle rule (and the recovery sweep) removes what this could not.
            logger.warning("abort of multipart upload failed", extra={"key": self.key, "error": str(exc)})
        self.closed = True


class S3MediaStore:
    def __init__(self, client: Any, bucket: str, *, part_size: int = 8 * 1024**2) -> None:
        self._client = client
        self.bucket = bucket
        self._part_size = part_size

    def open_upload(self, key: str, *, content_type: str) -> S3MultipartUpload:
        return S3MultipartUpload(self._client, self.bucket, key, content_type=content_type, part_size=self._part_size)

    def put_json(self, key: str, document: Any, *, may_replace: Callable[[], None] | None = None) -> None:
        """Write ``document`` at ``key`` unless an equal one is there already.

        The first write is a conditional create (``If-None-Match: *``). When a document exists (an earlier
        attempt of the job, a duplicate, a zombie worker wrote it): equal to ours but for
        :data:`VOLATILE_FIELDS`, it is kept (first writer wins). Different, it is replaced only when
        ``may_replace`` is given and returns (the caller's fenced proof that it still owns the job: a
        zombie's raises and the existing document stays), and only the version that was read
        (``If-Match``), so a writer that slipped in between is never overwritten blindly. Without
        ``may_replace``, the existing document is kept.
        """
        body = _json_bytes(document)
        if self._put(key, body, IfNoneMatch="*"):
            return
        for _ in range(3):
            existing = self._get_json(key)
            if existing is None:  # removed since: create it again
                if self._put(key, body, IfNoneMatch="*"):
                    return
                continue
            etag, current = existing
            if same_document(current, json.loads(body)):
                return
            if may_replace is None:
                logger.warning("a different document exists at the key; kept (no owner check given)",
                               extra={"key": key})  # fmt: skip
                return
            may_replace()
            if self._put(key, body, IfMatch=etag):
                return
        raise StorageUnavailable(f"S3 document {key} kept changing while it was written; try again")

    def _put(self, key: str, body: bytes, **condition: str) -> bool:
        """A conditional ``PutObject``; ``False`` when the condition did not hold (412, or 404 for an
        ``If-Match`` on a key that is gone)."""
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json; charset=utf-8", **condition
            )
        except ClientError as exc:
            if _precondition_failed(exc) or ("IfMatch" in condition and _missing(exc)):
                return False
            raise aws.unavailable("S3", exc) from exc
        except BotoCoreError as exc:
            raise aws.unavailable("S3", exc) from exc
        return True

    def _get_json(self, key: str) -> tuple[str, Any] | None:
        """The document at ``key`` and its ETag, or ``None`` when there is none."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            raw = response["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return None
            raise aws.unavailable("S3", exc) from exc
        except BotoCoreError as exc:
            raise aws.unavailable("S3", exc) from exc
        try:
            return str(response["ETag"]), json.loads(raw)
        except ValueError:
            return str(response["ETag"]), None  # not JSON: never equal to ours

    def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag and type of the object at ``key``; ``None`` when there is none."""
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise aws.unavailable("S3", exc) from exc
        except BotoCoreError as exc:
            raise aws.unavailable("S3", exc) from exc
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=str(response["ETag"]),
            content_type=response.get("ContentType"),
        )

    def sha256(self, key: str, *, each_chunk: Callable[[], None] | None = None) -> str:
        """SHA-256 of the object at ``key``, streamed back from S3 (1 MiB in memory at a time).
        ``each_chunk`` runs after every chunk (a deadline check may raise there)."""
        digest = hashlib.sha256()
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                for chunk in body.iter_chunks(_READ_CHUNK):
                    digest.update(chunk)
                    if each_chunk is not None:
                        each_chunk()
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise aws.unavailable("S3", exc) from exc
        return digest.hexdigest()

    def presign(self, key: str, *, expires_in: int) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        )

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise aws.unavailable("S3", exc) from exc
        except BotoCoreError as exc:
            raise aws.unavailable("S3", exc) from exc
        return True

    def objects(self) -> Iterator[StoredObject]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket):
                for obj in page.get("Contents", []):
                    yield StoredObject(obj["Key"], obj["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as exc:
            raise aws.unavailable("S3", exc) from exc

    def delete(self, key: str) -> None:
        _s3(self._client.delete_object, Bucket=self.bucket, Key=key)

    def incomplete_uploads(self) -> Iterator[IncompleteUpload]:
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    yield IncompleteUpload(upload["Key"], upload["UploadId"], upload["Initiated"].timestamp())
        except (ClientError, BotoCoreError) as exc:
            raise aws.unavailable("S3", exc) from exc

    def abort_upload(self, upload: IncompleteUpload) -> None:
        _s3(self._client.abort_multipart_upload, Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)


def _s3(method: Any, **kwargs: Any) -> Any:
    return aws.call("S3", method, **kwargs)


def _precondition_failed(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return aws.error_code(exc) == "PreconditionFailed" or status == 412


def _missing(exc: ClientError) -> bool:
    return aws.error_code(exc) in ("404", "NoSuchKey", "NotFound")


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False).encode()


def same_document(current: Any, ours: Any) -> bool:
    """Equal but for :data:`VOLATILE_FIELDS` (top level)."""
    if not isinstance(current, dict) or not isinstance(ours, dict):
        return bool(current == ours)
    return {k: v for k, v in current.items() if k not in VOLATILE_FIELDS} == {
        k: v for k, v in ours.items() if k not in VOLATILE_FIELDS
    }
