"""The warm browser session: a context per job, and the spare one prepared between jobs is fresh."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mediavault.safety.egress import EgressPolicy
from mediavault.worker.browser import BrowserSession
from tests.conftest import CHROMIUM

pytestmark = pytest.mark.e2e


@pytest.fixture
def session() -> Iterator[BrowserSession]:
    running = BrowserSession(policy=EgressPolicy(), executable_path=str(CHROMIUM))
    yield running
    running.close()


def test_a_cold_session_prepares_nothing_until_its_browser_was_needed(session: BrowserSession) -> None:
    session.prewarm()  # no job has launched the browser yet: stays lazy
    assert session.launches == 0


def test_the_spare_context_is_used_by_the_next_job_and_carries_nothing_of_the_previous(
    session: BrowserSession,
) -> None:
    # Given a job whose context held a login cookie
    with session.context() as first:
        first.add_cookies([{"name": "session", "value": "tenant-a", "domain": "example.com", "path": "/"}])
        session.page(first).set_content("<p>job one</p>")
    # When the worker prepares the next context between jobs
    session.prewarm()
    spare = session._spare
    assert spare is not None
    # Then the next job gets exactly that context, with its page, and nothing of the first job
    with session.context() as second:
        assert second is spare[0]
        page = session.page(second)
        assert page is spare[1]
        assert second.cookies() == []
        assert page.url == "about:blank"
    assert session.launches == 1
    # ...and a context that was handed out is closed after its job, never handed out again
    assert session._spare is None


def test_closing_the_session_closes_the_spare_too(session: BrowserSession) -> None:
    with session.context():
        pass
    session.prewarm()
    browser = session.browser
    session.close()
    assert not browser.is_connected()
    assert session._spare is None
