"""End-to-end fixtures: Debian's Chromium, the sample site, the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM, ROOT, clear_worker_state, site_host


@pytest.fixture(scope="session", autouse=True)
def _need_chromium() -> None:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed: run ./scripts/install-chromium.sh (make setup does)")


@pytest.fixture(scope="module")
def module_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mediavault_local.samples import SampleSite, generate_media

    media = ROOT / ".mediavault" / "samples"
    generate_media(media)
    with SampleSite(media, generate=False) as site:
        yield site


# A second API key (a second tenant) served by the local stack beside its own key (tenant "local-key").
TENANT_B_KEY, TENANT_B = "tenant-b-key-value", "tenant-b"


@pytest.fixture(scope="module")
def stack(module_site: Any) -> Iterator[Any]:
    from mediavault_local.stack import LocalStack, StackOptions

    options = StackOptions(
        root=ROOT,
        egress_allow=[site_host(module_site)],
        write_state=False,
        schedule_every=3600,  # tests trigger recovery themselves
        api_keys={TENANT_B_KEY: TENANT_B},
    )
    with LocalStack(options) as running:
        yield running


def repo_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)


@pytest.fixture
def worker(aws: dict[str, Any], sample_site: Any, function: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The worker handler in this process (moto's mock_aws, Debian's Chromium), allowed to fetch the sample site."""
    from mediavault import deps

    monkeypatch.setenv("MEDIAVAULT_EGRESS_ALLOW", site_host(sample_site))
    monkeypatch.setenv("MEDIAVAULT_CHROMIUM_PATH", str(CHROMIUM))
    deps.reset()
    clear_worker_state()
    yield function("WorkerFunction")
    clear_worker_state()
