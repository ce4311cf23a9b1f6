"""When a signed media URL stops working, read from the URL itself.

CDNs put the expiry in the query string: CloudFront ``Expires=<epoch>``, S3 SigV4
``X-Amz-Date`` + ``X-Amz-Expires``, S3 SigV2 / Google ``Expires``, Meta's CDNs ``oe=<hex epoch>``,
Akamai-style ``exp=`` / ``expires=`` and ``hdnts=...~exp=<epoch>~...``, Google video ``expire=``.
A URL whose signature has expired is not fetched again: a fresh one has to be extracted.
"""

from __future__ import annotations

import calendar
import time
from urllib.parse import parse_qsl, urlsplit

__all__ = ["expires_at", "is_expired"]

_EPOCH_KEYS = ("expires", "expire", "exp", "x-expires", "e")


def expires_at(url: str) -> float | None:
    """The epoch second the URL's signature expires, when the URL says; else None."""
    query = dict((k.lower(), v) for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True))
    amz_date, amz_expires = query.get("x-amz-date"), query.get("x-amz-expires")
    if amz_date and amz_expires:
        try:
            signed = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
            return float(signed + int(amz_expires))
        except ValueError:
            return None
    if "oe" in query:
        try:
            return float(int(query["oe"], 16))
        except ValueError:
            return None
    token = query.get("hdnts") or query.get("__token__")
    if token:
        for field in token.split("~"):
            name, _, value = field.partition("=")
            if name == "exp" and value.isdigit():
                return float(value)
    for key in _EPOCH_KEYS:
        epoch = query.get(key)
        # Ten digits is an epoch second from 2001 to 2286; anything else is not a timestamp.
        if epoch and epoch.isdigit() and len(epoch) == 10:
            return float(epoch)
    return None


def is_expired(url: str, *, now: float, margin: float = 30.0) -> bool:
    """True when the URL's own expiry is in the past (or within ``margin`` seconds of now)."""
    expiry = expires_at(url)
    return expiry is not None and expiry <= now + margin
