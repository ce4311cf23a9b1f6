"""Which platform a URL belongs to, and parsing of what its pages and JSON say (pure, no browser).

Each supported platform is a module with the same small interface (:class:`PlatformModule`); the
registry (:class:`Platforms`) recognises URLs by host and path and knows, per deployment, the extra
hosts a platform answers to (a self-hosted mirror, a fixture site on loopback) and the base URL of
the JSON endpoint its fast path calls. Everything else is ``generic``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from mediavault.platforms.base import PostInfo

__all__ = ["GENERIC", "PlatformModule", "Platforms", "PostInfo", "PostRef"]

GENERIC = "generic"
_MODULES = ("mediavault.platforms.x", "mediavault.platforms.bluesky")

#: ``get_json(url) -> (HTTP status, parsed JSON or None)``: how a fast path reads a JSON endpoint.
GetJson = Callable[[str], tuple[int, Any]]


class PlatformModule(Protocol):
    """What a platform module provides (module-level names)."""

    NAME: str
    HOSTS: frozenset[str]
    API_BASE: str
    REFRESH_ON_403: bool

    def post_id(self, path: str) -> str | None: ...
    def canonical_url(self, post_id: str) -> str: ...
    def fast_path(self, post_id: str, api_base: str, get_json: GetJson) -> PostInfo | None: ...
    def parse_page_json(self, response_url: str, data: Any, post_id: str) -> PostInfo | None: ...


@dataclass(frozen=True, slots=True)
class PostRef:
    """A URL as the registry understands it."""

    url: str  # the URL as submitted (normalised)
    platform: str  # "generic" when no platform claims it
    post_id: str | None = None
    module: PlatformModule | None = None
    api_base: str | None = None
    configured_host: bool = False  # the host is one the deployment added (mirror, fixture site)

    @property
    def archive_key(self) -> str | None:
        """What makes two URLs the same post: ``<platform>:<post id>`` (None: only the URL says)."""
        return f"{self.platform}:{self.post_id}" if self.post_id else None

    @property
    def page_url(self) -> str:
        """The page a browser opens: the platform's canonical page for a known public host (mirror
        hosts such as fxtwitter.com lead to the original), the URL itself on a configured host."""
        if self.module is not None and self.post_id and not self.configured_host:
            return self.module.canonical_url(self.post_id)
        return self.url


def _load_modules() -> list[PlatformModule]:
    loaded: list[ModuleType] = [importlib.import_module(name) for name in _MODULES]
    return [cast(PlatformModule, module) for module in loaded]


class Platforms:
    """The registry for one deployment (``MEDIAVAULT_PLATFORM_HOSTS`` / ``MEDIAVAULT_PLATFORM_API``)."""

    def __init__(
        self,
        hosts: Mapping[str, Iterable[str]] | None = None,
        api: Mapping[str, str] | None = None,
        modules: Iterable[PlatformModule] | None = None,
    ) -> None:
        self._modules = {m.NAME: m for m in (modules if modules is not None else _load_modules())}
        extra = {name: frozenset(h.lower() for h in items) for name, items in (hosts or {}).items()}
        unknown = set(extra) - set(self._modules)
        if unknown:
            raise ValueError(f"unknown platform(s) in the platform hosts: {', '.join(sorted(unknown))}")
        self._extra = extra
        self._api = dict(api or {})
        unknown = set(self._api) - set(self._modules)
        if unknown:
            raise ValueError(f"unknown platform(s) in the platform API bases: {', '.join(sorted(unknown))}")

    @property
    def names(self) -> list[str]:
        return sorted(self._modules)

    def module(self, name: str) -> PlatformModule | None:
        return self._modules.get(name)

    def api_base(self, name: str) -> str:
        return self._api.get(name) or self._modules[name].API_BASE

    def recognise(self, url: str) -> PostRef:
        """The platform and post id of ``url`` (``generic`` when none claims it)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        netloc = f"{host}:{parts.port}" if parts.port else host
        for name, module in self._modules.items():
            configured = netloc in self._extra.get(name, ()) or host in self._extra.get(name, ())
            if not configured and host not in module.HOSTS:
                continue
            post_id = module.post_id(parts.path or "/")
            return PostRef(
                url=url, platform=name, post_id=post_id, module=module, api_base=self.api_base(name),
                configured_host=configured,
            )  # fmt: skip
        return PostRef(url=url, platform=GENERIC)
