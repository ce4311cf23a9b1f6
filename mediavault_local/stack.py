"""The local stack: the template's resources in moto, and the same handlers, on one machine.

- moto (single-threaded, its own process) for DynamoDB, SQS, S3, CloudWatch and EventBridge, with
  the resources created from ``template.yaml``;
- the API function behind a local API Gateway (API key required where the template says so);
- the worker function as container-like processes (``python -m awslambdaric``, as in the image),
  fed by an SQS poller with the template's batch size, concurrency and partial-batch semantics;
- the recovery function on a timer playing its EventBridge schedule.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from mediavault_local.apiserver import LocalApi, routes_from_events
from mediavault_local.lambda_runtime import ContainerInstance, FunctionInstance
from mediavault_local.motoserver import MotoProcess
from mediavault_local.poller import SqsPoller
from mediavault_local.provision import provision
from mediavault_local.scheduler import Schedule, schedule_seconds
from mediavault_local.template import REGION, Template

STATE_DIR = ".mediavault"
STATE_FILE = "local.json"
API_KEY_ENV = "MEDIAVAULT_LOCAL_API_KEY"
API_KEYS_ENV = "MEDIAVAULT_LOCAL_API_KEYS"  # more keys (tenants): "value=id,value=id"
DEFAULT_API_KEY_ID = "local-key"  # id of the stack's own key, and so the local default tenant

# Variables the local stack adds to every function's environment (never set by template.yaml).
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}

#: Settings a user of the local stack may set in their shell; they reach the functions as they are.
PASS_THROUGH_ENV = (
    "MEDIAVAULT_PLATFORM_HOSTS",
    "MEDIAVAULT_PLATFORM_API",
    "MEDIAVAULT_INCLUDE_QUOTED",
    "MEDIAVAULT_COOKIES_FILE",
)


@dataclass
class StackOptions:
    root: Path
    api_port: int = 0
    aws_port: int = 0
    api_key: str | None = None  # the default key's value (id DEFAULT_API_KEY_ID); else $MEDIAVAULT_LOCAL_API_KEY
    api_keys: dict[str, str] = field(default_factory=dict)  # more keys: value -> id (one tenant each)
    workers: int | None = None  # default: the template's MaximumConcurrency
    schedule_every: float | None = None  # default: the template's schedule
    egress_allow: list[str] = field(default_factory=list)
    chromium_path: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    logs_to_console: bool = False
    write_state: bool = True
    serve: bool = True  # False: only moto and the resources (for one-off invocations)


def parse_api_keys(text: str) -> dict[str, str]:
    """``"value=id,value2=id2"`` -> ``{"value": "id", ...}`` (``MEDIAVAULT_LOCAL_API_KEYS``, ``--api-key``)."""
    keys: dict[str, str] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        value, sep, key_id = item.rpartition("=")
        if not sep or not value or not key_id:
            raise ValueError(f"API key {item!r} is not VALUE=ID")
        keys[value] = key_id
    return keys


def local_pythonpath(root: Path) -> list[str]:
    return [str(root / "layers" / "mediavault"), str(root)]


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.root = options.root.resolve()
        self.state_dir = self.root / STATE_DIR
        self.template = Template(self.root / "template.yaml")
        self.moto = MotoProcess(port=options.aws_port)
        self.api_key = options.api_key or os.environ.get(API_KEY_ENV) or secrets.token_urlsafe(24)
        # key value -> key id (= tenant), like the keys attached to a usage plan
        self.api_keys: dict[str, str] = {
            self.api_key: DEFAULT_API_KEY_ID,
            **parse_api_keys(os.environ.get(API_KEYS_ENV, "")),
            **options.api_keys,
        }
        self.env: dict[str, str] = {}
        self.api: LocalApi | None = None
        self.poller: SqsPoller | None = None
        self.schedules: list[Schedule] = []
        self.workers: list[ContainerInstance] = []
        self.physical: dict[str, dict[str, str]] = {}
        self._saved_env: dict[str, str | None] = {}

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalStack:
        self.state_dir.mkdir(exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        self.moto.start()
        try:
            self._configure_environment()
            session = boto3.session.Session(region_name=REGION)
            self.physical = provision(self.template, session)
            self.env = self._function_environment()
            self._apply_env(self.env)
            reset_package_state()
            if self.options.serve:
                self._start_api()
                self._start_worker(session)
                self._start_schedules()
        except BaseException:
            self.stop()
            raise
        if self.options.write_state:
            self.state_path.write_text(json.dumps(self.info(), indent=2) + "\n")
        return self

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop polling, let in-flight batches finish (up to ``drain_timeout``), then stop everything."""
        if self.poller is not None:
            abandoned = self.poller.stop(drain_timeout)
            if abandoned:
                self._release_abandoned(abandoned)
            self.poller = None
        for schedule in self.schedules:
            schedule.stop()
        self.schedules = []
        for worker in self.workers:
            worker.stop()
        self.workers = []
        if self.api is not None:
            self.api.stop()
            self.api = None
        self.moto.stop()
        if self.options.write_state and self.state_path.exists():
            self.state_path.unlink()
        self._restore_env()

    def _release_abandoned(self, abandoned: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        """Jobs still running when the drain timeout ran out: stop their containers, give the jobs back
        (``queued``, fenced on the lease they held) and make their messages visible again, so the next
        start, or another consumer, picks them up at once instead of after the visibility timeout."""
        from mediavault import deps
        from mediavault.errors import LeaseLost, ReleasedAtShutdown
        from mediavault.jobs.model import JobError, JobStatus
        from mediavault.jobs.service import job_id_for_message
        from mediavault.queue import parse_body

        repo, sqs = deps.repository(), self.client("sqs")
        for instance, messages in abandoned:
            instance.kill()
            for message in messages:
                try:
                    body = parse_body(message.get("Body", ""))
                except ValueError:
                    continue
                job_id = body.job_id or job_id_for_message(message["MessageId"])
                job = repo.get(job_id)
                if job is not None and job.status == JobStatus.RUNNING and job.lease_owner:
                    error = JobError(**ReleasedAtShutdown("the local stack stopped mid-job").to_dict())
                    with contextlib.suppress(LeaseLost):  # someone else took it over: theirs now
                        repo.release(job_id, job.fence(), error=error, now=deps.clock.now())
                sqs.change_message_visibility(
                    QueueUrl=self.info()["queueUrl"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                print(f"released job {job_id} (still running at shutdown)", flush=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what users and scripts read ------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    def info(self) -> dict[str, Any]:
        return {
            "apiUrl": self.api.url if self.api else None,
            "apiKey": self.api_key,
            "apiKeys": [{"key": value, "keyId": key_id} for value, key_id in self.api_keys.items()],
            "awsEndpoint": self.moto.endpoint,
            "region": REGION,
            "bucket": self.env.get("MEDIAVAULT_BUCKET"),
            "table": self.env.get("MEDIAVAULT_TABLE"),
            "queueUrl": self.env.get("MEDIAVAULT_QUEUE_URL"),
            "deadLetterQueueUrl": self.env.get("MEDIAVAULT_DLQ_URL"),
            "workers": len(self.workers),
            "recoveryEverySeconds": self.schedules[0].every if self.schedules else None,
            "logs": str(self.state_dir / "logs"),
            "pid": os.getpid(),
            "functionEnvironment": {k: v for k, v in self.env.items() if not k.startswith("AWS_")},
        }

    def client(self, service: str) -> Any:
        return boto3.session.Session(region_name=REGION).client(service, endpoint_url=self.moto.endpoint)

    # --- wiring -------------------------------------------------------------------------------

    def _configure_environment(self) -> None:
        self._apply_env({**LOCAL_ENV, "AWS_ENDPOINT_URL": self.moto.endpoint})

    def _function_environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for logical_id in self.template.functions():
            for key, value in self.template.function(logical_id).environment.items():
                if env.get(key, value) != value:
                    raise RuntimeError(f"{key} differs between functions; the local stack shares one environment")
                env[key] = value
        chromium = self.options.chromium_path or os.environ.get("MEDIAVAULT_CHROMIUM_PATH") or _debian_chromium()
        local = {**LOCAL_ENV, "AWS_ENDPOINT_URL": self.moto.endpoint}
        if chromium:
            local["MEDIAVAULT_CHROMIUM_PATH"] = chromium
        for name in PASS_THROUGH_ENV:
            if os.environ.get(name):
                local[name] = os.environ[name]
        allow = [*self.options.egress_allow, *_loopback_platform_hosts({**local, **self.options.extra_env})]
        if allow:
            local["MEDIAVAULT_EGRESS_ALLOW"] = ",".join(dict.fromkeys(allow))
        # Queue messages without a tenantId are the stack's own key's jobs (on AWS: the DefaultTenant parameter).
        local["MEDIAVAULT_DEFAULT_TENANT"] = DEFAULT_API_KEY_ID
        return {**env, **local, **self.options.extra_env}

    def _start_api(self) -> None:
        spec = self.template.function("ApiFunction")
        api_res = self.template.resources.get("MediaVaultApi", {})
        auth = ((api_res.get("Properties") or {}).get("Auth")) or {}
        routes = routes_from_events(spec.events, default_key_required=bool(auth.get("ApiKeyRequired", False)))
        stage = str(self.template.resolve((api_res.get("Properties") or {}).get("StageName", "v1")))
        extra_keys = {value: key_id for value, key_id in self.api_keys.items() if value != self.api_key}
        self.api = LocalApi(
            FunctionInstance(spec),
            routes,
            api_key=self.api_key,
            api_key_id=self.api_keys[self.api_key],
            api_keys=extra_keys,
            stage=stage,
            port=self.options.api_port,
        ).start()

    def _start_worker(self, session: Any) -> None:
        spec = self.template.function("WorkerFunction")
        sqs_event = next((e for e in spec.events.values() if e.get("Type") == "SQS"), None)
        if sqs_event is None:
            raise RuntimeError("WorkerFunction has no SQS event in template.yaml")
        props = sqs_event.get("Properties") or {}
        concurrency = int((props.get("ScalingConfig") or {}).get("MaximumConcurrency") or 2)
        count = self.options.workers or concurrency
        child_env = {**os.environ, **self.env}
        for index in range(count):
            log = None if self.options.logs_to_console else self.state_dir / "logs" / f"worker-{index + 1}.log"
            self.workers.append(
                ContainerInstance(spec, env=child_env, pythonpath=local_pythonpath(self.root), log_path=log)
            )
        queue = next(
            (lid for lid, attrs in self.physical.items() if attrs.get("Arn") == props.get("Queue")), "JobsQueue"
        )
        self.poller = SqsPoller(
            session.client("sqs"),
            queue_url=self.physical[queue]["Ref"],
            queue_arn=self.physical[queue]["Arn"],
            instances=list(self.workers),
            batch_size=int(props.get("BatchSize", 10)),
            report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        ).start()

    def _start_schedules(self) -> None:
        for logical_id in self.template.functions():
            spec = self.template.function(logical_id)
            for name, event in spec.events.items():
                if event.get("Type") not in ("Schedule", "ScheduleV2"):
                    continue
                props = event.get("Properties") or {}
                every = self.options.schedule_every or schedule_seconds(str(props.get("Schedule")))
                rule = f"{self.template.stack_name}-{logical_id}-{name}"
                self.schedules.append(Schedule(FunctionInstance(spec), rule_name=rule, every=every).start())

    def _apply_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        reset_package_state()


def _debian_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def reset_package_state() -> None:
    """Settings and clients are cached per process; the stack just changed what they should read."""
    if "mediavault.deps" in sys.modules:
        sys.modules["mediavault.deps"].reset()
    else:
        from mediavault import deps

        deps.reset()


def _loopback_platform_hosts(env: dict[str, str]) -> list[str]:
    """``host:port`` entries of ``MEDIAVAULT_PLATFORM_HOSTS`` (a mirror or fixture site on this machine
    standing in for a platform): the operator named them, so the local stack lets the egress policy
    reach them. Plain host names (public mirrors) need nothing."""
    hosts = []
    for item in env.get("MEDIAVAULT_PLATFORM_HOSTS", "").split(","):
        _, _, host = item.partition("=")
        name, sep, port = host.strip().rpartition(":")
        if sep and name and port.isdigit():
            hosts.append(host.strip().lower())
    return hosts
