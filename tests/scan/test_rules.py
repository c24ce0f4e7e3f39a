"""Vulnerability and compliance rules: thresholds, scopes, exceptions, grace periods, messages,
and refusal of malformed policies."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from garrison.errors import InvalidInput
from garrison.policy.collections import Collection, Subject
from garrison.scan.compliance import CATALOG
from garrison.scan.rules import (
    CompliancePolicy,
    VulnerabilityPolicy,
    load_policies,
    parse_policy,
    save_policy,
)
from garrison.scan.types import ComplianceIssue, Finding, Package, Severity
from garrison.store import MemoryStore

TODAY = dt.date(2025, 6, 1)
SUBJECT = Subject(image="garrison-test/debian:12", container="web", host="h1")


def finding(
    fid: str,
    severity: Severity,
    fixed: str = "1.1",
    fix_date: str = "",
    aliases: tuple[str, ...] = (),
) -> Finding:
    pkg = Package("Debian", "openssl", "1.0", "openssl", "1.0")
    return Finding(fid, aliases, pkg, "1.0", fixed, severity, None, fix_date=fix_date)


FINDINGS = [
    finding("DSA-1", Severity.CRITICAL, aliases=("CVE-2024-0001",)),
    finding("DSA-2", Severity.HIGH),
    finding("DSA-3", Severity.HIGH, fixed=""),
    finding("DSA-4", Severity.MEDIUM),
    finding("DSA-5", Severity.LOW),
]


def vuln_policy(**rule: object) -> VulnerabilityPolicy:
    policy = parse_policy("vulnerability", {"rules": [{"name": "RULE", **rule}]})
    assert isinstance(policy, VulnerabilityPolicy)
    return policy


def issue(check_id: str) -> ComplianceIssue:
    return CATALOG[check_id].issue("detail")


def test_block_rule_blocks_with_the_documented_message() -> None:
    decision = vuln_policy(effect="block").evaluate(SUBJECT, FINDINGS, TODAY)
    assert decision.blocked
    assert decision.message == (
        "[Garrison] Container operation blocked by policy: RULE, has 3 vulnerabilities, "
        "[critical:1 high:2]"
    )
    assert decision.counts == {"critical": 1, "high": 2}
    assert [f.id for f in decision.findings] == ["DSA-1", "DSA-2", "DSA-3"]


def test_alert_rule_never_blocks() -> None:
    decision = vuln_policy(effect="alert", alert_threshold="medium").evaluate(
        SUBJECT, FINDINGS, TODAY
    )
    assert decision.effect == "alert"
    assert decision.counts == {"critical": 1, "high": 2, "medium": 1}


def test_ignore_rule_reports_nothing() -> None:
    decision = vuln_policy(effect="ignore").evaluate(SUBJECT, FINDINGS, TODAY)
    assert (decision.effect, decision.rule, decision.findings) == ("allow", "RULE", ())


def test_block_threshold_below_the_findings_allows() -> None:
    only_medium = [f for f in FINDINGS if f.severity <= Severity.MEDIUM]
    decision = vuln_policy(effect="block").evaluate(SUBJECT, only_medium, TODAY)
    assert decision.effect == "allow"


def test_block_threshold_high_counts_findings_below_the_alert_threshold_too() -> None:
    policy = vuln_policy(effect="block", alert_threshold="critical", block_threshold="high")
    decision = policy.evaluate(SUBJECT, FINDINGS, TODAY)
    assert decision.blocked
    assert decision.counts == {"critical": 1, "high": 2}


def test_only_fixed_leaves_out_findings_without_a_fix() -> None:
    decision = vuln_policy(effect="block", only_fixed=True).evaluate(SUBJECT, FINDINGS, TODAY)
    assert decision.counts == {"critical": 1, "high": 1}


def test_exception_by_alias_ignores_until_it_expires() -> None:
    rule = {"effect": "block", "exceptions": [{"id": "cve-2024-0001", "expires": "2025-06-01"}]}
    policy = vuln_policy(**rule)
    on_expiry_day = policy.evaluate(SUBJECT, FINDINGS[:1], TODAY)
    assert on_expiry_day.effect == "allow"
    day_after = policy.evaluate(SUBJECT, FINDINGS[:1], TODAY + dt.timedelta(days=1))
    assert day_after.blocked


def test_exception_can_block_a_finding_below_the_thresholds() -> None:
    policy = vuln_policy(effect="alert", exceptions=[{"id": "DSA-5", "effect": "block"}])
    decision = policy.evaluate(SUBJECT, FINDINGS, TODAY)
    assert decision.blocked
    assert decision.counts == {"critical": 1, "high": 2, "low": 1}


def test_grace_period_suppresses_blocking_but_still_alerts() -> None:
    fresh = finding("DSA-9", Severity.CRITICAL, fix_date="2025-05-25T10:00:00Z")
    old = finding("DSA-8", Severity.CRITICAL, fix_date="2025-01-01")
    undated = finding("DSA-7", Severity.CRITICAL)
    policy = vuln_policy(effect="block", grace_days=30)
    assert policy.evaluate(SUBJECT, [fresh], TODAY).effect == "alert"
    assert policy.evaluate(SUBJECT, [old], TODAY).blocked
    assert policy.evaluate(SUBJECT, [undated], TODAY).blocked


def test_custom_block_message_is_appended() -> None:
    decision = vuln_policy(effect="block", block_message="Ask #security.").evaluate(
        SUBJECT, FINDINGS[:1], TODAY
    )
    assert decision.message.endswith("[critical:1]. Ask #security.")


def test_first_rule_whose_scope_matches_applies() -> None:
    policy = parse_policy(
        "vulnerability",
        [
            {"name": "off", "disabled": True, "effect": "block"},
            {"name": "nginx", "effect": "block", "collections": [{"images": ["*nginx*"]}]},
            {"name": "web", "effect": "ignore", "collections": [{"containers": ["web"]}]},
            {"name": "rest", "effect": "block"},
        ],
    )
    assert isinstance(policy, VulnerabilityPolicy)
    assert policy.evaluate(SUBJECT, FINDINGS, TODAY).rule == "web"
    other = Subject(image="garrison-test/nginx:latest", container="web")
    assert policy.evaluate(other, FINDINGS, TODAY).rule == "nginx"
    assert policy.evaluate(Subject(image="x"), FINDINGS, TODAY).rule == "rest"


def test_no_matching_rule_allows() -> None:
    scoped = Collection(images=["nothing-like-this"])
    policy = VulnerabilityPolicy.model_validate(
        {"rules": [{"name": "r", "effect": "block", "collections": [scoped.model_dump()]}]}
    )
    assert policy.evaluate(SUBJECT, FINDINGS, TODAY).effect == "allow"


def test_compliance_rule_blocks_on_selected_checks_and_names_them() -> None:
    policy = parse_policy(
        "compliance",
        {"rules": [{"name": "hardening", "checks": {"5.4": "block", "GCIS-5.31": "block",
                                                    "4.1": "alert"}}]},
    )  # fmt: skip
    assert isinstance(policy, CompliancePolicy)
    issues = [issue("GCIS-5.4"), issue("GCIS-5.31"), issue("GCIS-4.1"), issue("GCIS-5.10")]
    decision = policy.evaluate(SUBJECT, issues)
    assert decision.blocked
    assert decision.message == (
        "[Garrison] Container operation blocked by policy: hardening, violates 2 compliance "
        "checks: GCIS-5.4 Privileged container; GCIS-5.31 Docker socket mounted"
    )
    assert [i.check_id for i in decision.issues] == ["GCIS-5.4", "GCIS-5.31", "GCIS-4.1"]
    alert_only = policy.evaluate(SUBJECT, [issue("GCIS-4.1")])
    assert alert_only.effect == "alert"
    assert policy.evaluate(SUBJECT, [issue("GCIS-5.10")]).effect == "allow"


def test_default_policies_alert_and_never_block() -> None:
    policies = load_policies(MemoryStore())
    vuln = policies.vulnerability.evaluate(SUBJECT, FINDINGS, TODAY)
    assert (vuln.effect, vuln.counts) == ("alert", {"critical": 1, "high": 2})
    comp = policies.compliance.evaluate(SUBJECT, [issue("GCIS-5.4")])
    assert comp.effect == "alert"


def test_policies_round_trip_through_the_store_from_yaml() -> None:
    store = MemoryStore()
    yaml_text = """
