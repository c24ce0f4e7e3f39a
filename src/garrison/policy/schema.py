"""The rule file format (YAML or JSON), checked whole by pydantic. See docs/rules.md.

A rule names a scope (collections) and what to do, per section, with what the container does
outside its model (the section ``effect``), with explicit allow and deny lists, and with the
built-in detections. Unknown keys are refused: a typo must not silently weaken a rule.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from garrison.policy.collections import Collection
from garrison.policy.expression import Expression, ExpressionError, compile_expression
from garrison.policy.limits import MAX_EXPRESSION_LENGTH, MAX_RULES, Name, Pattern, Text
from garrison.policy.matchers import PortRange, parse_network

RuleEffect = Literal["disable", "alert", "prevent", "block"]
ListEffect = Literal["alert", "prevent", "block"]
NetRuleEffect = Literal["disable", "alert", "block"]  # network: no prevent, as in Prisma Cloud
NetListEffect = Literal["alert", "block"]
CustomType = Literal["processes", "filesystem", "network"]

DEFAULT_RULE_NAME = "Default - alert on anomalies"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_paths(paths: list[Pattern]) -> list[Pattern]:
    for path in paths:
        if not path or path != path.strip():
            raise ValueError(f"{path!r}: a path pattern is not empty and has no outer spaces")
    return paths


class DeniedPaths(_Strict):
    effect: ListEffect = "alert"
    paths: list[Pattern] = Field(default_factory=list)

    _paths = field_validator("paths")(_check_paths)


class ProcessDetections(_Strict):
    crypto_miners: RuleEffect = "alert"
    lateral_movement: RuleEffect = "alert"
    reverse_shell: RuleEffect = "alert"
    suid_binaries: RuleEffect = "alert"
    drift: RuleEffect = "alert"
    # A program run from a file with no path: a memfd, a deleted file.
    fileless: RuleEffect = "alert"
    # Off by default: it needs a model that saw every parent, and it keeps files from
    # being skipped by the kernel (an exec's parent varies).
    parent_child: RuleEffect = "disable"


class ProcessSection(_Strict):
    effect: RuleEffect = "alert"  # for a process the model does not know
    allowed: list[Pattern] = Field(default_factory=list)
    denied: DeniedPaths = Field(default_factory=DeniedPaths)
    detections: ProcessDetections = Field(default_factory=ProcessDetections)

    _allowed = field_validator("allowed")(_check_paths)


def _check_ports(ports: list[Pattern | int]) -> list[Pattern | int]:
    for spec in ports:
        PortRange.parse(spec)
    return ports


def _check_ips(ips: list[Pattern]) -> list[Pattern]:
    for spec in ips:
        parse_network(spec)
    return ips


class DeniedPorts(_Strict):
    effect: NetListEffect = "alert"
    ports: list[Pattern | int] = Field(default_factory=list)

    _ports = field_validator("ports")(_check_ports)


class PortLists(_Strict):
    allowed: list[Pattern | int] = Field(default_factory=list)
    denied: DeniedPorts = Field(default_factory=DeniedPorts)

    _allowed = field_validator("allowed")(_check_ports)


class DeniedIps(_Strict):
    effect: NetListEffect = "alert"
    ips: list[Pattern] = Field(default_factory=list)

    _ips = field_validator("ips")(_check_ips)


class IpLists(_Strict):
    allowed: list[Pattern] = Field(default_factory=list)
    denied: DeniedIps = Field(default_factory=DeniedIps)

    _allowed = field_validator("allowed")(_check_ips)


class NetworkSection(_Strict):
    effect: NetRuleEffect = "alert"  # for a port or address the model does not know
    listening: PortLists = Field(default_factory=PortLists)
    outbound: PortLists = Field(default_factory=PortLists)
    ips: IpLists = Field(default_factory=IpLists)


class FilesystemDetections(_Strict):
    new_executables: RuleEffect = "alert"
    binary_dirs: RuleEffect = "alert"
    ssh_keys: RuleEffect = "alert"
    admin_accounts: RuleEffect = "alert"


class FilesystemSection(_Strict):
    effect: RuleEffect = "alert"  # for a write where the model saw none
    allowed: list[Pattern] = Field(default_factory=list)
    denied: DeniedPaths = Field(default_factory=DeniedPaths)
    detections: FilesystemDetections = Field(default_factory=FilesystemDetections)

    _allowed = field_validator("allowed")(_check_paths)


class CustomRule(_Strict):
    """An expression, compiled once when the rule is read."""

    name: Name
    expression: str = Field(max_length=MAX_EXPRESSION_LENGTH)
    effect: ListEffect = "alert"
    message: Text = ""
    type: CustomType | None = None  # inferred from the fields the expression names
    disabled: bool = False

    _compiled: Expression = PrivateAttr()
    _type: CustomType = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self) -> Self:
        try:
            compiled = compile_expression(self.expression)
        except ExpressionError as exc:  # pydantic reports ValueErrors with their place
            raise ValueError(f"expression: {exc}") from exc
        kind = self.type or _infer_type(compiled.fields)
        _check_fields(kind, compiled.fields)
        if kind == "network" and self.effect == "prevent":
            raise ValueError("a network rule's effect is alert or block (prevent is not offered)")
        self._compiled, self._type = compiled, kind
        return self

    @property
    def compiled(self) -> Expression:
        return self._compiled

    @property
    def kind(self) -> CustomType:
        return self._type


_SECTION_OF = {"proc": "processes", "file": "filesystem", "net": "network"}


def _infer_type(fields: frozenset[str]) -> CustomType:
    kinds = {_SECTION_OF[f.split(".", 1)[0]] for f in fields} - {"processes"}
    if len(kinds) > 1:
        raise ValueError("an expression reads file.* or net.* fields, not both")
    return kinds.pop() if kinds else "processes"  # type: ignore[return-value]


def _check_fields(kind: CustomType, fields: frozenset[str]) -> None:
    for name in sorted(fields):
        section = _SECTION_OF[name.split(".", 1)[0]]
        if section not in ("processes", kind):
            raise ValueError(f"a {kind} rule cannot read {name}")


class RuntimeRule(_Strict):
    name: Name
    notes: Text = ""
    disabled: bool = False
    scope: list[Collection] = Field(default_factory=lambda: [Collection()])
    processes: ProcessSection = Field(default_factory=ProcessSection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    filesystem: FilesystemSection = Field(default_factory=FilesystemSection)
    custom: list[CustomRule] = Field(default_factory=list)

    @field_validator("custom")
    @classmethod
    def _unique_custom(cls, custom: list[CustomRule]) -> list[CustomRule]:
        _refuse_duplicates([c.name for c in custom], "custom rule")
        return custom


class RuleSet(_Strict):
    """Rules in order: the first enabled rule whose scope covers a container applies."""

    rules: list[RuntimeRule] = Field(default_factory=list, max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[RuntimeRule]) -> list[RuntimeRule]:
        _refuse_duplicates([r.name for r in rules], "rule")
        return rules

    def digest(self) -> str:
        """A hash of the rules' canonical JSON: equal rule sets have equal digests."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _refuse_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"two {what}s are named {name!r}")
        seen.add(name)


DEFAULT_RULE = RuntimeRule(
    name=DEFAULT_RULE_NAME,
    notes="Applies when no rule covers a container: alert on anything outside the model.",
)
