"""Incidents from real violations: under ``garrison run`` on a real engine, a binary copied
into a container and run there becomes one incident whose story is the write, then the run —
read back through ``garrison incidents`` as a user would."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from garrison.incidents import Incident, IncidentFilter
from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import DEBIAN, garrison, wait_audits, watched
from tests.support import wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]


def incidents(defender: DefenderProcess, container: str) -> list[Incident]:
    query = IncidentFilter(container=container, limit=0)
    found: list[Incident] = defender.console_call(lambda c: c.list_incidents(query))
    return found


def test_a_binary_written_then_run_is_one_incident_with_its_story_in_order(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="incident-box"))
    box.exec_run(["bash", "-c", "echo notes > /tmp/notes.txt; cp /usr/bin/true /tmp/payload"])
    assert box.exec_run(["/tmp/payload"]).exit_code == 0
    wait_audits(defender, "the drift audit", container=box.id, type="processes")

    def filed() -> Incident | None:
        found = incidents(defender, "incident-box")
        return found[0] if found and len(found[0].auditIds) == 2 else None

    incident = wait_for("the incident with the write and the run", filed)
    assert len(incidents(defender, "incident-box")) == 1
    shown = garrison("incidents", "show", str(incident.id), "--json",
                     "--data-dir", str(defender.data_dir))  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert (doc["kind"], doc["state"], doc["containerName"]) == (
        "writtenThenExecuted", "open", "incident-box")  # fmt: skip
    assert doc["title"] == "/tmp/payload was written in the container, then run"
    story = [(s["type"], s["attackType"], s["filePath"] or s["processPath"]) for s in doc["story"]]
    assert story == [
        ("filesystem", "executableCreation", "/tmp/payload"),
        ("processes", "driftBinary", "/tmp/payload"),
    ]
    assert doc["tactics"] == ["TA0011 Command and Control"]
    assert [s["mitreTechnique"] for s in doc["story"]] == ["T1105 Ingress Tool Transfer"] * 2

    archived = garrison(
        "incidents", "archive", str(incident.id), "--data-dir", str(defender.data_dir)
    )
    assert archived.returncode == 0, archived.stderr
    listed = garrison("incidents", "list", "--state", "open", "--json",
                      "--data-dir", str(defender.data_dir))  # fmt: skip
    assert json.loads(listed.stdout) == []
