"""The correlator over a real store (SQLite, and the in-memory fake): audits stored by anyone
are filed into incidents once, across restarts, and an archived incident is not grown."""

from __future__ import annotations

from garrison.audit.record import Audit
from garrison.incidents import IncidentFilter
from garrison.incidents.worker import Correlator, CorrelatorThread
from tests.support import wait_for

CID = "c" * 64


def audit(type_: str, attack: str, when: float, **fields: object) -> Audit:
    base: dict[str, object] = {
        "time": when, "hostname": "h", "type": type_, "attackType": attack, "effect": "alert",
        "msg": f"{attack} {sorted(fields.items())}", "containerId": CID,
        "containerName": "web", "imageName": "img",
    }  # fmt: skip
    return Audit(**(base | fields))  # type: ignore[arg-type]


def payload_story(path: str = "/tmp/x", when: float = 1000.0) -> list[Audit]:
    return [
        audit("processes", "driftBinary", when + 1, processPath=path),
        audit("filesystem", "executableCreation", when, filePath=path, processPath="/usr/bin/cp"),
        audit("processes", "unexpectedProcess", when + 1, processPath=path),
        audit("network", "unexpectedOutboundPort", when + 2, processPath=path, port=4444),
    ]


def test_a_written_binary_run_and_connecting_out_is_one_incident_in_order(store) -> None:
    store.add_audits([audit("processes", "unexpectedProcess", 990.0, processPath="/bin/ls")])
    stored = store.add_audits(payload_story())
    correlator = Correlator(store)
    assert correlator.step() == 5
    (incident,) = store.list_incidents(IncidentFilter())
    assert (incident.kind, incident.anchor, incident.state) == (
        "writtenThenExecuted", "program:/tmp/x", "open")  # fmt: skip
    assert sorted(incident.auditIds) == sorted(a.id for a in stored)
    assert (incident.firstTime, incident.lastTime) == (1000.0, 1002.0)
    assert store.incident_mark() == stored[-1].id
    assert correlator.step() == 0


def test_a_restarted_correlator_files_nothing_twice_and_goes_on_from_its_mark(store) -> None:
    first, *rest = payload_story()
    store.add_audits([first])
    Correlator(store).step()
    store.add_audits(rest)
    Correlator(store).step()  # a new process: only the mark carries over
    (incident,) = store.list_incidents(IncidentFilter())
    assert len(incident.auditIds) == 4


def test_a_miner_audit_later_renames_the_open_incident_of_its_program(store) -> None:
    store.add_audits(payload_story("/tmp/xmrig")[:2])
    correlator = Correlator(store)
    correlator.step()
    store.add_audits([audit("processes", "cryptoMiner", 1005.0, processPath="/tmp/xmrig")])
    correlator.step()
    (incident,) = store.list_incidents(IncidentFilter())
    assert (incident.kind, len(incident.auditIds)) == ("cryptoMiner", 3)


def test_after_archiving_the_same_program_opens_a_new_incident(store) -> None:
    store.add_audits(payload_story()[:2])
    correlator = Correlator(store)
    correlator.step()
    (old,) = store.list_incidents(IncidentFilter())
    store.set_incident_state(old.id, "archived")
    store.add_audits([audit("processes", "unexpectedParent", 1010.0, processPath="/tmp/x")])
    correlator.step()
    new, archived = store.list_incidents(IncidentFilter())
    assert (archived.id, archived.auditIds) == (old.id, old.auditIds)
    assert new.state == "open"
    assert new.id != old.id
    assert len(new.auditIds) == 3


def test_the_thread_files_audits_as_they_come_and_stops(store) -> None:
    thread = CorrelatorThread(store, interval=0.05).start()
    try:
        store.add_audits(payload_story())
        wait_for("an incident", lambda: store.list_incidents(IncidentFilter()))
    finally:
        thread.stop()
    assert thread.correlator.correlated == 4
