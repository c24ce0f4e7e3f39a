"""``/api/v1/policies/…``: the runtime rules, and the gate's vulnerability and compliance rules.

``PUT`` replaces a policy whole with the same checks as ``garrison rules apply`` (every problem
refused with its place, nothing applied); a running defender puts runtime rules in force
within a second.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body

from garrison.api.deps import Core, Operator, Reader
from garrison.policy.loading import load_rules
from garrison.policy.stored import rules_to_doc

router = APIRouter(tags=["policies"])
RUNTIME = "/api/v1/policies/runtime/container"
GATE = {"vulnerability": "/api/v1/policies/vulnerability/images",
        "compliance": "/api/v1/policies/compliance/container"}  # fmt: skip

Document = Body(description="The policy: {rules: [...]}, as the CLI's files hold it")


@router.get(RUNTIME)
def runtime_policy(console: Core, _: Reader) -> dict[str, Any]:
    """The runtime rules in force, in order."""
    return rules_to_doc(console.runtime_rules())


@router.put(RUNTIME)
def put_runtime_policy(
    console: Core, _: Operator, doc: dict[str, Any] = Document
) -> dict[str, Any]:
    """Replace every runtime rule with the document's (checked whole first)."""
    rules = load_rules(json.dumps(doc), source="policy", fmt="json")
    console.apply_runtime_rules(rules)
    return {**rules_to_doc(rules), "version": rules.digest()[:12]}


@router.get(GATE["vulnerability"])
def vulnerability_policy(console: Core, _: Reader) -> dict[str, Any]:
    """The gate's vulnerability rules (the default when none was stored)."""
    return _gate(console, "vulnerability")


@router.put(GATE["vulnerability"])
def put_vulnerability_policy(
    console: Core, _: Operator, doc: dict[str, Any] = Document
) -> dict[str, Any]:
    return _put_gate(console, "vulnerability", doc)


@router.get(GATE["compliance"])
def compliance_policy(console: Core, _: Reader) -> dict[str, Any]:
    """The gate's compliance rules (the default when none was stored)."""
    return _gate(console, "compliance")


@router.put(GATE["compliance"])
def put_compliance_policy(
    console: Core, _: Operator, doc: dict[str, Any] = Document
) -> dict[str, Any]:
    return _put_gate(console, "compliance", doc)


def _gate(console: Core, kind: str) -> dict[str, Any]:
    policy, _ = console.gate_policy(kind)
    found: dict[str, Any] = json.loads(policy.model_dump_json())
    return found


def _put_gate(console: Core, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    policy = console.apply_gate_policy(kind, doc)
    found: dict[str, Any] = json.loads(policy.model_dump_json())
    return found