rules:
  - name: block critical
    effect: block
    grace_days: 7
    exceptions:
      - {id: CVE-2024-0001, expires: 2030-01-01, note: accepted}
"""
    save_policy(store, "vulnerability", yaml_text)
    save_policy(store, "compliance", '[{"name": "c", "checks": {"5.4": "block"}}]')
    policies = load_policies(store)
    assert policies.vulnerability.rules[0].exceptions[0].expires == dt.date(2030, 1, 1)
    assert policies.compliance.rules[0].checks == {"GCIS-5.4": "block"}


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("vulnerability", "rules: [{name: a}, {name: a}]", "rule names must be unique: a"),
        ("vulnerability", "rules: [{name: a, block_threshold: severe}]",
         "rules.0.block_threshold: Input should be"),
        ("vulnerability", "rules: [{name: a, grace_days: -1}]", "rules.0.grace_days"),
        ("vulnerability", "rules: [{name: a, efect: block}]", "rules.0.efect: Extra inputs"),
        ("compliance", "rules: [{name: a, checks: {'5.99': block}}]",
         "unknown compliance check '5.99'"),
        ("compliance", "rules: [{name: a, checks: {'5.4': stop}}]",
         "rules.0.checks.5.4: Input should be"),
        ("compliance", "rules: [{name: a, checks: [5.4]}]", "rules.0.checks"),
        ("compliance", "{rules: [", "policy is not valid YAML or JSON"),
        ("runtime", "rules: []", "unknown policy kind 'runtime'"),
    ],
)  # fmt: skip
def test_malformed_policies_are_refused_whole_with_a_clear_message(
    kind: str, text: str, expected: str
) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidInput, match=re.escape(expected)):
        save_policy(store, kind, text)
    assert store.get_policy(kind) is None
