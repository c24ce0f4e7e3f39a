"""Vulnerability and compliance rules: ordered, scoped by collections, the first match applies.

A policy is a list of rules kept in the store as a JSON document (kinds ``vulnerability`` and
``compliance``). A policy that does not validate is refused whole, never half applied.

Vulnerability rule semantics (Prisma Cloud's, see docs/authz.md):

- ``effect: ignore`` — the rule applies and nothing is reported.
- ``effect: alert`` — findings at or above ``alert_threshold`` are reported; nothing is blocked.
- ``effect: block`` — as alert, and findings at or above ``block_threshold`` block, except those
  in their ``grace_days`` (counted from ``Finding.fix_date``; a finding with a fix but no known
  fix date gets no grace).
- ``only_fixed`` — findings without a fixed version are left out.
- ``exceptions`` — per advisory or CVE (alias) id: ``ignore``, ``alert`` or ``block`` it
  whatever the thresholds, until ``expires`` (inclusive).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from garrison.errors import InvalidInput
from garrison.policy.collections import Collection, Subject, any_matches
from garrison.policy.documents import DocumentError, parse_document
from garrison.policy.limits import MAX_RULES, Name, Text, too_many_rules
from garrison.scan.compliance import resolve_check_id
from garrison.scan.types import ComplianceIssue, Finding, Severity
from garrison.text import clip

RuleEffect = Literal["ignore", "alert", "block"]
SeverityName = Literal["low", "medium", "high", "critical"]
PolicyKind = Literal["vulnerability", "compliance"]
KINDS: tuple[PolicyKind, ...] = ("vulnerability", "compliance")
PREFIX = "[Garrison]"


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy says about one container operation."""

    kind: PolicyKind
    effect: Literal["allow", "alert", "block"]
    rule: str = ""
    message: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)  # severity name → count
    findings: tuple[Finding, ...] = ()  # the findings reported (at or above a threshold)
    issues: tuple[ComplianceIssue, ...] = ()  # the compliance issues reported

    @property
    def blocked(self) -> bool:
        return self.effect == "block"


def counts_of(severities: Iterable[Severity]) -> dict[str, int]:
    """Per severity, highest first, only those present."""
    tally = dict.fromkeys(sorted(Severity, reverse=True), 0)
    for sev in severities:
        tally[sev] += 1
    return {str(sev): n for sev, n in tally.items() if n}


def counts_text(counts: Mapping[str, int]) -> str:
    return "[" + " ".join(f"{sev}:{n}" for sev, n in counts.items()) + "]"


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    collections: list[Collection] = Field(default_factory=list)
    disabled: bool = False
    block_message: Text = ""

    def applies_to(self, subject: Subject) -> bool:
        return not self.disabled and any_matches(self.collections, subject)

    def refusal(self, blocked: bool, what: str) -> str:
        """The message text: ``[Garrison] Container operation blocked by policy: RULE, WHAT``."""
        verb = "blocked" if blocked else "alerted"
        text = f"{PREFIX} Container operation {verb} by policy: {self.name}, {what}"
        return f"{text}. {self.block_message}" if blocked and self.block_message else text


class CveException(BaseModel):
    """An advisory handled apart from the thresholds until it expires."""

    model_config = ConfigDict(extra="forbid")

    id: Name
    effect: RuleEffect = "ignore"
    expires: dt.date | None = None
    note: Text = ""

    def covers(self, finding: Finding, today: dt.date) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        wanted = self.id.upper()
        return finding.id.upper() == wanted or wanted in (a.upper() for a in finding.aliases)


