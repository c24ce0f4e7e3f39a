"""The parent-child check against an active model: ``id``, ``whoami`` and ``sleep`` learned
as children of bash, then started by python3 (an unexpected parent) and by bash again (their
learned parent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest

from garrison.devengine import PrivateEngine
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import (
    DEBIAN,
    READY_RULE,
    Container,
    about,
    audits_of,
    model_doc,
    running_defender,
    wait_audit,
    watched,
)
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

RULES = f"""
rules:
  - name: det parents
    processes:
      detections: {{parent_child: alert}}
    custom:{READY_RULE}
"""
LEARNED = "/usr/bin/id; /usr/bin/whoami; /usr/bin/sleep 0.1; true"
UNEXPECTED = "{} launched by /usr/bin/python3.11, not a parent in the runtime model"


def from_python(*argv: str) -> list[str]:
    return ["python3", "-c", f"import subprocess; subprocess.run({list(argv)!r}, check=True)"]


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine,
    docker_client: docker.DockerClient,
    test_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DefenderProcess]:
    """A defender whose Debian model learned id, whoami and sleep (children of bash) and
    python3 in a container of its own, then went active (``models learn-stop``)."""
    with running_defender(engine, tmp_path_factory.mktemp("det-parent"), RULES) as proc:
        learner = docker_client.containers.run(
            DEBIAN, ["sleep", "3600"], name="det-parent-learner", detach=True
        )
        try:
            learn(proc, watched(proc, learner))
        finally:
            learner.remove(force=True)
        yield proc


def learn(defender: DefenderProcess, box: Container) -> None:
    exec_ok(box, ["bash", "-c", LEARNED])
    exec_ok(box, ["python3", "-c", "pass"])

    def learned() -> dict[str, Any]:
        return {p["path"]: p for p in model_doc(defender, DEBIAN).get("processes", [])}

    wanted = {"/usr/bin/id", "/usr/bin/whoami", "/usr/bin/sleep", "/usr/bin/python3"}
    wait_for("the learned programs in the model", lambda: wanted <= set(learned()))
    assert learned()["/usr/bin/id"]["parents"] == ["/usr/bin/bash"]
    defender.console_call(lambda c: c.learn_stop(DEBIAN))
    wait_for("the model to turn active", lambda: model_doc(defender, DEBIAN)["state"] == "active")


def test_id_started_by_python_is_an_unexpected_parent(defender: DefenderProcess, debian) -> None:
    box = debian("det-parent-python")
    exec_ok(box, from_python("/usr/bin/id"))
    audit = wait_audit(defender, box, "unexpectedParent", "/usr/bin/python3.11")
    assert audit.processPath == "/usr/bin/id"
    assert audit.effect == "alert"
    assert audit.msg == UNEXPECTED.format("/usr/bin/id")
    # python3 and id are both in the model: only the parent is new.
    unexpected = audits_of(defender, "det-parent-python", "unexpectedProcess")
    assert not [a for a in unexpected if a.processPath.startswith("/usr/bin/")], about(unexpected)


def test_id_started_by_bash_its_learned_parent_is_not_audited(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-parent-bash")
    exec_ok(box, ["bash", "-c", "/usr/bin/id; /usr/bin/id; true"])
    # whoami's first exec in this container: judged in the permission path, never skipped.
    exec_ok(box, from_python("/usr/bin/whoami"))
    wait_audit(defender, box, "unexpectedParent", "/usr/bin/python3.11")
    found = audits_of(defender, "det-parent-bash", "unexpectedParent")
    assert [a.msg for a in found] == [UNEXPECTED.format("/usr/bin/whoami")], about(found)


def test_with_the_parent_check_on_known_files_stay_judged_in_the_kernel_path(
    defender: DefenderProcess, debian
) -> None:
    """The parent check reads what varies between execs, so no known file gets an ignore
    mark: even a process gone at once, started by an unexpected parent, is audited."""
    box = debian("det-parent-judged")
    before = skipped(defender)
    exec_ok(box, ["bash", "-c", "/usr/bin/sleep 0; true"])
    exec_ok(box, from_python("/usr/bin/sleep", "0"))
    audit = wait_audit(defender, box, "unexpectedParent", "/usr/bin/python3.11")
    assert audit.msg == UNEXPECTED.format("/usr/bin/sleep")
    assert skipped(defender) == before


def skipped(defender: DefenderProcess) -> int:
    """How many files the kernel was told to skip (ignore marks set)."""
    extra = defender.status()["sensors"]["exec"]["extra"]
    return int(extra.get("always_ignored", 0))
