"""Login cookies for posts that need a signed-in viewer, per tenant, never logged.

On AWS they live in Secrets Manager, one secret per tenant named ``<MEDIAVAULT_COOKIES_SECRET_PREFIX><tenantId>``
(read with Powertools Parameters, cached for five minutes). Locally, ``MEDIAVAULT_COOKIES_FILE`` names a
file instead. Either holds a Netscape ``cookies.txt`` or JSON (a list of cookies, ``{"cookies": [...]}``,
or — in the file only — ``{"<tenantId>": <either form>}``). No tenant configured: no cookies.

A :class:`LoginCookie` hides its value from ``repr``; the worker hands cookies to the browser context and
to the downloads of that job only; they are never written to logs, job records, ``info.json`` or errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mediavault.errors import InvalidRequest, StorageUnavailable


class LoginCookiesInvalid(InvalidRequest):
    """The configured login cookies cannot be read (the value itself is never shown)."""

    code = "LOGIN_COOKIES_INVALID"


@dataclass(frozen=True)
class LoginCookie:
    name: str
    value: str = field(repr=False)
    domain: str
    path: str = "/"
    secure: bool = False
    http_only: bool = False
    expires: float | None = None

    def for_playwright(self) -> dict[str, Any]:
        cookie: dict[str, Any] = {
            "name": self.name, "value": self.value, "domain": self.domain, "path": self.path,
            "secure": self.secure, "httpOnly": self.http_only,
        }  # fmt: skip
        if self.expires:
            cookie["expires"] = self.expires
        return cookie


class CookieSource(Protocol):
    def for_tenant(self, tenant_id: str) -> list[LoginCookie]: ...


class NoCookies:
    def for_tenant(self, tenant_id: str) -> list[LoginCookie]:
        return []


def parse_cookies(text: str) -> list[LoginCookie]:
    """Cookies from a Netscape ``cookies.txt`` or from JSON; raises :class:`LoginCookiesInvalid`."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except ValueError:
            raise LoginCookiesInvalid("login cookies are not valid JSON") from None
        return _from_json(data)
    return _from_netscape(stripped)


def _from_json(data: Any) -> list[LoginCookie]:
    items = data.get("cookies") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise LoginCookiesInvalid("login cookies must be a list of cookies")
    cookies = []
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("name", "value", "domain")):
            raise LoginCookiesInvalid("each login cookie needs string name, value and domain")
        expires = item.get("expires", item.get("expirationDate"))
        cookies.append(
            LoginCookie(
                name=item["name"],
                value=item["value"],
                domain=item["domain"],
                path=str(item.get("path") or "/"),
                secure=bool(item.get("secure", False)),
                http_only=bool(item.get("httpOnly", item.get("http_only", False))),
                expires=float(expires) if isinstance(expires, int | float) and expires > 0 else None,
            )
        )
    return cookies


def _from_netscape(text: str) -> list[LoginCookie]:
    cookies = []
    for number, line in enumerate(text.splitlines(), start=1):
        http_only = line.startswith("#HttpOnly_")
        if http_only:
            line = line.removeprefix("#HttpOnly_")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise LoginCookiesInvalid(f"line {number} of the cookies file does not have 7 tab-separated fields")
        domain, _subdomains, path, secure, expires, name, value = fields
        cookies.append(
            LoginCookie(
                name=name, value=value, domain=domain, path=path or "/", secure=secure.upper() == "TRUE",
                http_only=http_only, expires=float(expires) if expires.isdigit() and int(expires) > 0 else None,
            )
        )  # fmt: skip
    return cookies


class SecretsManagerCookies:
    """One secret per tenant; a tenant without a secret has no cookies."""

    def __init__(self, prefix: str, *, max_age: int = 300) -> None:
        self._prefix = prefix
        self._max_age = max_age

    def for_tenant(self, tenant_id: str) -> list[LoginCookie]:
        from aws_lambda_powertools.utilities import parameters
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            secret = parameters.get_secret(self._prefix + tenant_id, max_age=self._max_age)
        except parameters.exceptions.GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == (
                "ResourceNotFoundException"
            ):
                return []
            if isinstance(cause, ClientError | BotoCoreError):
                raise StorageUnavailable("login cookies could not be read from Secrets Manager") from None
            raise LoginCookiesInvalid("login cookies could not be read") from None
        return parse_cookies(secret if isinstance(secret, str) else bytes(secret).decode())


class FileCookies:
    """Local runs: one file for every tenant, or ``{"<tenantId>": ...}`` per tenant."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)

    def for_tenant(self, tenant_id: str) -> list[LoginCookie]:
        try:
            text = self._path.read_text()
        except OSError:
            raise LoginCookiesInvalid(f"the cookies file {self._path} cannot be read") from None
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise LoginCookiesInvalid("the cookies file is not valid JSON") from None
            if isinstance(data, dict) and "cookies" not in data:
                entry = data.get(tenant_id)
                return [] if entry is None else parse_cookies(entry if isinstance(entry, str) else json.dumps(entry))
        return parse_cookies(text)


def cookie_source(*, secret_prefix: str | None, file: str | None) -> CookieSource:
    if file:
        return FileCookies(file)
    if secret_prefix:
        return SecretsManagerCookies(secret_prefix)
    return NoCookies()
