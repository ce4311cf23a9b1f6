"""Schemathesis against the local stack's API, driven by the OpenAPI document the API serves itself.

For every operation in ``GET /openapi.json``, Hypothesis generates schema-valid (positive) and
schema-violating (negative) requests; each goes through the local API Gateway (API key check, proxy
event) into the API function, and its response is checked: no server error, a documented status code,
content type and body schema, invalid data rejected, no route answering without the key.

The stack here serves the API only (no worker, no schedule): fuzzed ``POST /jobs`` bodies are stored
and queued, never fetched, so nothing leaves the machine. Without a worker, ``GET /health`` correctly
reports "degraded" (503, with its reasons, a documented answer): that 503 is checked against its
schema and counted apart, not as a server error.

Figures are printed (run with ``-s``) and recorded in docs/security-tenants.md. The seed is fixed so a
run is reproducible; ``MEDIAVAULT_FUZZ_SEED`` and ``MEDIAVAULT_FUZZ_EXAMPLES`` explore further.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

FUZZ_KEY, FUZZ_TENANT = "fuzz-key-value", "fuzz-tenant"
EXAMPLES = int(os.environ.get("MEDIAVAULT_FUZZ_EXAMPLES", "100"))  # per operation and generation mode
SEED = int(os.environ.get("MEDIAVAULT_FUZZ_SEED", "20261122"))


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """moto with the template's resources, and the local API Gateway in front of the API function."""
    from mediavault_local.apiserver import LocalApi, routes_from_events
    from mediavault_local.lambda_runtime import FunctionInstance
    from mediavault_local.stack import LocalStack, StackOptions

    quiet = {"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalStack(StackOptions(root=ROOT, serve=False, write_state=False, extra_env=quiet)) as stack:
        spec = stack.template.function("ApiFunction")
        api_props = stack.template.resources["MediaVaultApi"]["Properties"]
        routes = routes_from_events(spec.events, default_key_required=bool(api_props["Auth"]["ApiKeyRequired"]))
        stage = str(stack.template.resolve(api_props["StageName"]))
        api = LocalApi(FunctionInstance(spec), routes, api_key=FUZZ_KEY, api_key_id=FUZZ_TENANT, stage=stage).start()
        try:
            yield api.url
        finally:
            api.stop()


@dataclass
class Tally:
    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    samples: dict[int, list[str]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    schema_violations: list[str] = field(default_factory=list)
    other_failures: list[str] = field(default_factory=list)
    degraded_health: int = 0

    def record(self, label: str, failures: list[Any]) -> None:
        for failure in failures:
            line = f"{label}: {failure.code} {failure.title}\n{failure.message[:1500]}"
            if failure.code == "ST101":
                self.server_errors.append(line)
            elif failure.code.startswith("ST1"):  # response conformance: status, content type, schema, headers
                self.schema_violations.append(line)
            else:
                self.other_failures.append(line)


def checks() -> list[Any]:
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
        negative_data_rejection,
        ignored_auth,
    ]


def fuzz(operation: Any, mode: Any, tally: Tally, api_url: str, *, examples: int = EXAMPLES, **fixed: Any) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    from schemathesis.core.failures import FailureGroup

    label = operation.label
    selected = checks()

    @with_seed(SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def run(case: Any) -> None:
        response = case.call(base_url=api_url, timeout=30)
        tally.cases[label] += 1
        tally.statuses[response.status_code] += 1
        if len(tally.samples.setdefault(response.status_code, [])) < 3:
            tally.samples[response.status_code].append(f"{case.as_curl_command()[:160]} -> {response.text[:80]}")
        if label == "GET /health" and response.status_code == 503:
            # The documented "degraded" answer (no worker here): its body must still match the schema.
            tally.degraded_health += 1
            body = response.json()
            assert body["healthy"] is False
            assert body["reasons"]
            in_use = [c for c in selected if c.__name__ != "not_a_server_error"]
        else:
            in_use = selected
        try:
            case.validate_response(response, checks=in_use)
        except FailureGroup as group:
            tally.record(label, list(group.exceptions))
        except AssertionError as failure:  # a single schemathesis Failure
            tally.record(label, [failure])

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()  # Unsatisfiable: nothing to negate (an operation without parameters or body)


def test_the_api_holds_its_openapi_document_under_fuzzing(api_url: str) -> None:
    from schemathesis import GenerationMode

    # Given the document the API serves, and the API key a client of the stack would use
    config = schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"apiKey": {"api_key": FUZZ_KEY}}},
            # The key is the client's to send, not data to fuzz; ignored_auth checks requests without it.
            "generation": {"with-security-parameters": False},
            # 413 (the body is over the limit) is a rejection too.
            "checks": {"negative_data_rejection": {"expected-statuses": ["400", "404", "409", "413", "415"]}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /jobs", "GET /jobs", "GET /jobs/{jobId}", "POST /jobs/{jobId}/retry", "POST /jobs/{jobId}/cancel",
        "GET /jobs/{jobId}/media", "GET /health",
    }  # fmt: skip

    # When every operation is fuzzed with valid and invalid data
    tally = Tally()
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, tally, api_url)
    # And the job routes once more with the ids of real jobs (random ids only ever reach the 404)
    with httpx.Client(base_url=api_url, headers={"x-api-key": FUZZ_KEY}, trust_env=False) as client:
        job_ids = [client.get("/jobs", params={"limit": 3}).json()["jobs"][i]["jobId"] for i in range(3)]
    for operation in (op for op in operations if "{jobId}" in op.path):
        for job_id in job_ids:
            fuzz(operation, GenerationMode.POSITIVE, tally, api_url, examples=5, path_parameters={"jobId": job_id})
    elapsed = time.monotonic() - started

    total = sum(tally.cases.values())
    print(f"\nschemathesis {schemathesis.__version__}: {len(operations)} operations, {total} cases in {elapsed:.1f}s "
          f"(up to {EXAMPLES} per operation and mode, seed {SEED})")  # fmt: skip
    for label, count in sorted(tally.cases.items()):
        print(f"  {label:<28} {count:>5} cases")
    print(f"  statuses: {dict(sorted(tally.statuses.items()))}")
    for status, lines in sorted(tally.samples.items()):
        for line in lines:
            print(f"    {status}: {line}")
    print(f"  server errors: {len(tally.server_errors)}, schema violations: {len(tally.schema_violations)}, "
          f"other check failures: {len(tally.other_failures)}, /health degraded (documented 503): "
          f"{tally.degraded_health}")  # fmt: skip

    # Then there is no server error, no response outside the document, and every other check held
    assert total >= len(operations) * 2
    assert not tally.server_errors, "\n\n".join(tally.server_errors[:5])
    assert not tally.schema_violations, "\n\n".join(tally.schema_violations[:5])
    assert not tally.other_failures, "\n\n".join(tally.other_failures[:5])
    assert not any(status >= 500 for status in tally.statuses if status != 503)
