"""S3: streamed multipart uploads that appear only whole, JSON documents, presigned links.

Only this module talks to S3. An upload is visible only after ``CompleteMultipartUpload``; any
failure aborts it, so a half-written object never exists under its final key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mediavault import aws
from mediavault.observability import logger


class Upload(Protocol):
    key: str

    def write(self, chunk: bytes) -> None: ...
    def complete(self) -> None: ...
    def abort(self) -> None: ...


class MediaStore(Protocol):
    """What the worker needs from object storage (tests pass a fake)."""

    def open_upload(self, key: str, *, content_type: str) -> Upload: ...
    def put_json(self, key: str, document: Any) -> None: ...


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

    def complete(self) -> None:
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        _s3(
            self._client.complete_multipart_upload,
            Bucket=self._bucket,
            Key=self.key,
            UploadId=self._ensure_started(),
            MultipartUpload={"Parts": self._parts},
        )
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

    def put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False).encode()
        _s3(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json; charset=utf-8",
        )

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
