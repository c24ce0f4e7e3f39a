"""A fileless program is found with the proc connector too (it was taken for runc's own memfd
and dropped), and killed just after it starts under a prevent rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from garrison.devengine import PrivateEngine
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import DEBIAN, apply_rules, wait_audit
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

RULES = """
rules:
  - name: fileless prevented
    scope: [{containers: ["fl-prevent-*"]}]
    processes: {detections: {fileless: prevent}}
  - name: fileless
    processes: {detections: {fileless: alert}}
"""
# A shell run from a memfd that lives two seconds (its sleep is a child, not an exec of it).
MEMFD = """
import os
fd = os.memfd_create("payload", 0)
os.write(fd, open("/bin/sh", "rb").read())
os.execv(f"/proc/self/fd/{fd}", ["sh", "-c", "sleep 2; touch /tmp/ran"])
"""


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefenderProcess]:
    data = tmp_path_factory.mktemp("fileless-pc")
    proc = DefenderProcess(engine, data, "1h", ["--process-events", "proc_connector"]).start()
    try:
        apply_rules(proc, RULES)
        yield proc
    finally:
        proc.stop()


def started(defender: DefenderProcess, run_container: Any, name: str) -> Any:
    box = run_container(DEBIAN, ["sleep", "3600"], name=name)
    wait_for_watch(defender, box)
    return box


def wait_for_watch(defender: DefenderProcess, box: Any) -> None:
    wait_for(f"{box.name} to be watched", lambda: box.id in defender.status()["watching"])


def test_a_memfd_program_is_audited_with_its_digest(
    defender: DefenderProcess, run_container: Any
) -> None:
    box = started(defender, run_container, "fl-alert")
    exec_ok(box, ["python3", "-c", MEMFD])
    audit = wait_audit(defender, box, "filelessExecution", "/memfd:payload")
    assert (audit.effect, audit.processPath) == ("alert", "/memfd:payload")
    assert "sha256 " in audit.msg
    assert "sha256 unknown" not in audit.msg


def test_a_memfd_program_is_killed_under_prevent(
    defender: DefenderProcess, run_container: Any
) -> None:
    box = started(defender, run_container, "fl-prevent-1")
    code, _ = box.exec_run(["python3", "-c", MEMFD])
    assert code == 137
    audit = wait_audit(defender, box, "filelessExecution", "/memfd:payload")
    assert audit.effect == "prevent"
    assert audit.msg.endswith("; seen after it started: killed")
    assert box.exec_run(["test", "-e", "/tmp/ran"]).exit_code == 1
