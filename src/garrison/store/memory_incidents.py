"""The in-memory store's incidents (a part of ``MemoryStore``): the same rules as SQLite."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from garrison.audit.record import Audit
from garrison.incidents.record import Incident, IncidentFilter, IncidentState


class MemoryIncidents:
    """Needs the store's ``_lock`` and ``_audits``; ids of its own, like SQLite's tables."""

    _lock: threading.Lock
    _audits: dict[tuple[str, ...], Audit]

    def __init__(self) -> None:
        self._incidents: dict[int, Incident] = {}
        self._joined: dict[int, dict[int, float]] = {}  # incident → audit id → time joined
        self._incident_mark = 0

    def audits_after(self, audit_id: int, limit: int) -> list[Audit]:
        with self._lock:
            found = sorted((a for a in self._audits.values() if (a.id or 0) > audit_id),
                           key=lambda a: a.id or 0)  # fmt: skip
        return found[:limit]

    def get_audits(self, audit_ids: Sequence[int]) -> list[Audit]:
        wanted = set(audit_ids)
        with self._lock:
            return [a for a in self._audits.values() if a.id in wanted]

    def incident_mark(self) -> int:
        return self._incident_mark

    def set_incident_mark(self, audit_id: int) -> None:
        self._incident_mark = audit_id

    def save_incident(
        self, incident: Incident, joined: Sequence[tuple[int, float]], mark: int | None = None
    ) -> Incident:
        with self._lock:
            incident_id = incident.id or len(self._incidents) + 1
            links = self._joined.setdefault(incident_id, {})
            for audit_id, when in joined:
                links.setdefault(audit_id, when)
            self._incidents[incident_id] = dataclasses.replace(incident, id=incident_id)
            if mark is not None:
                self._incident_mark = mark
            return self._view(incident_id)

    def open_incident(self, container_id: str, anchor: str) -> Incident | None:
        with self._lock:
            key = (container_id, anchor, "open")
            ids = [
                i for i, x in self._incidents.items() if (x.containerId, x.anchor, x.state) == key
            ]
            return self._view(max(ids)) if ids else None

    def get_incident(self, incident_id: int) -> Incident | None:
        with self._lock:
            return self._view(incident_id) if incident_id in self._incidents else None

    def list_incidents(self, query: IncidentFilter) -> list[Incident]:
        with self._lock:
            found = [self._view(i) for i in self._incidents]
        found = sorted((x for x in found if query.matches(x)),
                       key=lambda x: (x.lastTime, x.id or 0), reverse=True)  # fmt: skip
        return found[: query.limit] if query.limit else found

    def set_incident_state(self, incident_id: int, state: IncidentState) -> bool:
        with self._lock:
            if incident_id not in self._incidents:
                return False
            self._incidents[incident_id] = dataclasses.replace(
                self._incidents[incident_id], state=state
            )
            return True

    def _view(self, incident_id: int) -> Incident:
        links = self._joined.get(incident_id, {})
        ordered = sorted(links, key=lambda audit_id: (links[audit_id], audit_id))
        return dataclasses.replace(self._incidents[incident_id], auditIds=tuple(ordered))


def _key(incident: Incident) -> tuple[str, str, str]:
    return (incident.containerId, incident.anchor, incident.state)
