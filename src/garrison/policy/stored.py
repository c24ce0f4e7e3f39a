"""Runtime rules as the store keeps them: one policy document of kind ``runtime``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from garrison.errors import InvalidInput
from garrison.policy.schema import RuleSet

RUNTIME_KIND = "runtime"


def rules_from_doc(doc: Mapping[str, Any] | None) -> RuleSet:
    """The stored document as rules; no document means no rules (the default policy)."""
    if not doc:
        return RuleSet()
    try:
        return RuleSet.model_validate(dict(doc))
    except ValueError as exc:
        raise InvalidInput(f"stored runtime rules are unreadable: {exc}") from exc


def rules_to_doc(rules: RuleSet) -> dict[str, Any]:
    return rules.model_dump(mode="json")
