"""S3 conditional writes (``If-None-Match: *``): the first writer of a key wins, later writers describe
its object instead of replacing it, and no incomplete multipart upload is ever left behind (moto)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from mediavault.errors import LeaseLost, StorageUnavailable
from mediavault.storage import ObjectExists, S3MediaStore
from mediavault.worker.download import Downloader, Stored

pytestmark = pytest.mark.integration

BUCKET = "mediavault-conditional"
KEY = "tenants/default/downloads/x-alice/job-1.mp4"
PART = 5 * 1024**2
HEADER = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def mp4(size: int, fill: int) -> bytes:
    """A body that sniffs as MP4, ``size`` bytes, its payload ``fill`` repeated."""
    return HEADER + bytes([fill]) * (size - len(HEADER))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def store(s3: Any) -> S3MediaStore:
    return S3MediaStore(s3, BUCKET, part_size=PART)


def downloader(s3: Any, body: bytes) -> Downloader:
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)))
    return Downloader(client, store(s3), max_bytes=10**9)


def download(d: Downloader) -> Stored:
    return d.store("https://cdn.example/v.mp4", key_for=lambda _: KEY, kinds=frozenset({"video"}), min_bytes=1024)


def incomplete(s3: Any) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_two_uploads_racing_to_one_key_leave_one_object_and_no_incomplete_upload(s3: Any) -> None:
    # Given two writers that both started a multipart upload to the same key, with different bytes
    first, second = mp4(PART + 1000, 1), mp4(PART + 2000, 2)
    a = store(s3).open_upload(KEY, content_type="video/mp4")
    b = store(s3).open_upload(KEY, content_type="video/mp4")
    a.write(first)
    b.write(second)

    # When both complete, A first
    a.complete()
    with pytest.raises(ObjectExists) as refused:
        b.complete()

    # Then exactly one object exists, A's, and B's upload was aborted
    assert refused.value.key == KEY
    assert keys(s3) == [KEY]
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == first
    assert incomplete(s3) == []
    # And the ETag A computed from its parts is the one S3 gave the object (the cheap same-bytes check)
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"] == a.etag
    assert a.etag.endswith('-2"')


def test_the_loser_of_a_race_describes_the_existing_object(s3: Any) -> None:
    # Given a key already written by another worker (different bytes, different size)
    winner_body, loser_body = mp4(PART + 4096, 7), mp4(64 * 1024, 9)
    won = download(downloader(s3, winner_body))

    # When a second worker downloads to the same key
    lost = download(downloader(s3, loser_body))

    # Then it keeps the winner's object and records it as stored: size from S3, SHA-256 read back
    assert lost.key == won.key == KEY
    assert (lost.bytes, lost.sha256) == (len(winner_body), hashlib.sha256(winner_body).hexdigest())
    assert (lost.bytes, lost.sha256) == (won.bytes, won.sha256)
    assert lost.content_type == "video/mp4"
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == winner_body
    assert incomplete(s3) == []


def test_the_same_bytes_are_confirmed_by_etag_without_reading_the_object_back(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an object written by an earlier attempt of the same job (the same bytes)
    body = mp4(2 * PART + 123, 3)
    first = download(downloader(s3, body))
    read_back: list[str] = []

    def spy(self: S3MediaStore, key: str, **_: Any) -> str:
        read_back.append(key)
        return ""

    monkeypatch.setattr(S3MediaStore, "sha256", spy)

    # When the retry downloads the same media to the same key
    again = download(downloader(s3, body))

    # Then it is described from a HEAD and its own digest: nothing is streamed back from S3
    assert again == first
    assert read_back == []
    assert incomplete(s3) == []


def test_a_zombie_completing_after_a_takeover_cannot_replace_the_object(s3: Any) -> None:
    # Given worker A (the zombie) stalled mid-upload, and worker B that took over and stored the media
    zombie = store(s3).open_upload(KEY, content_type="video/mp4")
    zombie.write(mp4(PART + 10, 5))  # one part sent, the rest buffered
    owner = download(downloader(s3, mp4(PART + 99, 6)))
    before = s3.head_object(Bucket=BUCKET, Key=KEY)

    # When A resumes and completes its upload
    zombie.write(b"\x05" * 1000)
    with pytest.raises(ObjectExists):
        zombie.complete()

    # Then B's object is untouched (bytes and ETag) and A's upload is gone
    after = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert (after["ETag"], after["ContentLength"]) == (before["ETag"], owner.bytes)
    assert hashlib.sha256(s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()).hexdigest() == owner.sha256
    assert incomplete(s3) == []


def test_sha256_streams_the_object_and_head_reports_a_missing_key(s3: Any) -> None:
    body = mp4(3 * 1024**2 + 17, 4)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=body, ContentType="video/mp4")
    chunks: list[None] = []
    assert store(s3).sha256(KEY, each_chunk=lambda: chunks.append(None)) == hashlib.sha256(body).hexdigest()
    assert len(chunks) == 4  # 1 MiB at a time
    info = store(s3).head(KEY)
    assert info is not None
    assert (info.size, info.content_type) == (len(body), "video/mp4")
    assert store(s3).head("nothing-here") is None


# --- info.json --------------------------------------------------------------------------------------

DOC_KEY = "tenants/default/downloads/x-alice/job-1.info.json"


def doc(**changes: Any) -> dict[str, Any]:
    return {"jobId": "job-1", "archivedAt": "2026-11-22T10:00:00.000Z", "media": [{"key": KEY}], **changes}


def etag(s3: Any) -> str:
    return str(s3.head_object(Bucket=BUCKET, Key=DOC_KEY)["ETag"])


def read(s3: Any) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=DOC_KEY)["Body"].read())


def test_an_equal_document_is_kept_as_the_first_writer_wrote_it(s3: Any) -> None:
    store(s3).put_json(DOC_KEY, doc())
    before = (etag(s3), read(s3))
    # A rerun (or a zombie) writing the same content at another time changes nothing
    store(s3).put_json(DOC_KEY, doc(archivedAt="2026-11-22T11:00:00.000Z"), may_replace=lambda: None)
    assert (etag(s3), read(s3)) == before


def test_a_zombie_cannot_replace_a_completed_jobs_document(s3: Any) -> None:
    # Given the owner's document
    store(s3).put_json(DOC_KEY, doc())
    before = (etag(s3), read(s3))

    def lease_lost() -> None:
        raise LeaseLost("job job-1 is no longer held by A (attempt 1)")

    # When a zombie writes a different one, its fenced owner check fails: nothing is replaced
    with pytest.raises(LeaseLost):
        store(s3).put_json(DOC_KEY, doc(media=[]), may_replace=lease_lost)
    # And without an owner check, an existing document is never replaced either
    store(s3).put_json(DOC_KEY, doc(media=[]))
    assert (etag(s3), read(s3)) == before


def test_the_owner_replaces_the_version_it_read_and_never_a_newer_one(s3: Any) -> None:
    # Given a document an earlier attempt left (then failed before the job record was written)
    store(s3).put_json(DOC_KEY, doc(media=[]))
    sneaked: list[bool] = []

    def owner_check_while_someone_writes() -> None:
        # Between the owner's read and its write, another writer puts a version once
        if not sneaked:
            sneaked.append(True)
            s3.put_object(Bucket=BUCKET, Key=DOC_KEY, Body=b'{"jobId": "job-1", "media": ["other"]}')

    # When the current owner writes its own document
    store(s3).put_json(DOC_KEY, doc(), may_replace=owner_check_while_someone_writes)

    # Then its write was conditioned on the version it read: refused once, read again, then written
    assert sneaked == [True]
    assert json.loads(read(s3)) == doc()


def test_a_document_that_keeps_changing_is_a_retryable_failure(s3: Any) -> None:
    store(s3).put_json(DOC_KEY, doc(media=[]))
    n = iter(range(100))

    def someone_always_writes() -> None:
        s3.put_object(Bucket=BUCKET, Key=DOC_KEY, Body=b'{"n": %d}' % next(n))

    with pytest.raises(StorageUnavailable):
        store(s3).put_json(DOC_KEY, doc(), may_replace=someone_always_writes)
