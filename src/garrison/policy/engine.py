"""The verdict engine: ordered rules, compiled once, resolved per container, swapped atomically.

Rule changes reach running containers by ``swap``: the defender polls the store's rules
version (cheap) and, when it moved, loads and swaps the new rule set. A swap replaces one
reference to an immutable snapshot, so a verdict being computed on another thread sees the
old rules or the new, never a mix; containers' resolved policies are recomputed on their next
event (the cache lives in the snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from garrison.policy.collections import Subject, any_matches
from garrison.policy.compiled import EffectivePolicy, compile_rule
from garrison.policy.schema import DEFAULT_RULE, RuleSet, RuntimeRule

CACHE_LIMIT = 4096  # resolved subjects kept per snapshot; a full cache starts again

SubjectKey = tuple[str, str, str, frozenset[tuple[str, str]], str]


@dataclass(frozen=True)
class _Snapshot:
    version: str
    rules: tuple[tuple[RuntimeRule, EffectivePolicy], ...]
    default: EffectivePolicy
    cache: dict[SubjectKey, EffectivePolicy] = field(default_factory=dict)


def _snapshot(rules: RuleSet) -> _Snapshot:
    compiled = tuple((r, compile_rule(r)) for r in rules.rules if not r.disabled)
    return _Snapshot(rules.digest(), compiled, compile_rule(DEFAULT_RULE))


def subject_key(subject: Subject) -> SubjectKey:
    labels: Mapping[str, str] = subject.labels
    return (
        subject.image,
        subject.container,
        subject.host,
        frozenset(labels.items()),
        subject.namespace,
    )


class PolicyEngine:
    """Holds the rules in force. ``resolve`` and ``version`` never wait on anything."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self._rules = rules or RuleSet()
        self._snap = _snapshot(self._rules)

    @property
    def version(self) -> str:
        """The digest of the rules in force (``RuleSet.digest``)."""
        return self._snap.version

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def swap(self, rules: RuleSet) -> bool:
        """Put ``rules`` in force; False (and nothing done) when they are the ones in force."""
        snap = _snapshot(rules)
        if snap.version == self._snap.version:
            return False
        self._rules, self._snap = rules, snap
        return True

    def resolve(self, subject: Subject) -> EffectivePolicy:
        """The policy of the first enabled rule covering ``subject``; the default otherwise."""
        snap = self._snap  # one read: a concurrent swap does not change this call's rules
        key = subject_key(subject)
        policy = snap.cache.get(key)
        if policy is None:
            policy = _first_match(snap, subject)
            if len(snap.cache) >= CACHE_LIMIT:
                snap.cache.clear()
            snap.cache[key] = policy
        return policy


def _first_match(snap: _Snapshot, subject: Subject) -> EffectivePolicy:
    for rule, policy in snap.rules:
        if any_matches(rule.scope, subject):
            return policy
    return snap.default
