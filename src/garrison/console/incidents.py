"""The console's incidents (the ``Console`` methods delegate here)."""

from __future__ import annotations

from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.incidents.correlate import story_order
from garrison.incidents.record import Incident, IncidentState
from garrison.store.base import Store
from garrison.text import clip


def incident_id(ref: str | int) -> int:
    """An incident's id as a user gives it (``12`` or ``#12``)."""
    text = str(ref).strip().removeprefix("#")
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(f"incident id must be a number, not {clip(str(ref), 30)!r}")
    return int(text)


def show(store: Store, ref: str | int) -> tuple[Incident, list[Audit]]:
    """An incident and its story: its audits as they happened (an audit removed by retention
    since is left out)."""
    found = store.get_incident(incident_id(ref))
    if found is None:
        raise InvalidInput(f"incident {clip(str(ref), 30)}: no such incident")
    return found, story_order(store.get_audits(found.auditIds))


def set_state(store: Store, ref: str | int, state: IncidentState) -> Incident:
    number = incident_id(ref)
    if not store.set_incident_state(number, state):
        raise InvalidInput(f"incident {number}: no such incident")
    found = store.get_incident(number)
    assert found is not None  # just changed
    return found
