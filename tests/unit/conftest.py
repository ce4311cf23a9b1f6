"""Unit-test fixtures: a clean environment per test and the in-memory fakes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mediavault.config import reset_settings
from mediavault.observability import metrics
from tests.unit.fakes import FakeClock, FakeQueue, FakeStore, InMemoryJobRepository


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MEDIAVAULT_* variable of the developer's shell leaks into a test; metrics start empty."""
    for name in list(os.environ):
        if name.startswith("MEDIAVAULT_"):
            monkeypatch.delenv(name)
    reset_settings()
    metrics.clear_metrics()
    yield
    reset_settings()
    metrics.clear_metrics()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo() -> InMemoryJobRepository:
    return InMemoryJobRepository()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()
