"""Incidents in the store, on the real SQLite file and on the in-memory fake alike: saved and
grown without an audit twice, found open by anchor, archived, listed by filter; the
correlator's mark moves with the incident it finished."""

from __future__ import annotations

import dataclasses

import pytest

from garrison.errors import InvalidInput
from garrison.incidents import Incident, IncidentFilter
from tests.store.test_store_contract import audit

CID = "c1" + "0" * 62


def incident(**fields: object) -> Incident:
    base: dict[str, object] = {
        "kind": "writtenThenExecuted", "anchor": "program:/tmp/x", "containerId": CID,
        "containerName": "web", "imageName": "img", "hostname": "h",
        "firstTime": 1000.0, "lastTime": 1001.0,
    }  # fmt: skip
    return Incident(**(base | fields))  # type: ignore[arg-type]


def test_audits_after_reads_in_stored_order_and_get_audits_by_id(store) -> None:
    stored = store.add_audits([audit(msg=f"m{n}", time=2000.0 - n) for n in range(5)])
    ids = [a.id for a in stored]
    assert [a.id for a in store.audits_after(0, 10)] == ids, "id order, not time order"
    assert [a.id for a in store.audits_after(ids[1], 2)] == ids[2:4]
    assert sorted(a.msg for a in store.get_audits([ids[4], ids[0], 999_999])) == ["m0", "m4"]


def test_an_incident_grows_without_an_audit_twice_and_keeps_its_story_order(store) -> None:
    a, b, c = store.add_audits([audit(msg=m) for m in "abc"])
    saved = store.save_incident(incident(), [(b.id, 1001.0), (a.id, 1000.0)], mark=b.id)
    assert saved.id is not None
    assert saved.auditIds == (a.id, b.id)
    assert store.incident_mark() == b.id
    grown = dataclasses.replace(saved, lastTime=1002.0, kind="cryptoMiner")
    again = store.save_incident(grown, [(a.id, 1000.0), (c.id, 1002.0)])
    assert again.auditIds == (a.id, b.id, c.id)
    assert (again.id, again.kind, again.lastTime) == (saved.id, "cryptoMiner", 1002.0)
    assert store.get_incident(saved.id) == again


def test_only_an_open_incident_is_found_by_its_anchor(store) -> None:
    first = store.save_incident(incident(), [])
    assert store.open_incident(CID, "program:/tmp/x") == first
    assert store.open_incident(CID, "program:/tmp/y") is None
    assert store.open_incident("d" * 64, "program:/tmp/x") is None
    assert store.set_incident_state(first.id, "archived")
    assert store.open_incident(CID, "program:/tmp/x") is None
    assert not store.set_incident_state(999_999, "archived")
    second = store.save_incident(incident(), [])
    assert second.id != first.id
    assert store.open_incident(CID, "program:/tmp/x") == second


def test_incidents_are_listed_most_recent_first_and_filtered(store) -> None:
    old = store.save_incident(incident(lastTime=10.0), [])
    new = store.save_incident(incident(anchor="ports", kind="portScan", lastTime=20.0), [])
    other = store.save_incident(incident(containerId="d" * 64, containerName="db"), [])
    store.set_incident_state(old.id, "archived")
    everything = store.list_incidents(IncidentFilter())
    assert [i.id for i in everything] == [other.id, new.id, old.id]
    assert [i.id for i in store.list_incidents(IncidentFilter(state="open"))] == [other.id, new.id]
    assert [i.id for i in store.list_incidents(IncidentFilter(container="db"))] == [other.id]
    assert [i.id for i in store.list_incidents(IncidentFilter(container="c1"))] == [new.id, old.id]
    assert [i.id for i in store.list_incidents(IncidentFilter(kind="portScan"))] == [new.id]
    assert len(store.list_incidents(IncidentFilter(limit=1))) == 1
    assert store.list_incidents(IncidentFilter(container="%")) == []


def test_a_bad_filter_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput, match="open or archived"):
        IncidentFilter(state="closed")
    with pytest.raises(InvalidInput, match="limit"):
        IncidentFilter(limit=-1)
