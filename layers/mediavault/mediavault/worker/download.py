"""Stream a media URL straight into an S3 multipart upload, validating while it flows.

Never the whole file in memory or on disk: one part at most is buffered. The first bytes decide
what the body is (an HTML error page labelled ``video/mp4`` is refused); the size is checked at the
end; any failure aborts the upload, so nothing half-written or invalid is ever visible.

Keys are deterministic and the store completes an upload only when its key is free: when another
writer (an earlier attempt, a duplicate, a zombie) got there first, its object is kept and described.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from mediavault.errors import (
    InvalidMedia,
    MediaTooLarge,
    MediaVaultError,
    StorageUnavailable,
    UpstreamUnavailable,
)
from mediavault.media.sniff import SNIFF_BYTES, Sniffed, looks_like_text, sniff
from mediavault.observability import logger
from mediavault.storage import MediaStore, ObjectExists, Upload
from mediavault.worker.deadline import Deadline

_CHUNK = 1024 * 1024
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class Stored:
    key: str
    kind: str
    content_type: str
    bytes: int
    sha256: str
    source_url: str


class Downloader:
    def __init__(self, client: httpx.Client, store: MediaStore, *, max_bytes: int) -> None:
        self._client = client
        self._store = store
        self._max_bytes = max_bytes

    def store(
        self,
        url: str,
        *,
        key_for: Callable[[Sniffed], str],
        kinds: frozenset[str],
        min_bytes: int,
        deadline: Deadline | None = None,
        headers: dict[str, str] | None = None,
        progress: Progress | None = None,
    ) -> Stored:
        """Download ``url`` into the key ``key_for(sniffed type)``; returns what was stored."""
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                return self.store_response(
                    url, response, key_for=key_for, kinds=kinds, min_bytes=min_bytes, deadline=deadline,
                    progress=progress,
                )  # fmt: skip
        except MediaVaultError:
            raise
        except httpx.TooManyRedirects as exc:
            raise InvalidMedia(f"too many redirects for {url}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"download of {url} failed: {type(exc).__name__}") from exc

    def store_response(
        self,
        url: str,
        response: httpx.Response,
        *,
        key_for: Callable[[Sniffed], str],
        kinds: frozenset[str],
        min_bytes: int,
        deadline: Deadline | None = None,
        progress: Progress | None = None,
    ) -> Stored:
        """The body of ``response`` (from :meth:`store`, or obtained some other way: the browser's own
        fetch) validated and streamed into S3: status, type, size, digest."""
        try:
            check_status(url, response)
            return self._copy(url, response, key_for, kinds, min_bytes, deadline, progress)
        except MediaVaultError:
            raise
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"download of {url} failed: {type(exc).__name__}") from exc

    def _copy(
        self,
        url: str,
        response: httpx.Response,
        key_for: Callable[[Sniffed], str],
        kinds: frozenset[str],
        min_bytes: int,
        deadline: Deadline | None,
        progress: Progress | None,
    ) -> Stored:
        declared = response.headers.get("content-type")
        expected = int_or_none(response.headers.get("content-length"))
        if expected is not None and expected > self._max_bytes:
            raise MediaTooLarge(f"{url} is {expected} bytes, over the {self._max_bytes}-byte limit")
        chunks = response.iter_bytes(_CHUNK)
        head = bytearray()
        for chunk in chunks:
            head += chunk
            if len(head) >= SNIFF_BYTES * 4:
                break
        if not head:
            raise InvalidMedia(f"{url} answered an empty body")
        if looks_like_text(bytes(head[: SNIFF_BYTES * 4]), declared):
            raise InvalidMedia(f"{url} answered a page ({declared or 'no type'}), not media")
        sniffed = sniff(bytes(head))
        if sniffed is None:
            raise InvalidMedia(f"{url} answered bytes that are not a known media format ({declared or 'no type'})")
        if sniffed.kind not in kinds:
            raise InvalidMedia(f"{url} is {sniffed.content_type}, expected {'/'.join(sorted(kinds))}")

        upload = self._store.open_upload(key_for(sniffed), content_type=sniffed.content_type)
        try:
            digest = hashlib.sha256()
            total = 0
            pending: bytes | bytearray = head
            while True:
                total += len(pending)
                if total > self._max_bytes:
                    raise MediaTooLarge(f"{url} is over the {self._max_bytes}-byte limit")
                digest.update(pending)
                upload.write(bytes(pending))
                if progress is not None:
                    progress(total, expected)
                if deadline is not None:
                    deadline.check("the rest of the download")
                pending = next(chunks, b"")
                if not pending:
                    break
            if total < min_bytes:
                raise InvalidMedia(f"{url} is only {total} bytes; media is at least {min_bytes}")
            return finish_upload(
                self._store, upload, url=url, kind=sniffed.kind, content_type=sniffed.content_type, total=total,
                sha256=digest.hexdigest(), deadline=deadline,
            )  # fmt: skip
        except BaseException:
            upload.abort()
            raise


def finish_upload(
    store: MediaStore,
    upload: Upload,
    *,
    url: str,
    kind: str,
    content_type: str,
    total: int,
    sha256: str,
    deadline: Deadline | None = None,
) -> Stored:
    """Complete ``upload`` only if no object is at its key; when one is (an earlier attempt or a
    duplicate finished first), abort ours and describe that one instead. The caller aborts on errors."""
    try:
        upload.complete()
    except ObjectExists as refused:
        upload.abort()  # complete() did already; harmless twice
        return stored_existing(
            store, refused, url=url, kind=kind, content_type=content_type, total=total, sha256=sha256,
            deadline=deadline,
        )  # fmt: skip
    return Stored(key=upload.key, kind=kind, content_type=content_type, bytes=total, sha256=sha256, source_url=url)


def stored_existing(
    store: MediaStore,
    refused: ObjectExists,
    *,
    url: str,
    kind: str,
    content_type: str,
    total: int,
    sha256: str,
    deadline: Deadline | None = None,
) -> Stored:
    """What to record when the store refused our object because one is at the key already (first writer
    wins): the existing object as it is stored. Its size comes from a HEAD; its SHA-256 is ours
    (``sha256``, over ``total`` bytes) when size and ETag show the same bytes, else it is read back from
    S3 (rare: a different variant or part size), checking the deadline after each chunk."""
    existing = store.head(refused.key)
    if existing is None:  # removed between the refusal and the HEAD: the next attempt writes it
        raise StorageUnavailable(f"{refused.key} was refused as existing, then not found; try again")
    same = existing.size == total and refused.etag is not None and existing.etag == refused.etag
    check = (lambda: deadline.check("hashing the stored object")) if deadline is not None else None
    digest = sha256 if same else store.sha256(refused.key, each_chunk=check)
    logger.info(
        "object already stored by an earlier writer; kept",
        extra={"key": refused.key, "bytes": existing.size, "same_bytes": digest == sha256 and existing.size == total},
    )
    return Stored(
        key=refused.key,
        kind=kind,
        content_type=existing.content_type or content_type,
        bytes=existing.size,
        sha256=digest,
        source_url=url,
    )


def check_status(url: str, response: httpx.Response, *, partial: bool = False) -> None:
    """A media response's status: 200/203 (206 when a byte range was asked for) go on; 401/403/404/410
    and other refusals are ``InvalidMedia`` (with the status, for the retry chain); 429/5xx are
    ``UpstreamUnavailable``."""
    status = response.status_code
    if status in (200, 203) or (partial and status == 206):
        return
    if status in (401, 403, 404, 410):
        raise InvalidMedia(f"{url} answered {status}", status=status)
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(f"{url} answered {status}")
    raise InvalidMedia(f"{url} answered {status}")


def int_or_none(value: str | None) -> int | None:
    """A header's integer value, None when absent or malformed."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
