"""Read ``template.yaml`` the way CloudFormation would, enough to build the stack locally.

Parses the YAML with its short-form intrinsics (``!Ref``, ``!Sub``, ``!GetAtt``, ``!If``...),
resolves them against parameter defaults and the local physical names, and answers what the
local stack needs: resources by type, each function's handler, timeout, environment and events.
Nothing about the table, queues or bucket is defined a second time here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns ``!Tag value`` into ``{"Fn::Tag": value}`` (``!Ref`` into ``Ref``)."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    package_type: str = "Zip"

    @property
    def module_path(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


class Template:
    """``template.yaml`` resolved against local physical resources."""

    def __init__(self, path: Path, *, stack_name: str = "media-vault-local", overrides: dict[str, Any] | None = None):
        self.path = path
        self.root = path.parent
        self.data = load_template(path)
        self.stack_name = stack_name
        self.parameters = {name: spec.get("Default") for name, spec in (self.data.get("Parameters") or {}).items()} | (
            overrides or {}
        )
        self.physical: dict[str, dict[str, str]] = {}  # logical id -> {"Ref": ..., "Arn": ..., ...}
        self.conditions = {name: bool(self.resolve(expr)) for name, expr in (self.data.get("Conditions") or {}).items()}

    # --- resources ------------------------------------------------------------------------------

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("Resources") or {})

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res.get("Type") == cfn_type}

    def bind(self, logical_id: str, **attributes: str) -> None:
        """Record the physical identity of a resource (``Ref`` and ``GetAtt`` answers)."""
        self.physical[logical_id] = attributes

    # --- functions ------------------------------------------------------------------------------

    def function(self, logical_id: str) -> FunctionSpec:
        res = self.resources[logical_id]
        if res.get("Type") != "AWS::Serverless::Function":
            raise KeyError(f"{logical_id} is not a function in {self.path.name}")
        glob = (self.data.get("Globals") or {}).get("Function") or {}
        props = {**glob, **(res.get("Properties") or {})}
        env = {
            **((glob.get("Environment") or {}).get("Variables") or {}),
            **(((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}),
        }
        package_type = props.get("PackageType", "Zip")
        if package_type == "Image":
            meta = res.get("Metadata") or {}
            code_dir = self.root / Path(str(meta.get("Dockerfile", "functions/worker/Dockerfile"))).parent
            handler = "app.lambda_handler"
        else:
            code_dir = self.root / str(props["CodeUri"])
            handler = str(props["Handler"])
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=code_dir,
            handler=handler,
            timeout=int(self.resolve(props.get("Timeout", 3))),
            memory=int(self.resolve(props.get("MemorySize", 128))),
            environment={k: str(v) for k, v in self.resolve(env).items() if v is not None},
            events={name: self.resolve(ev) for name, ev in (props.get("Events") or {}).items()},
            package_type=package_type,
        )

    def functions(self) -> list[str]:
        return list(self.of_type("AWS::Serverless::Function"))

    # --- intrinsics -----------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(str(arg))
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._getatt(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.conditions.get(name) else no)
            if key == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(str(sep))
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        return f"{self.stack_name}-{name}"

    def _getatt(self, logical_id: str, attribute: str) -> str:
        bound = self.physical.get(logical_id, {})
        if attribute in bound:
            return bound[attribute]
        return f"arn:aws:local:{REGION}:{ACCOUNT}:{self.stack_name}-{logical_id}"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._getatt(logical_id, attribute)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE: Any = _NoValue()