class VulnerabilityRule(_Rule):
    effect: RuleEffect = "alert"
    alert_threshold: SeverityName = "high"
    block_threshold: SeverityName = "critical"
    only_fixed: bool = False
    grace_days: int = Field(default=0, ge=0)
    exceptions: list[CveException] = Field(default_factory=list)

    def evaluate(self, findings: Sequence[Finding], today: dt.date) -> Decision:
        if self.effect == "ignore":
            return Decision("vulnerability", "allow", self.name)
        reported: list[Finding] = []
        blocking: list[Finding] = []
        for finding in findings:
            verdict = self._judge(finding, today)
            if verdict != "ignore":
                reported.append(finding)
            if verdict == "block":
                blocking.append(finding)
        return self._decision(reported, bool(blocking))

    def _judge(self, finding: Finding, today: dt.date) -> RuleEffect:
        for exc in self.exceptions:
            if exc.covers(finding, today):
                return exc.effect
        if self.only_fixed and not finding.fixed_version:
            return "ignore"
        blocks = self.effect == "block" and finding.severity >= Severity.parse(self.block_threshold)
        if blocks and not self._in_grace(finding, today):
            return "block"
        if blocks or finding.severity >= Severity.parse(self.alert_threshold):
            return "alert"
        return "ignore"

    def _in_grace(self, finding: Finding, today: dt.date) -> bool:
        if self.grace_days <= 0 or not finding.fixed_version or not finding.fix_date:
            return False
        try:
            fixed_on = dt.date.fromisoformat(finding.fix_date[:10])
        except ValueError:
            return False
        return (today - fixed_on).days < self.grace_days

    def _decision(self, reported: list[Finding], blocked: bool) -> Decision:
        if not reported:
            return Decision("vulnerability", "allow", self.name)
        counts = counts_of(f.severity for f in reported)
        what = f"has {_plural(len(reported), 'vulnerability')}, {counts_text(counts)}"
        effect: Literal["alert", "block"] = "block" if blocked else "alert"
        message = self.refusal(blocked, what)
        return Decision("vulnerability", effect, self.name, message, counts, tuple(reported))


class ComplianceRule(_Rule):
    """``checks`` maps check IDs (``GCIS-5.4`` or ``5.4``) to an effect; the others get
    ``default_effect``."""

    checks: dict[str, RuleEffect] = Field(default_factory=dict)
    default_effect: RuleEffect = "ignore"

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, checks: dict[str, RuleEffect]) -> dict[str, RuleEffect]:
        resolved = {}
        for key, effect in checks.items():
            try:
                resolved[resolve_check_id(key)] = effect
            except KeyError:
                raise ValueError(f"unknown compliance check {clip(key, 40)!r}") from None
        return resolved

    def effect_of(self, check_id: str) -> RuleEffect:
        return self.checks.get(check_id, self.default_effect)

    def evaluate(self, issues: Sequence[ComplianceIssue]) -> Decision:
        reported = [i for i in issues if self.effect_of(i.check_id) != "ignore"]
        blocking = [i for i in reported if self.effect_of(i.check_id) == "block"]
        if not reported:
            return Decision("compliance", "allow", self.name)
        shown = blocking or reported
        names = "; ".join(f"{i.check_id} {i.title}" for i in shown)
        what = f"violates {_plural(len(shown), 'compliance check')}: {names}"
        effect: Literal["alert", "block"] = "block" if blocking else "alert"
        counts = counts_of(i.severity for i in reported)
        message = self.refusal(bool(blocking), what)
        return Decision("compliance", effect, self.name, message, counts, issues=tuple(reported))


R = TypeVar("R", bound=_Rule)


def _first(rules: Sequence[R], subject: Subject) -> R | None:
    return next((rule for rule in rules if rule.applies_to(subject)), None)


def _unique_names(rules: list[R]) -> list[R]:
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
    return rules


class VulnerabilityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[VulnerabilityRule] = Field(max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[VulnerabilityRule]) -> list[VulnerabilityRule]:
        return _unique_names(rules)

    def rule_for(self, subject: Subject) -> VulnerabilityRule | None:
        """The rule that applies to ``subject``: the first enabled one whose scope matches."""
        return _first(self.rules, subject)

    def evaluate(
        self, subject: Subject, findings: Sequence[Finding], today: dt.date | None = None
    ) -> Decision:
        rule = _first(self.rules, subject)
        if rule is None:
            return Decision("vulnerability", "allow")
        return rule.evaluate(findings, today or dt.datetime.now(dt.UTC).date())


class CompliancePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[ComplianceRule] = Field(max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[ComplianceRule]) -> list[ComplianceRule]:
        return _unique_names(rules)

    def evaluate(self, subject: Subject, issues: Sequence[ComplianceIssue]) -> Decision:
        rule = _first(self.rules, subject)
        return Decision("compliance", "allow") if rule is None else rule.evaluate(issues)


