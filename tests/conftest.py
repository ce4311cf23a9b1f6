"""Fixtures shared by every kind of test: the repository, sample events, a Lambda context, the
template's resources in moto, the sample site."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Powertools reads these when its objects are created (at import): set them before anything imports them,
# as template.yaml's Globals do for the deployed functions.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mediavault")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MediaVault")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

import boto3
from moto import mock_aws

from mediavault import deps
from mediavault_local.lambda_runtime import FunctionInstance, LocalContext
from mediavault_local.provision import provision
from mediavault_local.stack import LOCAL_ENV
from mediavault_local.template import REGION, Template

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def template() -> Template:
    return Template(ROOT / "template.yaml")


@pytest.fixture
def load_event() -> Callable[..., dict[str, Any]]:
    """A sample event from events/ (the ones `sam local invoke` uses), optionally with its body replaced."""

    def load(name: str, **body_updates: Any) -> dict[str, Any]:
        event = json.loads((EVENTS / name).read_text())
        if body_updates and "Records" in event:
            for record in event["Records"]:
                record["body"] = json.dumps({**json.loads(record["body"]), **body_updates})
        elif body_updates:
            event["body"] = json.dumps({**json.loads(event["body"] or "{}"), **body_updates})
        return event

    return load


@pytest.fixture
def lambda_context(template: Template) -> LocalContext:
    return LocalContext(template.function("ApiFunction"))


@pytest.fixture
def function(template: Template) -> Callable[[str], FunctionInstance]:
    """A fresh, isolated instance of a function's handler module (like a new warm container)."""
    return lambda logical_id: FunctionInstance(template.function(logical_id))


@pytest.fixture(scope="session")
def sample_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mediavault_local.samples import generate_media

    cached = ROOT / ".mediavault" / "samples"
    directory = cached if cached.is_dir() else tmp_path_factory.mktemp("media")
    generate_media(directory)
    return directory


@pytest.fixture
def sample_site(sample_media: Path) -> Iterator[Any]:
    from mediavault_local.samples import SampleSite

    with SampleSite(sample_media, generate=False) as site:
        yield site


def site_host(site: Any) -> str:
    return str(site.base_url).split("//", 1)[1].rstrip("/")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, template: Template) -> Iterator[dict[str, Any]]:
    """moto started before any client exists; table, queues and bucket created from template.yaml;
    the functions' environment set as the template sets it."""
    for key, value in LOCAL_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MediaVault")
    with mock_aws():
        fresh = Template(template.path)
        physical = provision(fresh, boto3.session.Session(region_name=REGION))
        env: dict[str, str] = {}
        for logical_id in fresh.functions():
            env.update(fresh.function(logical_id).environment)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        deps.reset()
        clear_worker_state()
        yield {"physical": physical, "env": env, "template": fresh}
        clear_worker_state()
        deps.reset()


@pytest.fixture(autouse=True)
def _clear_metrics() -> Iterator[None]:
    from mediavault.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def clear_worker_state() -> None:
    import sys

    runtime = sys.modules.get("mediavault.worker.runtime")
    if runtime is not None:
        runtime.reset_worker_deps()
    browser = sys.modules.get("mediavault.worker.browser")
    if browser is not None:  # Playwright's sync API owns this thread's event loop until it stops
        browser.close_thread_session()
