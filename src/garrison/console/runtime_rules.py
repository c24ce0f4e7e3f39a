"""The console's side of runtime rules and blocked containers.

Rules are one stored document (policy kind ``runtime``); a running defender polls it and puts
changes in force within a second. Unblocking restores the restart policy a container had
before Garrison blocked it, then forgets the block; it does not start the container.
"""

from __future__ import annotations

import contextlib

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import ContainerGone, InvalidInput, NotFound
from garrison.policy import RuleSet, RuntimeRule
from garrison.policy.stored import RUNTIME_KIND, rules_from_doc, rules_to_doc
from garrison.runtime.base import ContainerRuntime
from garrison.store.base import BlockedContainer, Store


def get_rules(store: Store) -> RuleSet:
    return rules_from_doc(store.get_policy(RUNTIME_KIND))


def set_rules(store: Store, rules: RuleSet) -> None:
    store.set_policy(RUNTIME_KIND, rules_to_doc(rules))


def find_rule(rules: RuleSet, name: str) -> RuntimeRule:
    for rule in rules.rules:
        if rule.name == name:
            return rule
    names = ", ".join(repr(r.name) for r in rules.rules) or "none"
    raise NotFound(f"no runtime rule named {name!r} (rules: {names})")


def delete_rule(store: Store, name: str) -> RuleSet:
    rules = get_rules(store)
    find_rule(rules, name)
    kept = RuleSet(rules=[r for r in rules.rules if r.name != name])
    set_rules(store, kept)
    return kept


def find_blocked(store: Store, ref: str) -> BlockedContainer:
    """A blocked container by id prefix (at least 4 characters) or name."""
    if not ref.strip():
        raise InvalidInput("name a blocked container: an id prefix or a name")
    blocked = store.list_blocked()
    found = [
        b for b in blocked if b.name == ref or (len(ref) >= 4 and b.container_id.startswith(ref))
    ]
    if not found:
        raise NotFound(f"no blocked container {ref!r} (garrison containers blocked lists them)")
    if len(found) > 1:
        raise InvalidInput(f"{ref!r} names {len(found)} blocked containers: give more of the id")
    return found[0]


def blocking_audit(store: Store, record: BlockedContainer) -> Audit | None:
    query = AuditFilter(container=record.container_id, effect="block", limit=0)
    audits = store.list_audits(query)
    return next((a for a in audits if a.id == record.audit_id), audits[-1] if audits else None)


def unblock(store: Store, runtime: ContainerRuntime, ref: str) -> BlockedContainer:
    """Restore the original restart policy, then clear the block. A container removed
    meanwhile is simply forgotten. A container of another host (one enrolled with this
    console) is that host's to restore: its defender does when its sync no longer finds the
    block (docs/fleet.md)."""
    record = find_blocked(store, ref)
    if not (record.host and store.get_host(record.host) is not None):
        with contextlib.suppress(ContainerGone):
            runtime.set_restart_policy(record.container_id, record.restart_policy)
    store.remove_blocked(record.container_id)
    return record
