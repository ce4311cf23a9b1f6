"""Checks of template.yaml, the single source of truth for the cloud.

Three tool checks (cfn-lint, `sam validate --lint`, `sam build` of the zip functions and the layer)
and structural assertions read straight from the template: the queue/worker timing rules, the
bucket and table hardening, least-privilege IAM, API keys, and the names the code relies on
(CONTRACT: logical IDs, environment variables, API routes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

TEMPLATE_RUNTIME = "python3.13"
LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"

# Set only by the local stack, never in the cloud (CONTRACT "Local only").
LOCAL_ONLY_ENV = ("MEDIAVAULT_EGRESS_ALLOW", "MEDIAVAULT_CHROMIUM_PATH", "AWS_ENDPOINT_URL")

KEYLESS_ROUTES = {("get", "/health"), ("get", "/openapi.json")}
API_ROUTES = {
    ("post", "/jobs"),
    ("get", "/jobs"),
    ("get", "/jobs/{jobId}"),
    ("post", "/jobs/{jobId}/retry"),
    ("post", "/jobs/{jobId}/cancel"),
    ("get", "/jobs/{jobId}/media"),
    *KEYLESS_ROUTES,
}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    # cfn-lint's loader understands the short-form intrinsics (!Ref, !Sub, !GetAtt, !If ...)
    # and returns them in long form ({"Ref": ...}, {"Fn::GetAtt": [...]}).
    return cfn_yaml.load(str(TEMPLATE))


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    assert logical_id in template["Resources"], f"template.yaml has no resource {logical_id}"
    return template["Resources"][logical_id]


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return resource(template, logical_id).get("Properties", {})


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"}


def function_prop(template: dict[str, Any], logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals.Function like SAM does."""
    own = props(template, logical_id)
    if name in own:
        return own[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def getatt(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        return target[0], target[1]
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement the template writes itself: function inline policies, IAM
    resources, bucket/queue policies."""
    for name, res in template["Resources"].items():
        p = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function":
            for policy in as_list(p.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    for statement in as_list(policy["Statement"]):
                        yield name, statement
        for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
            if isinstance(p.get(key), dict):
                for statement in as_list(p[key].get("Statement", [])):
                    yield name, statement
        for policy in p.get("Policies", []) if res["Type"].startswith("AWS::IAM::") else []:
            for statement in as_list(policy.get("PolicyDocument", {}).get("Statement", [])):
                yield name, statement


def find_sam() -> str | None:
    candidates = [os.environ.get("MEDIAVAULT_SAM"), str(ROOT / ".venv-sam" / "bin" / "sam")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("sam")


def sam_env() -> dict[str, str]:
    """Offline-friendly environment for the SAM CLI: a region, dummy credentials, no telemetry,
    and nothing pointing boto3 at the local stack."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MEDIAVAULT_")) and k not in ("SAM_CLI_TELEMETRY",)
    }
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
        # lambda-builders looks up `pythonX.Y` on PATH: put this interpreter (with pip) first.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


@pytest.fixture(scope="module")
def sam() -> str:
    binary = find_sam()
    if binary is None:
        pytest.skip(
            "SAM CLI not found (set MEDIAVAULT_SAM, or install it into .venv-sam with "
            "`python -m venv .venv-sam && .venv-sam/bin/pip install aws-sam-cli`, or put `sam` on PATH)"
        )
    return binary


