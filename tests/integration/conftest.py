"""Integration fixtures: the template's resources inside moto's ``mock_aws``, the environment the
template gives the functions, and clean Powertools/package state around every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from mediavault import deps
from moto import mock_aws

from mediavault_local.provision import provision
from mediavault_local.stack import _LOCAL_ENV
from mediavault_local.template import REGION, Template


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, template: Template) -> Iterator[dict[str, Any]]:
    """moto started before any client exists; table, queues and bucket created from template.yaml;
    the functions' environment set as the template sets it."""
    for key, value in _LOCAL_ENV.items():
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
        _clear_worker_state()
        yield {"physical": physical, "env": env, "template": fresh}
        _clear_worker_state()
        deps.reset()


@pytest.fixture(autouse=True)
def _clear_metrics() -> Iterator[None]:
    from mediavault.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def _clear_worker_state() -> None:
    import sys

    runtime = sys.modules.get("mediavault.worker.runtime")
    if runtime is not None:
        runtime.reset_worker_deps()
