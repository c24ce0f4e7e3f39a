"""What the detection tests share (no tests here): a defender per module under given rules,
a readiness probe per container, and audits filtered by attack type.

Each detection test module runs one ``garrison run`` with its rules in force and a model
that stays *learning* (detections apply in every model state, anomalies do not), so the
only audits are detections. A look-alike test does the benign thing first and the real
thing after it, in the same container: once the real thing's audit is stored, an audit of
the benign thing would be stored too (one sensor, one ordered path to the store), so its
absence is a finding, not a timing accident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.models.containers

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.console import Console
from garrison.console.models import matches
from garrison.devengine import PrivateEngine
from garrison.policy import RuleSet, load_rules
from tests.defender.conftest import DefenderProcess
from tests.support import wait_for

Container = docker.models.containers.Container
DEBIAN = "garrison-test/debian:12"
READY_ARG = "garrison-ready"
# A custom rule every module's rules carry: its audit proves a container is watched.
READY_RULE = f"""
      - name: ready probe
        expression: proc.name = "true" and proc.cmdline contains "{READY_ARG}"
        message: {READY_ARG}"""


@contextlib.contextmanager
def running_defender(
    engine: PrivateEngine, data_dir: Path, rules_yaml: str, learning: str = "1h"
) -> Iterator[DefenderProcess]:
    """``garrison run`` with ``rules_yaml`` in force; stopped by its pid at the end."""
    defender = DefenderProcess(engine, data_dir, learning).start()
    try:
        apply_rules(defender, rules_yaml)
        yield defender
    finally:
        defender.stop()


def apply_rules(defender: DefenderProcess, rules_yaml: str) -> RuleSet:
    """Put rules in force through the console; return once the defender reports them."""
    rules = load_rules(rules_yaml, source="detection rules")
    defender.console_call(lambda c: c.apply_runtime_rules(rules))
    version = rules.digest()[:12]
    wait_for("the defender to take the rules", lambda: defender.status().get("rules") == version)
    return rules


def audits_of(defender: DefenderProcess, container: str, attack: str) -> list[Audit]:
    """Every stored audit of ``container`` with attackType ``attack``."""
    query = AuditFilter(container=container, limit=0)
    found: list[Audit] = defender.console_call(lambda c: c.list_audits(query))
    return [a for a in found if a.attackType == attack]


def wait_audit(defender: DefenderProcess, container: Container, attack: str, about: str) -> Audit:
    """The audit of ``attack`` in ``container`` whose msg names ``about`` (a path, a port)."""

    def probe() -> Audit | None:
        found = audits_of(defender, container.name, attack)
        return next((a for a in found if about in a.msg), None)

    found: Audit = wait_for(f"a {attack} audit about {about} in {container.name}", probe)
    return found


def watched(defender: DefenderProcess, container: Container) -> Container:
    """Wait until the defender judges this container's execs (its probe exec is audited)."""

    def probe() -> bool:
        container.exec_run(["/usr/bin/true", READY_ARG])
        return bool(
            [a for a in audits_of(defender, container.name, "customRule") if READY_ARG in a.msg]
        )

    wait_for(f"{container.name} to be watched", probe)
    return container


def about(audits: list[Audit]) -> list[str]:
    """What each audit is about, for an assertion message that says what fired."""
    return [f"{a.effect} {a.processPath}: {a.msg}" for a in audits]


def model_doc(defender: DefenderProcess, image: str) -> dict[str, Any]:
    """The stored model of ``image`` ({} before the defender saved one)."""

    def show(console: Console) -> dict[str, Any]:
        return next((m for m in console.store.load_models() if matches(m, image)), {})

    found: dict[str, Any] = defender.console_call(show)
    return found