Policy = VulnerabilityPolicy | CompliancePolicy


def default_vulnerability_policy() -> VulnerabilityPolicy:
    """Alert on critical and high findings everywhere; block nothing."""
    rule = VulnerabilityRule(name="Default - alert on critical and high", alert_threshold="high")
    return VulnerabilityPolicy(rules=[rule])


def default_compliance_policy() -> CompliancePolicy:
    """Alert on every failed compliance check everywhere; block nothing."""
    rule = ComplianceRule(name="Default - alert on all checks", default_effect="alert")
    return CompliancePolicy(rules=[rule])


def parse_policy(kind: str, data: Any) -> Policy:
    """A policy from a parsed document, or from YAML/JSON text; ``{"rules": [...]}`` or a bare
    list of rules. Raises InvalidInput naming the first problem, and applies nothing. Text is
    held to the limits of ``garrison.policy.limits``, as a runtime rule file is."""
    if isinstance(data, str | bytes):
        data = _load_text(kind, data)
    if isinstance(data, list):
        data = {"rules": data}
    model = _model_of(kind)
    rules = data.get("rules") if isinstance(data, dict) else None
    problem = too_many_rules(len(rules)) if isinstance(rules, list) else None
    if problem:
        raise InvalidInput(f"{kind} policy refused: {problem}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{kind} policy refused: {_first_error(exc)}") from exc


def _model_of(kind: str) -> type[VulnerabilityPolicy] | type[CompliancePolicy]:
    if kind == "vulnerability":
        return VulnerabilityPolicy
    if kind == "compliance":
        return CompliancePolicy
    raise InvalidInput(f"unknown policy kind {kind!r} (expected vulnerability or compliance)")


def _load_text(kind: str, text: str | bytes) -> Any:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return parse_document(text)  # JSON is YAML too
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{kind} policy is not UTF-8 text (byte {exc.start})") from None
    except DocumentError as exc:
        if exc.syntax:
            problem = exc.problem.removeprefix("not valid YAML: ")
            raise InvalidInput(f"policy is not valid YAML or JSON: {problem}") from None
        raise InvalidInput(f"{kind} policy refused: {exc.problem}") from None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return clip(f"{where}: {first['msg']}", 500) + more


class PolicyStore(Protocol):
    """The part of ``garrison.store.Store`` that keeps policy documents."""

    def get_policy(self, kind: str) -> dict[str, Any] | None: ...

    def set_policy(self, kind: str, doc: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Policies:
    """Both policies the gate evaluates."""

    vulnerability: VulnerabilityPolicy
    compliance: CompliancePolicy


def load_policies(store: PolicyStore | None) -> Policies:
    """The stored policies, or the defaults for a kind never set."""
    vuln = store.get_policy("vulnerability") if store else None
    comp = store.get_policy("compliance") if store else None
    vulnerability = parse_policy("vulnerability", vuln) if vuln else None
    compliance = parse_policy("compliance", comp) if comp else None
    return Policies(
        vulnerability=_as(vulnerability, VulnerabilityPolicy) or default_vulnerability_policy(),
        compliance=_as(compliance, CompliancePolicy) or default_compliance_policy(),
    )


P = TypeVar("P", bound=BaseModel)


def _as(policy: Policy | None, model: type[P]) -> P | None:
    return policy if isinstance(policy, model) else None


def save_policy(store: PolicyStore, kind: str, data: Any) -> Policy:
    """Validate and store a policy; nothing is stored when it is refused."""
    policy = parse_policy(kind, data)
    store.set_policy(kind, json.loads(policy.model_dump_json()))
    return policy


__all__ = [
    "KINDS",
    "CompliancePolicy",
    "ComplianceRule",
    "CveException",
    "Decision",
    "Policies",
    "PolicyStore",
    "VulnerabilityPolicy",
    "VulnerabilityRule",
    "default_compliance_policy",
    "default_vulnerability_policy",
    "load_policies",
    "parse_policy",
    "save_policy",
]
