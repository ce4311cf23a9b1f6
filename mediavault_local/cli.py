"""``mediavault``: the local stack from the command line.

mediavault local up [--port 8080] [--aws-port 5000]     run the stack in the foreground
mediavault local up --api-key KEY2=tenant-b             serve another API key (another tenant) too
mediavault local invoke WorkerFunction -e events/sqs_url_only.json
mediavault demo                                         the whole flow against a bundled sample site
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from mediavault_local.stack import (
    API_KEY_ENV,
    API_KEYS_ENV,
    STATE_DIR,
    STATE_FILE,
    LocalStack,
    StackOptions,
    local_pythonpath,
    parse_api_keys,
)


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder upwards holding ``template.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "template.yaml").is_file():
            return folder
    raise SystemExit("mediavault: no template.yaml here or above; run it from the Media Vault repository")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mediavault", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local stack")
    local_commands = local.add_subparsers(dest="local_command", required=True)

    up = local_commands.add_parser("up", help="start the local stack in the foreground (Ctrl-C stops it)")
    up.add_argument("--port", type=int, default=8080, help="API port (default 8080; 0 picks a free one)")
    up.add_argument("--aws-port", type=int, default=5000, help="moto port (default 5000; 0 picks a free one)")
    up.add_argument("--workers", type=int, help="worker containers (default: the template's MaximumConcurrency)")
    up.add_argument("--schedule-seconds", type=float, help="run the recovery schedule this often instead")
    up.add_argument(
        "--allow", action="append", default=[], metavar="HOST:PORT",
        help="private address that may be fetched (adds to MEDIAVAULT_EGRESS_ALLOW)",
    )  # fmt: skip
    up.add_argument(
        "--api-key", action="append", default=[], metavar="VALUE=ID",
        help=f"serve another API key with this key id (its tenant); adds to {API_KEYS_ENV}",
    )  # fmt: skip
    up.add_argument("--verbose", action="store_true", help="worker logs to the console instead of .mediavault/logs")

    invoke = local_commands.add_parser("invoke", help="invoke one function with an event file, like sam local invoke")
    invoke.add_argument("function", help="logical id in template.yaml (ApiFunction, WorkerFunction, RecoveryFunction)")
    invoke.add_argument("-e", "--event", required=True, type=Path, help="event JSON file (see events/)")
    invoke.add_argument("--allow", action="append", default=[], metavar="HOST:PORT")

    demo = commands.add_parser("demo", help="archive the bundled sample posts end to end")
    demo.add_argument("--port", type=int, default=0)
    demo.add_argument("--aws-port", type=int, default=0)
    demo.add_argument("--out", type=Path, default=Path("downloads"), help="where to export the stored files")
    demo.add_argument("--timeout", type=float, default=180.0)

    args = parser.parse_args(argv)
    if args.command == "demo":
        from mediavault_local.demo import run_demo

        return run_demo(find_root(), api_port=args.port, aws_port=args.aws_port, out=args.out, timeout=args.timeout)
    if args.local_command == "up":
        return _up(args)
    return _invoke(args)


def _egress_allow(extra: list[str]) -> list[str]:
    configured = [i.strip() for i in os.environ.get("MEDIAVAULT_EGRESS_ALLOW", "").split(",") if i.strip()]
    return [*configured, *extra]


def _api_keys(extra: list[str]) -> dict[str, str]:
    try:
        return parse_api_keys(",".join(extra))
    except ValueError as exc:
        raise SystemExit(f"mediavault: --api-key: {exc}") from None


def _up(args: argparse.Namespace) -> int:
    root = find_root()
    options = StackOptions(
        root=root,
        api_port=args.port,
        aws_port=args.aws_port,
        workers=args.workers,
        schedule_every=args.schedule_seconds,
        egress_allow=_egress_allow(args.allow),
        api_keys=_api_keys(args.api_key),
        logs_to_console=args.verbose,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(options).start()
    info = stack.info()
    print("Media Vault local stack is up")
    for label, key in (
        ("API", "apiUrl"), ("API key", "apiKey"), ("AWS endpoint", "awsEndpoint"), ("bucket", "bucket"),
        ("table", "table"), ("queue", "queueUrl"), ("dead letters", "deadLetterQueueUrl"), ("worker logs", "logs"),
    ):  # fmt: skip
        print(f"  {label:<13} {info[key]}")
    for entry in info["apiKeys"][1:]:
        print(f"  {'API key':<13} {entry['key']}  (tenant {entry['keyId']})")
    print(f"  (written to {stack.state_path.relative_to(root)}; {API_KEY_ENV} fixes the key, tenant local-key)")
    print(f"Try: curl -s -H 'x-api-key: {info['apiKey']}' --json '{{\"url\": \"https://...\"}}' {info['apiUrl']}/jobs")
    print("Ctrl-C stops it.", flush=True)
    stopping.wait()
    print("stopping: no new messages; letting jobs in flight finish...", flush=True)
    stack.stop(drain_timeout=60.0)
    print("stopped.")
    return 0


def _running_stack(root: Path) -> dict[str, Any] | None:
    state = root / STATE_DIR / STATE_FILE
    if not state.is_file():
        return None
    info = json.loads(state.read_text())
    try:
        urllib.request.urlopen(info["awsEndpoint"] + "/moto-api/", timeout=2)  # noqa: S310 - loopback only
    except OSError:
        return None
    return info


def _invoke(args: argparse.Namespace) -> int:
    from mediavault_local.lambda_runtime import ContainerInstance, FunctionInstance
    from mediavault_local.stack import LOCAL_ENV, reset_package_state
    from mediavault_local.template import Template

    root = find_root()
    event = json.loads(args.event.read_text())
    template = Template(root / "template.yaml")
    spec = template.function(args.function)
    running = _running_stack(root)
    stack = None
    if running is not None:
        env = {**LOCAL_ENV, **running["functionEnvironment"], "AWS_ENDPOINT_URL": running["awsEndpoint"]}
        print(f"using the running local stack at {running['awsEndpoint']}", file=sys.stderr)
    else:
        stack = LocalStack(StackOptions(root=root, serve=False, write_state=False)).start()
        env = stack.env
        print(f"started a temporary local stack at {stack.moto.endpoint}", file=sys.stderr)
    allow = _egress_allow(args.allow)
    if allow:
        env = {**env, "MEDIAVAULT_EGRESS_ALLOW": ",".join(allow)}
    os.environ.update(env)
    reset_package_state()
    # Like `sam local invoke`: the function's logs on stderr, its result alone on stdout.
    sys.stdout.flush()
    stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        if spec.package_type == "Image":
            container = ContainerInstance(spec, env={**os.environ, **env}, pythonpath=local_pythonpath(root))
            try:
                result = container.invoke(event)
            finally:
                container.stop()
        else:
            result = FunctionInstance(spec).invoke(event)
    finally:
        sys.stdout.flush()
        os.dup2(stdout, 1)
        os.close(stdout)
        if stack is not None:
            stack.stop()
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
