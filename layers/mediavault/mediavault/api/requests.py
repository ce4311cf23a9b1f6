"""What the API accepts before any route runs: JSON bodies of a bounded size, and no body where a
route takes none. Each problem is a taxonomy error with a stable code and a sentence saying what to fix."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from mediavault.api.models import MAX_BODY_BYTES
from mediavault.errors import InvalidRequest, PayloadTooLarge

JSON_HINT = "send it as JSON with 'Content-Type: application/json' (curl: --json '{\"url\": \"https://...\"}')"


def is_json_content_type(value: str | None) -> bool:
    """No content type, or ``application/json`` (with parameters such as a charset)."""
    if not value or not value.strip():
        return True
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def check_body_size(text: str | None) -> None:
    if text and len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY_BYTES} bytes; send one post URL per request")


def parse_json_body(text: str) -> Any:
    """The JSON body of a request (the resolver's deserializer): size first, then syntax."""
    check_body_size(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            'send a JSON object like {"url": "https://..."}'
        ) from None
    except RecursionError:
        raise InvalidRequest("the request body is nested too deeply; send a flat JSON object") from None


def raw_body(body: str | None, *, base64_encoded: bool) -> bytes:
    if not body:
        return b""
    if not base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body)
    except (binascii.Error, ValueError):
        return body.encode()


def check_no_body(body: str | None, *, base64_encoded: bool, route: str) -> None:
    """Routes that take no body refuse one (an empty JSON object or ``null`` is tolerated)."""
    data = raw_body(body, base64_encoded=base64_encoded)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"{route} takes no request body, and this one is larger than {MAX_BODY_BYTES} bytes")
    if data.strip() in (b"", b"{}", b"null"):
        return
    raise InvalidRequest(f"{route} takes no request body; send none")


def check_query(names: Iterable[str], *, allowed: Iterable[str], route: str) -> None:
    """Unknown query parameters are refused like unknown body fields (a typo is not silently ignored)."""
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise InvalidRequest(f"unknown query parameter {shown}; {route} takes {takes}")
