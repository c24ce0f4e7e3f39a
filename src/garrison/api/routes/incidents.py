"""``/api/v1/incidents``: audits of one container correlated into stories."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from garrison.api.deps import Core, Operator, Reader
from garrison.audit.query import DEFAULT_LIMIT
from garrison.incidents import IncidentFilter

router = APIRouter(tags=["incidents"])
PATH = "/api/v1/incidents"


@router.get(PATH)
def list_incidents(
    console: Core,
    _: Reader,
    state: Literal["", "open", "archived"] = "",
    container: str = "",
    kind: str = "",
    limit: Annotated[int, Query(ge=0, le=100_000)] = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """The most recently active first."""
    query = IncidentFilter(state=state, container=container, kind=kind, limit=limit)
    return [i.to_json() for i in console.list_incidents(query)]


@router.get(f"{PATH}/{{incident_id}}")
def show_incident(console: Core, _: Reader, incident_id: int) -> dict[str, Any]:
    """One incident with its story: its audits in order."""
    incident, story = console.show_incident(incident_id)
    return incident.to_json(story)


@router.post(f"{PATH}/{{incident_id}}/archive")
def archive_incident(console: Core, _: Operator, incident_id: int) -> dict[str, Any]:
    return console.archive_incident(incident_id).to_json()


@router.post(f"{PATH}/{{incident_id}}/reopen")
def reopen_incident(console: Core, _: Operator, incident_id: int) -> dict[str, Any]:
    return console.reopen_incident(incident_id).to_json()
