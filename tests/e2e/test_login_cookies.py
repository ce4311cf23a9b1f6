"""Login cookies: per tenant from Secrets Manager (or a local file), used for the post, never leaked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from mediavault.logins import FileCookies, LoginCookie, parse_cookies
from mediavault_local.samples.site import MEMBER_COOKIE
from tests.conftest import site_host

pytestmark = pytest.mark.e2e

SECRET_VALUE = MEMBER_COOKIE[1]


def netscape(site: Any) -> str:
    host = site_host(site).split(":")[0]
    return f"# Netscape HTTP Cookie File\n{host}\tFALSE\t/\tFALSE\t0\t{MEMBER_COOKIE[0]}\t{MEMBER_COOKIE[1]}\n"


def test_a_members_only_post_is_archived_with_its_tenants_cookies_and_only_theirs(
    worker: Any, aws: dict[str, Any], sample_site: Any, load_event: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given tenant "members" has login cookies in Secrets Manager, under the template's prefix
    prefix = aws["env"]["MEDIAVAULT_COOKIES_SECRET_PREFIX"]
    boto3.client("secretsmanager").create_secret(Name=f"{prefix}members", SecretString=netscape(sample_site))
    url = sample_site.url("/posts/members")

    # When both tenants ask for the members-only post
    for tenant in ("members", "other"):
        event = load_event("sqs_url_only.json", url=url, tenantId=tenant)
        event["Records"][0]["messageId"] = f"login-{tenant}"
        assert worker.invoke(event) == {"batchItemFailures": []}

    # Then the tenant with cookies got the video, the other got POST_UNAVAILABLE (the site answered 403)
    table = boto3.resource("dynamodb").Table(aws["env"]["MEDIAVAULT_TABLE"])
    jobs = {i["tenantId"]: i for i in table.scan()["Items"] if not i["jobId"].startswith("heartbeat#")}
    assert jobs["members"]["status"] == "completed"
    assert jobs["members"]["media"][0]["sourceUrl"].endswith("clip-720p.mp4")
    assert (jobs["other"]["status"], jobs["other"]["error"]["code"]) == ("failed", "POST_UNAVAILABLE")

    # And the cookie's value is nowhere: not in job records, info.json, stored objects' keys or the logs
    s3 = boto3.client("s3")
    bucket = aws["env"]["MEDIAVAULT_BUCKET"]
    stored = [
        s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
        if o["Key"].endswith(".json")
    ]
    out, err = capfd.readouterr()
    for text in (json.dumps(table.scan()["Items"], default=str), *(b.decode() for b in stored), out, err):
        assert SECRET_VALUE not in text


def test_cookie_formats_and_the_local_file(tmp_path: Path, sample_site: Any) -> None:
    # Netscape (with an HttpOnly line) and JSON parse to the same cookies; values never show in repr
    text = netscape(sample_site) + "#HttpOnly_.example.com\tTRUE\t/\tTRUE\t0\tsid\tabc\n"
    cookies = parse_cookies(text)
    assert [(c.name, c.http_only, c.secure) for c in cookies] == [(MEMBER_COOKIE[0], False, False), ("sid", True, True)]
    assert SECRET_VALUE not in repr(cookies)
    as_json = json.dumps([{"name": c.name, "value": c.value, "domain": c.domain} for c in cookies])
    assert [c.value for c in parse_cookies(as_json)] == [c.value for c in cookies]
    # A local file can hold one set per tenant
    path = tmp_path / "cookies.json"
    path.write_text(json.dumps({"members": text}))
    assert FileCookies(str(path)).for_tenant("members")[0] == LoginCookie(
        name=MEMBER_COOKIE[0], value=MEMBER_COOKIE[1], domain=site_host(sample_site).split(":")[0]
    )
    assert FileCookies(str(path)).for_tenant("other") == []
