"""The local stack honours MEDIAVAULT_PLATFORM_HOSTS / MEDIAVAULT_PLATFORM_API from the shell: a
fixture site on loopback stands in for X, reached by the workers' egress policy, and the archive
semantics hold over HTTP (one post, one job, whatever URL names it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediavault_local.samples.xsite import XSite
from tests.conftest import ROOT
from tests.e2e.test_local_stack import api, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def xstack(sample_media: Path) -> Iterator[tuple[Any, XSite]]:
    from mediavault_local.stack import LocalStack, StackOptions

    with XSite(sample_media) as xsite, pytest.MonkeyPatch.context() as env:
        # As a user would: exported in the shell that runs `mediavault local up`.
        env.setenv("MEDIAVAULT_PLATFORM_HOSTS", f"x={xsite.netloc}")
        env.setenv("MEDIAVAULT_PLATFORM_API", f"x={xsite.base_url}")
        env.delenv("MEDIAVAULT_EGRESS_ALLOW", raising=False)
        options = StackOptions(root=ROOT, write_state=False, schedule_every=3600)
        with LocalStack(options) as stack:
            yield stack, xsite


def test_an_x_post_on_a_configured_host_is_archived_once_whatever_url_names_it(
    xstack: tuple[Any, XSite],
) -> None:
    stack, xsite = xstack
    assert stack.env["MEDIAVAULT_PLATFORM_HOSTS"] == f"x={xsite.netloc}"
    assert xsite.netloc in stack.env["MEDIAVAULT_EGRESS_ALLOW"].split(",")
    post_id = "1790100000000000003"  # 4 photos, a video and a GIF
    with api(stack) as client:
        created = client.post("/jobs", json={"url": xsite.post_url(post_id)})
        assert created.status_code == 202, created.text
        assert created.json()["platform"] == "x"
        job = wait_for(client, created.json()["jobId"])
        assert job["status"] == "completed", job
        assert [m["kind"] for m in job["media"]] == ["photo"] * 4 + ["video", "gif"]
        assert [m["key"].rsplit("/", 1)[1].split(".")[0] for m in job["media"]] == [
            f"{job['jobId']}-{n}" for n in range(1, 7)
        ]
        # The same post under the /i/status/ form: the existing job, not a new download
        again = client.post("/jobs", json={"url": xsite.url(f"/i/status/{post_id}")})
        assert (again.status_code, again.json()["jobId"]) == (200, job["jobId"])
        forced = client.post("/jobs", json={"url": xsite.url(f"/i/status/{post_id}"), "force": True})
        assert forced.status_code == 202
        assert forced.json()["jobId"] != job["jobId"]
