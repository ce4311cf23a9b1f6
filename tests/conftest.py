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

from mediavault_local.lambda_runtime import FunctionInstance, LocalContext
from mediavault_local.template import Template

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
