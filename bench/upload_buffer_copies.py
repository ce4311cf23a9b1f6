"""How many copies of a part does ``S3MultipartUpload`` hold at its peak? (tracemalloc)

Feeds 48 x 1 MiB chunks (as ``worker/download.py`` does) into the current
``mediavault.storage.S3MultipartUpload`` and into two alternative ``write`` implementations
defined here (experiment only; the package is not changed):

* ``memoryview``: ``bytes(memoryview(buffer)[:n])``, one copy of the part instead of two;
* ``swap``: hand the filled bytearray itself to ``upload_part`` and start a new buffer with the
  overshoot (no copy of the part at all).

Each runs against a fake S3 client (no I/O) and against moto through boto3 (the stored object
is read back and compared).

Usage::

    .venv/bin/python bench/upload_buffer_copies.py
"""

from __future__ import annotations

import hashlib
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "mediavault"), str(ROOT)]

from mediavault.storage import S3MultipartUpload  # noqa: E402
from mediavault_local.stack import LocalStack, StackOptions  # noqa: E402

MIB = 1024 * 1024
CHUNKS = 48


class FakeS3:
    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "u"}

    def upload_part(self, **_: Any) -> dict[str, str]:
        return {"ETag": '"e"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {}


class MemoryviewSlice(S3MultipartUpload):
    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            with memoryview(self._buffer) as view:
                part = bytes(view[: self._part_size])
            del self._buffer[: self._part_size]
            self._send(part)


class SwapBuffer(S3MultipartUpload):
    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            part = self._buffer
            with memoryview(part) as view:
                self._buffer = bytearray(view[self._part_size :])  # the overshoot (< one chunk)
            del part[self._part_size :]  # truncate in place: the part itself is not copied
            self._send(part)  # type: ignore[arg-type]  # botocore accepts bytearray bodies


def peak(cls: type[S3MultipartUpload], client: Any, bucket: str, key: str, part_size: int) -> tuple[float, str]:
    chunk = os.urandom(MIB)
    digest = hashlib.sha256()
    tracemalloc.start()
    tracemalloc.reset_peak()
    upload = cls(client, bucket, key, content_type="video/mp4", part_size=part_size)
    for _ in range(CHUNKS):
        upload.write(bytes(chunk))
        digest.update(chunk)
    upload.complete()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top / MIB, digest.hexdigest()


def main() -> int:
    variants: list[tuple[str, type[S3MultipartUpload]]] = [
        ("current (bytes(buffer[:n]))", S3MultipartUpload),
        ("memoryview slice", MemoryviewSlice),
        ("swap buffer", SwapBuffer),
    ]
    print(f"{CHUNKS} x 1 MiB chunks; tracemalloc peak of Python allocations during the upload\n")
    print(f"{'variant':30s} {'client':6s} {'part MiB':>8s} {'peak MiB':>9s} {'peak/part':>9s}  check")
    for part in (5 * MIB, 8 * MIB, 16 * MIB):
        for name, cls in variants:
            top, _ = peak(cls, FakeS3(), "bucket", "key", part)
            print(f"{name:30s} {'fake':6s} {part // MIB:8d} {top:9.1f} {top / (part / MIB):9.2f}")
    stack = LocalStack(StackOptions(root=ROOT, serve=False, write_state=False)).start()
    ok = True
    try:
        s3 = stack.client("s3")
        bucket = stack.env["MEDIAVAULT_BUCKET"]
        for name, cls in variants:
            key = f"bench/{cls.__name__}"
            top, sha = peak(cls, s3, bucket, key, 8 * MIB)
            stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            same = len(stored) == CHUNKS * MIB and hashlib.sha256(stored).hexdigest() == sha
            ok &= same
            check = "stored object matches" if same else "STORED OBJECT DIFFERS"
            print(f"{name:30s} {'moto':6s} {8:8d} {top:9.1f} {top / 8:9.2f}  {check}")
            s3.delete_object(Bucket=bucket, Key=key)
    finally:
        stack.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
