"""Investigate pages: incidents (audits correlated into stories, archived and reopened),
forensics bundles (downloaded, pinned), and the alert channels with what was sent to them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from garrison.alerts.channel import redacted
from garrison.api.deps import Core
from garrison.audit.mitre import mitre_of
from garrison.errors import InvalidInput
from garrison.incidents import IncidentFilter
from garrison.text import clip
from garrison.web.render import page
from garrison.web.session import Form, Looker, checked

router = APIRouter(include_in_schema=False)
STATES = ("open", "archived")


@router.get("/incidents", response_class=HTMLResponse)
def incidents(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    state = request.query_params.get("state", "open")
    if state not in (*STATES, ""):
        raise InvalidInput("state: open, archived, or empty for both")
    found = console.list_incidents(IncidentFilter(state=state, limit=200))
    return page(request, "incidents.html", looker=looker, incidents=found, state=state)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident(request: Request, console: Core, looker: Looker, incident_id: int) -> HTMLResponse:
    found, story = console.show_incident(incident_id)
    steps = [(a, mitre_of(a.attackType)) for a in story]
    return page(request, "incident.html", looker=looker, i=found, steps=steps,
                tactics=found.to_json(story)["tactics"])  # fmt: skip


@router.post("/incidents/{incident_id}/{op}")
def incident_state(console: Core, looker: Looker, incident_id: int, op: str, form: Form) -> Any:
    checked(looker, form, "operator")
    if op == "archive":
        console.archive_incident(incident_id)
    elif op == "reopen":
        console.reopen_incident(incident_id)
    else:
        raise InvalidInput(f"an incident is archived or reopened, not {clip(op, 20)!r}")
    notice = f"Incident {incident_id}: {'archived' if op == 'archive' else 'reopened'}"
    return RedirectResponse(f"/incidents/{incident_id}?{urlencode({'notice': notice})}", 303)


@router.get("/forensics", response_class=HTMLResponse)
def forensics(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    bundles = sorted(console.bundles().list(), key=lambda b: b.created, reverse=True)
    return page(request, "forensics.html", looker=looker, bundles=bundles)


@router.post("/forensics/{bundle_id}/{op}")
def pin(console: Core, looker: Looker, bundle_id: str, op: str, form: Form) -> Any:
    checked(looker, form, "operator")
    if op not in ("pin", "unpin"):
        raise InvalidInput(f"a bundle is pinned or unpinned, not {clip(op, 20)!r}")
    shelf = console.bundles()
    info = shelf.pin(shelf.get(bundle_id).id, op == "pin")
    notice = f"{info.id} {'pinned: retention keeps it' if info.pinned else 'unpinned'}"
    return RedirectResponse(f"/forensics?{urlencode({'notice': notice})}", status_code=303)


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    health = (console.status().get("alerts") or {}).get("channels") or {}
    channels = [(c.name, redacted(c.url), health.get(c.name) or {})
                for c in console.list_channels()]  # fmt: skip
    return page(request, "alerts.html", looker=looker, channels=channels,
                profiles=console.alert_profiles().model_dump(mode="json"),
                deliveries=console.list_deliveries("", 50))  # fmt: skip
