"""Helpers of the enforcement tests (this module holds no tests): rules put in force, audits
read back, the ``garrison`` command line run as a user runs it, and container state.

It is named ``test_enforcement_*`` only because those are the files the enforcement tests
own; a shared ``tests/defender/enforcement.py`` would be the better home.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import docker.models.containers

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.policy import RuleSet, load_rules
from tests.defender.conftest import DefenderProcess
from tests.support import wait_for

Container = docker.models.containers.Container

DEBIAN = "garrison-test/debian:12"
BUSYBOX = "garrison-test/busybox:latest"
EPERM = "Operation not permitted"
BLOCKED_RESTART = "blockedContainerStarted"  # garrison.defender.actions.BLOCKED_RESTART


def deny_nc(containers: str, effect: str = "prevent") -> str:
    """Rules text: ``nc`` refused (or the container blocked) in the containers ``containers``
    names (a pattern), everything else as the default policy has it."""
    return f"""
rules:
  - name: no netcat
    scope: [{{containers: ["{containers}"]}}]
    processes:
      denied: {{effect: {effect}, paths: [nc]}}
"""


def store_rules(defender: DefenderProcess, text: str) -> RuleSet:
    """Store the rules as ``garrison rules apply`` does; a running defender polls them."""
    rules = load_rules(text)
    defender.console_call(lambda c: c.apply_runtime_rules(rules))
    return rules


def put_rules(defender: DefenderProcess, text: str) -> RuleSet:
    """Store the rules and wait until the defender reports them in force."""
    rules = store_rules(defender, text)
    version = rules.digest()[:12]
    wait_for(f"rules {version} in force", lambda: defender.status().get("rules") == version)
    return rules


def watched(defender: DefenderProcess, container: Container) -> Container:
    """Wait until the defender watches ``container`` (its sensors are in place)."""
    wait_for(f"{container.name} to be watched", lambda: container.id in watching(defender))
    return container


def watching(defender: DefenderProcess) -> list[str]:
    found: list[str] = defender.status().get("watching", [])
    return found


def audits(defender: DefenderProcess, **query: Any) -> list[Audit]:
    found: list[Audit] = defender.console_call(
        lambda c: c.list_audits(AuditFilter(limit=0, **query))
    )
    return found


def wait_audits(defender: DefenderProcess, what: str, **query: Any) -> list[Audit]:
    found: list[Audit] = wait_for(what, lambda: audits(defender, **query))
    return found


def settle(defender: DefenderProcess) -> None:
    """Wait for a status written well after now: whatever the defender was doing with the
    events seen so far is in the store by then (audits are flushed each half second)."""
    after = time.time() + 1.0
    wait_for(
        "a status report written after the last event",
        lambda: defender.status().get("updatedAt", 0) > after,
    )


def active_model(defender: DefenderProcess, image: str) -> None:
    def active() -> bool:
        models = defender.console_call(lambda c: c.list_models())
        return any(m["imageName"] == image and m["state"] == "active" for m in models)

    wait_for(f"the model of {image} to turn active", active)


def garrison(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``garrison`` command line in a child process: its real exit status and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "garrison", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def state(container: Container) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs["State"])


def restart_policy(container: Container) -> str:
    container.reload()
    return str(container.attrs["HostConfig"]["RestartPolicy"]["Name"])


def wait_stopped(container: Container, why: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        f"{container.name} to be stopped ({why})",
        lambda: (s := state(container)) and not s["Running"] and s,
    )
    return found