def run(cmd: list[str], *, cwd: Path, timeout: int, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = f"$ {' '.join(cmd)}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{output}"
    return output


# --------------------------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------------------------


def test_cfn_lint_has_no_findings() -> None:
    # Same as `cfn-lint template.yaml` (reads .cfnlintrc if present), with this interpreter.
    cmd = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]
    proc = subprocess.run(
        [*cmd, "--", "template.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    findings = f"cfn-lint findings (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
    assert proc.returncode == 0, findings
    assert not proc.stdout.strip(), findings


def test_sam_validate_lint(sam: str) -> None:
    run([sam, "validate", "--lint", "--template-file", str(TEMPLATE)], cwd=ROOT, timeout=300, env=sam_env())


@pytest.mark.timeout(1200)
def test_sam_build_zip_functions_and_layer(sam: str, tmp_path: Path) -> None:
    """`sam build` of everything but the worker image (no Docker here).

    The template targets python3.13; this machine may have another Python, and SAM's Python
    builder needs an interpreter of the runtime's exact version. So a copy of the template in
    tmp has its runtimes rewritten to the local interpreter's - for local packaging only; the
    deployed runtime stays python3.13.
    """
    # Given a copy of the sources the zip functions and the layer are built from
    for handler in ("functions/api/app.py", "functions/recovery/app.py"):
        assert (ROOT / handler).is_file(), f"{handler} is missing: nothing to package"
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for rel in ("functions/api", "functions/recovery", "layers/mediavault"):
        shutil.copytree(ROOT / rel, src / rel, ignore=ignore)
    text = TEMPLATE.read_text()
    assert TEMPLATE_RUNTIME in text, f"template.yaml no longer targets {TEMPLATE_RUNTIME}"
    note = (
        f"runtime rewritten for local packaging: {TEMPLATE_RUNTIME} -> {LOCAL_RUNTIME} "
        f"(Runtime, CompatibleRuntimes, BuildMethod) in a tmp copy; template.yaml is unchanged"
    )
    if LOCAL_RUNTIME != TEMPLATE_RUNTIME:
        text = text.replace(TEMPLATE_RUNTIME, LOCAL_RUNTIME)
        print(note)
    (src / "template.yaml").write_text(text)
    build_dir = tmp_path / "build"

    # When sam builds it (pip reads layers/mediavault/requirements.txt from PyPI)
    output = run(
        [
            sam, "build",
            "--template-file", str(src / "template.yaml"),
            "--build-dir", str(build_dir),
            "--exclude", "WorkerFunction",
        ],
        cwd=src,
        timeout=1100,
        env=sam_env(),
    )  # fmt: skip

    # Then the functions carry their handlers and the layer carries the package and its deps
    context = f"{note}\n{output}"
    for function in ("ApiFunction", "RecoveryFunction"):
        assert (build_dir / function / "app.py").is_file(), f"{function}/app.py not built\n{context}"
    layer = build_dir / "MediaVaultLayer" / "python"
    assert (layer / "mediavault" / "__init__.py").is_file(), f"layer lacks mediavault\n{context}"
    for dependency in ("aws_lambda_powertools", "pydantic", "pydantic_settings", "httpx"):
        assert (layer / dependency).is_dir(), f"layer lacks {dependency}\n{context}"
    assert not (layer / "playwright").exists(), "playwright belongs in the worker image, not the layer"
    assert not (build_dir / "WorkerFunction").exists(), "the worker image must not be built here"


# --------------------------------------------------------------------------------------------
# the contract: names the code relies on
# --------------------------------------------------------------------------------------------


def test_logical_ids_and_types_match_the_contract(template: dict[str, Any]) -> None:
    expected = {
        "MediaVaultApi": "AWS::Serverless::Api",
        "ApiFunction": "AWS::Serverless::Function",
        "WorkerFunction": "AWS::Serverless::Function",
        "RecoveryFunction": "AWS::Serverless::Function",
        "MediaVaultLayer": "AWS::Serverless::LayerVersion",
        "JobsTable": "AWS::DynamoDB::Table",
        "JobsQueue": "AWS::SQS::Queue",
        "JobsDeadLetterQueue": "AWS::SQS::Queue",
        "MediaBucket": "AWS::S3::Bucket",
    }
    for logical_id, type_ in expected.items():
        assert resource(template, logical_id)["Type"] == type_


def test_global_environment_matches_the_contract(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == {
        "POWERTOOLS_SERVICE_NAME": "mediavault",
        "POWERTOOLS_METRICS_NAMESPACE": "MediaVault",
        "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
        "MEDIAVAULT_TABLE": {"Ref": "JobsTable"},
        "MEDIAVAULT_QUEUE_URL": {"Ref": "JobsQueue"},
        "MEDIAVAULT_DLQ_URL": {"Ref": "JobsDeadLetterQueue"},
        "MEDIAVAULT_BUCKET": {"Ref": "MediaBucket"},
        "MEDIAVAULT_MAX_ATTEMPTS": "5",
        "MEDIAVAULT_DEFAULT_TENANT": {"Ref": "DefaultTenant"},
    }
    assert template["Globals"]["Function"]["Tracing"] == "Active"


def test_zip_functions_use_the_layer_and_python313(template: dict[str, Any]) -> None:
    for name, code_uri in (("ApiFunction", "functions/api/"), ("RecoveryFunction", "functions/recovery/")):
        p = props(template, name)
        assert p["CodeUri"] == code_uri
        assert p["Handler"] == "app.lambda_handler"
        assert p["Runtime"] == TEMPLATE_RUNTIME
        assert p["Layers"] == [{"Ref": "MediaVaultLayer"}]
    layer = resource(template, "MediaVaultLayer")
    assert layer["Properties"]["ContentUri"] == "layers/mediavault/"
    assert layer["Properties"]["CompatibleRuntimes"] == [TEMPLATE_RUNTIME]
    assert layer["Metadata"]["BuildMethod"] == TEMPLATE_RUNTIME


def test_api_routes_match_the_contract(template: dict[str, Any]) -> None:
    routes = set()
    for event in props(template, "ApiFunction")["Events"].values():
        assert event["Type"] == "Api"
        assert event["Properties"]["RestApiId"] == {"Ref": "MediaVaultApi"}
        routes.add((event["Properties"]["Method"].lower(), event["Properties"]["Path"]))
    assert routes == API_ROUTES


def test_worker_image_is_wired_to_the_dockerfile(template: dict[str, Any]) -> None:
    worker = resource(template, "WorkerFunction")
    assert worker["Properties"]["PackageType"] == "Image"
    for forbidden in ("Runtime", "Handler", "Layers", "CodeUri"):
        assert forbidden not in worker["Properties"], f"an image function cannot set {forbidden}"
    metadata = worker["Metadata"]
    context = ROOT / metadata["DockerContext"]
    dockerfile = context / metadata["Dockerfile"]
    assert context.resolve() == ROOT, "the image is built from the repo root (it COPYs the package)"
    assert dockerfile.is_file(), f"{dockerfile} is missing"
    # every COPY source (except app.py, written by the worker's owner) exists in the context
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                if not source.startswith("--") and not source.endswith("app.py"):
                    assert (context / source).exists(), f"Dockerfile copies missing {source}"


def test_playwright_pin_matches_the_base_image(template: dict[str, Any]) -> None:
    dockerfile = (ROOT / "functions/worker/Dockerfile").read_text()
    base = re.search(r"^FROM mcr\.microsoft\.com/playwright/python:v(\d+\.\d+\.\d+)-", dockerfile, re.M)
    assert base, "the worker image is built FROM the official Playwright Python image"
    pins = (ROOT / "functions/worker/requirements.txt").read_text()
    assert f"playwright=={base.group(1)}" in pins, "playwright pin must equal the base image tag"
    layer_requirements = (ROOT / "layers/mediavault/requirements.txt").read_text().lower()
    assert not re.search(r"^\s*playwright", layer_requirements, re.M), "the layer never ships playwright"


def test_no_local_only_setting_reaches_the_cloud(template: dict[str, Any]) -> None:
    environments = [template["Globals"]["Function"]["Environment"]["Variables"]]
    for fn in functions(template).values():
        environments.append(fn.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    for variables in environments:
        for name in LOCAL_ONLY_ENV:
            assert name not in variables, f"{name} is local-only and must not be set in template.yaml"


# --------------------------------------------------------------------------------------------
# queue and worker
# --------------------------------------------------------------------------------------------


def test_queue_visibility_covers_six_worker_timeouts(template: dict[str, Any]) -> None:
    worker_timeout = function_prop(template, "WorkerFunction", "Timeout")
    assert worker_timeout == 900
    assert props(template, "JobsQueue")["VisibilityTimeout"] >= 6 * worker_timeout


def test_jobs_queue_redrives_to_the_dead_letter_queue(template: dict[str, Any]) -> None:
    redrive = props(template, "JobsQueue")["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert getatt(redrive["deadLetterTargetArn"]) == ("JobsDeadLetterQueue", "Arn")


def test_dead_letters_outlive_the_jobs_queue(template: dict[str, Any]) -> None:
    dlq = props(template, "JobsDeadLetterQueue")
    queue = props(template, "JobsQueue")
    assert dlq["MessageRetentionPeriod"] == 1209600
    # a standard queue keeps the original enqueue time when it dead-letters a message
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"]
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True


def test_worker_consumes_the_queue_with_partial_batch_failures(template: dict[str, Any]) -> None:
    events = props(template, "WorkerFunction")["Events"]
    sqs = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
    assert len(sqs) == 1, "the worker has exactly one SQS event"
    event = sqs[0]
    assert getatt(event["Queue"]) == ("JobsQueue", "Arn")
    assert "ReportBatchItemFailures" in event["FunctionResponseTypes"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaximumConcurrency"}
    assert event["BatchSize"] == {"Ref": "WorkerBatchSize"}
    parameters = template["Parameters"]
    assert parameters["WorkerMaximumConcurrency"]["MinValue"] >= 2, "AWS rejects a maximum concurrency < 2"
    assert parameters["WorkerBatchSize"]["Default"] == 1


def test_recovery_runs_on_the_schedule_parameter(template: dict[str, Any]) -> None:
    events = props(template, "RecoveryFunction")["Events"]
    schedules = [e["Properties"] for e in events.values() if e["Type"] in ("Schedule", "ScheduleV2")]
    assert len(schedules) == 1
    expression = schedules[0].get("Schedule", schedules[0].get("ScheduleExpression"))
    assert expression == {"Ref": "RecoverySchedule"}
    assert template["Parameters"]["RecoverySchedule"]["Default"] == "rate(2 minutes)"


# --------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------


def test_bucket_blocks_public_access_and_cleans_multipart_leftovers(template: dict[str, Any]) -> None:
    bucket = props(template, "MediaBucket")
    assert all(bucket["PublicAccessBlockConfiguration"][k] is True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"
    ))  # fmt: skip
    assert bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    abort_rules = [
        rule
        for rule in bucket["LifecycleConfiguration"]["Rules"]
        if rule.get("Status") == "Enabled" and "AbortIncompleteMultipartUpload" in rule
    ]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in abort_rules] == [1]
    assert resource(template, "MediaBucket")["DeletionPolicy"] == "Retain"


def test_bucket_policy_denies_plain_http(template: dict[str, Any]) -> None:
    policies = [
        p for p in template["Resources"].values()
        if p["Type"] == "AWS::S3::BucketPolicy" and p["Properties"]["Bucket"] == {"Ref": "MediaBucket"}
    ]  # fmt: skip
    assert len(policies) == 1
    statements = as_list(policies[0]["Properties"]["PolicyDocument"]["Statement"])
    tls = [
        s for s in statements
        if s["Effect"] == "Deny"
        and str(s["Condition"]["Bool"]["aws:SecureTransport"]).lower() == "false"
    ]  # fmt: skip
    assert len(tls) == 1
    targets = as_list(tls[0]["Resource"])
    assert {"Fn::GetAtt": ["MediaBucket", "Arn"]} in targets
    assert {"Fn::Sub": "${MediaBucket.Arn}/*"} in targets
    assert tls[0]["Action"] in ("s3:*", ["s3:*"])


def test_jobs_table_matches_the_contract(template: dict[str, Any]) -> None:
    table = props(template, "JobsTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    indexes = {
        gsi["IndexName"]: (
            [(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]],
            gsi["Projection"]["ProjectionType"],
        )
        for gsi in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "byStatus": ([("status", "HASH"), ("updatedAt", "RANGE")], "ALL"),
        "byTenant": ([("tenantId", "HASH"), ("createdAt", "RANGE")], "ALL"),
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"jobId": "S", "status": "S", "updatedAt": "S", "tenantId": "S", "createdAt": "S"}
    assert resource(template, "JobsTable")["DeletionPolicy"] == "Retain"


def test_state_resources_stay_plain_for_the_local_stack(template: dict[str, Any]) -> None:
    """The local stack creates the table, queues and bucket from these properties: no physical
    names (CloudFormation names them) and no conditions inside."""
    physical_names = {"TableName", "QueueName", "BucketName"}
    for logical_id in ("JobsTable", "JobsQueue", "JobsDeadLetterQueue", "MediaBucket"):
        p = props(template, logical_id)
        assert not physical_names & set(p), f"{logical_id} sets a physical name"
        assert "Fn::If" not in repr(p), f"{logical_id} uses a condition"
        assert "Condition" not in resource(template, logical_id)


# --------------------------------------------------------------------------------------------
# IAM and API
# --------------------------------------------------------------------------------------------


def test_no_policy_allows_wildcard_actions(template: dict[str, Any]) -> None:
    offenders = []
    for name, statement in policy_statements(template):
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement.get("Action", [])):
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                offenders.append(f"{name}: {action}")
        if "NotAction" in statement:
            offenders.append(f"{name}: NotAction")
    assert not offenders, f"wildcard actions allowed: {offenders}"


def test_functions_use_inline_least_privilege_policies(template: dict[str, Any]) -> None:
    for name, fn in functions(template).items():
        for policy in as_list(fn.get("Properties", {}).get("Policies", [])):
            hint = f"{name}: use inline statements, not managed policies or SAM policy templates ({policy!r})"
            assert isinstance(policy, dict), hint
            assert "Statement" in policy, hint


def test_api_requires_keys_and_has_a_usage_plan(template: dict[str, Any]) -> None:
    auth = props(template, "MediaVaultApi")["Auth"]
    assert auth["ApiKeyRequired"] is True
    assert "UsagePlan" not in auth, "usage plans are explicit resources (throttle and quota per plan)"
    # Each plan is its own resource on the API's stage, with its own throttle and quota
    plans = {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::UsagePlan"}
    assert set(plans) == {"StandardUsagePlan"}
    for plan in plans.values():
        assert plan["ApiStages"] == [{"ApiId": {"Ref": "MediaVaultApi"}, "Stage": {"Ref": "MediaVaultApi.Stage"}}]
        assert {"RateLimit", "BurstLimit"} <= set(plan["Throttle"])
        assert {"Limit", "Period"} <= set(plan["Quota"])
    # The deployment's first tenant: one key, attached to the standard plan
    keys = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::ApiKey"]
    assert keys == ["DefaultApiKey"]
    assert props(template, "DefaultApiKey")["Enabled"] is True
    attachments = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::UsagePlanKey"
    ]
    assert attachments == [
        {"KeyId": {"Ref": "DefaultApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "StandardUsagePlan"}}
    ]
    # Queue messages without a tenant land in the default tenant, a parameter
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["MEDIAVAULT_DEFAULT_TENANT"] == {"Ref": "DefaultTenant"}
    assert template["Parameters"]["DefaultTenant"]["Default"] == "default"
    assert props(template, "MediaVaultApi")["StageName"] == {"Ref": "StageName"}
    assert template["Parameters"]["StageName"]["Default"] == "v1"
    # only the probes are keyless
    for event in props(template, "ApiFunction")["Events"].values():
        p = event["Properties"]
        keyless = p.get("Auth", {}).get("ApiKeyRequired") is False
        route = (p["Method"].lower(), p["Path"])
        assert keyless == (route in KEYLESS_ROUTES), f"{route}: keyless={keyless}"


def test_alarms_watch_dead_letters_queue_age_and_the_recovery_heartbeat(template: dict[str, Any]) -> None:
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    by_metric = {(a["Namespace"], a["MetricName"]): a for a in alarms}
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in by_metric
    assert by_metric[("AWS/SQS", "ApproximateAgeOfOldestMessage")]["Threshold"] == 1800
    heartbeat = by_metric[("MediaVault", "RecoveryHeartbeat")]
    assert heartbeat["Dimensions"] == [{"Name": "service", "Value": "mediavault"}]
    assert heartbeat["TreatMissingData"] == "breaching"
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold"


def test_outputs(template: dict[str, Any]) -> None:
    assert {
        "ApiUrl", "ApiKeyId", "JobsTableName", "JobsQueueUrl", "DeadLetterQueueUrl",
        "MediaBucketName", "WorkerFunctionName", "DashboardUrl", "StandardUsagePlanId",
    } <= set(template["Outputs"])  # fmt: skip
    assert template["Outputs"]["ApiKeyId"]["Value"] == {"Ref": "DefaultApiKey"}
    assert template["Outputs"]["StandardUsagePlanId"]["Value"] == {"Ref": "StandardUsagePlan"}


def test_dashboard_body_is_valid_json(template: dict[str, Any]) -> None:
    body = props(template, "MediaVaultDashboard")["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    titles = {w["properties"]["title"] for w in widgets}
    assert {"Job queue", "Dead-letter queue", "Job outcomes", "Worker errors and duration"} <= titles
