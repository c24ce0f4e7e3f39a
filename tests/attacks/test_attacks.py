"""The attack corpus, run for real: each behaviour of ``corpus.py`` and its look-alike.

One ``garrison run`` (BPF process events) watches every container. For each behaviour:
- under the alerting rule, the look-alike runs first and the attack after it: the attack's
  audit names what it did (type, attack type, effect, path), its payload ran (the marker is
  there), and no audit of that attack type names anything else — once the attack's audit is
  stored, one for the look-alike would be stored already (one ordered path to the store);
- when preventable, under the preventing rule: the audit says prevent, the payload never ran
  (no marker) and the container runs on;
- when it can only be seen once it started (the loader run by hand), under the preventing
  rule: the audit says prevent and that the process was killed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.audit.record import Audit
from garrison.devengine import PrivateEngine
from tests.attacks.corpus import BEHAVIOURS, IMAGES, MARKER, Behaviour, rules
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import (
    READY_ARG,
    READY_RULE,
    Container,
    about,
    audits_of,
    running_defender,
    wait_audit,
)
from tests.support import wait_for

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefenderProcess]:
    with running_defender(engine, tmp_path_factory.mktemp("attacks"), rules(READY_RULE)) as proc:
        yield proc


@pytest.fixture
def box(
    defender: DefenderProcess, run_container: Any, tmp_path: Path
) -> Callable[[str, Behaviour], Container]:
    """A watched container of the behaviour's image, named for the rule it runs under, with
    a tmpfs at /scratch and a volume (a host folder) at /data."""

    def start(rule: str, behaviour: Behaviour) -> Container:
        name = f"atk-{rule}-{behaviour.name}"
        command = ["sleep", "3600"]
        volume = tmp_path / f"volume-{rule}"
        volume.mkdir()
        mounts = {"tmpfs": {"/scratch": "exec"}, "volumes": {str(volume): {"bind": "/data"}}}
        container = run_container(IMAGES[behaviour.image], command, name=name, **mounts)
        wait_for(f"{name} to be watched", lambda: ready(defender, container))
        return container

    return start


def ready(defender: DefenderProcess, container: Container) -> bool:
    """Is the container watched (its probe exec audited)? /bin/true is in both images."""
    container.exec_run(["/bin/true", READY_ARG])
    audits = audits_of(defender, container.name, "customRule")
    return any(READY_ARG in a.msg for a in audits)


def run(container: Container, script: str, user: str = "", check: bool = True) -> str:
    """Run a shell script in the container; unless ``check`` is off, it must exit 0 (a
    refused attack may fail in its own way: EPERM, status 126 or 137)."""
    shell = "/bin/sh" if "busybox" in str(container.image.tags) else "/bin/bash"
    code, output = container.exec_run([shell, "-c", script], user=user or "root")
    text = bytes(output).decode(errors="replace")
    assert code == 0 or not check, f"{script!r} exited {code}: {text}"
    return text


def marker(container: Container) -> bool:
    code, _ = container.exec_run(["/bin/sh", "-c", f"test -e {MARKER}"])
    return code == 0


def found(defender: DefenderProcess, container: Container, b: Behaviour) -> list[Audit]:
    """The audits of the behaviour's attack type (the readiness probe's left out)."""
    audits = audits_of(defender, container.name, b.attack_type)
    return [a for a in audits if READY_ARG not in a.msg]


def check_audit(audit: Audit, b: Behaviour, effect: str) -> None:
    assert (audit.type, audit.attackType, audit.effect) == (b.audit_type, b.attack_type, effect)
    if b.process_path is not None:
        assert audit.processPath == b.process_path, audit


@pytest.mark.parametrize("b", BEHAVIOURS, ids=[b.name for b in BEHAVIOURS])
def test_the_attack_is_audited_and_its_look_alike_is_not(
    defender: DefenderProcess, box: Callable[[str, Behaviour], Container], b: Behaviour
) -> None:
    container = box("alert", b)
    run(container, b.lookalike)
    run(container, b.attack, b.user)
    audit = wait_audit(defender, container, b.attack_type, b.about)
    check_audit(audit, b, "alert")
    assert marker(container), "the attack's payload did not run: the scenario proves nothing"
    others = [a for a in found(defender, container, b) if b.about not in a.msg]
    assert not others, about(others)


def attacked_under_prevent(
    defender: DefenderProcess, box: Callable[[str, Behaviour], Container], b: Behaviour
) -> tuple[Container, Audit]:
    """Run the attack under the preventing rule (it may fail in its own way); its audit,
    checked to say prevent."""
    container = box("prevent", b)
    run(container, b.attack, b.user, check=False)
    audit = wait_audit(defender, container, b.attack_type, b.about)
    check_audit(audit, b, "prevent")
    return container, audit


def running(container: Container) -> bool:
    container.reload()
    return bool(container.status == "running")


PREVENTABLE = [b for b in BEHAVIOURS if b.preventable]


@pytest.mark.parametrize("b", PREVENTABLE, ids=[b.name for b in PREVENTABLE])
def test_the_attack_is_refused_before_its_payload_runs(
    defender: DefenderProcess, box: Callable[[str, Behaviour], Container], b: Behaviour
) -> None:
    container, _audit = attacked_under_prevent(defender, box, b)
    assert not marker(container), f"{b.name}: the payload ran although the rule prevents it"
    assert running(container)


KILLED = [b for b in BEHAVIOURS if b.killed_after]


@pytest.mark.parametrize("b", KILLED, ids=[b.name for b in KILLED])
def test_the_attack_is_killed_just_after_it_starts(
    defender: DefenderProcess, box: Callable[[str, Behaviour], Container], b: Behaviour
) -> None:
    container, audit = attacked_under_prevent(defender, box, b)
    assert audit.msg.endswith("; seen after it started: killed"), audit.msg
    assert not marker(container), f"{b.name}: the payload ran on although it was killed"
    assert running(container)
