"""Monitor pages: the dashboard, *Container Audits* (with the blocked containers when filtered
to ``effect=block``) and an audit's detail, the blocked containers and their unblocking."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from garrison.api.deps import Core, runtime_of
from garrison.audit.mitre import mitre_of
from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput, NotFound
from garrison.web import views
from garrison.web.render import page
from garrison.web.session import Form, Looker, checked

router = APIRouter(include_in_schema=False)
TYPES = ("processes", "network", "filesystem", "vulnerability", "compliance", "defender")
PAGE_SIZE = 200
FILTERS = ("container", "image", "host", "type", "effect", "rule", "search")


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    return page(request, "dashboard.html", looker=looker, **_dashboard(console))


@router.get("/fragments/dashboard", response_class=HTMLResponse)
def dashboard_fragment(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    return page(request, "_dashboard.html", looker=looker, **_dashboard(console))


def _dashboard(console: Core) -> dict[str, Any]:
    now = console.clock()
    status = console.status()
    report = status.get("defender") or {}
    day = console.list_audits(AuditFilter(since=now - 86400, limit=0))
    bars = views.chart(day, now)
    by_effect = {e: sum(b.counts[e] for b in bars) for e in views.EFFECTS}
    return {
        "watching": len(report.get("watching") or []),
        "defender_state": status["liveness"].get("state", "unknown"),
        "models": status["models"],
        "models_total": sum(status["models"].values()),
        "blocked": console.blocked_with_audits(),
        "bars": bars,
        "effects": views.EFFECTS,
        "day_by_effect": by_effect,
        "day_total": sum(by_effect.values()),
    }


@router.get("/audits", response_class=HTMLResponse)
def audits(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    context = _audits(request, console)
    if context["f"].effect == "block":
        context["blocked"] = console.blocked_with_audits()
    return page(request, "audits.html", looker=looker, types=TYPES, effects=views.EFFECTS,
                **context)  # fmt: skip


@router.get("/audits/rows", response_class=HTMLResponse)
def audit_rows(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    """The table's rows alone: what the page's live refresh fetches every two seconds."""
    return page(request, "_audit_rows.html", looker=looker, **_audits(request, console))


def _audits(request: Request, console: Core) -> dict[str, Any]:
    given = {k: request.query_params.get(k, "")[:256] for k in FILTERS}
    given = {k: v for k, v in given.items() if v}
    query = AuditFilter(**given, limit=PAGE_SIZE)  # type: ignore[arg-type]
    return {"f": query, "query": urlencode(given), "audits": console.list_audits(query)}


@router.get("/audits/{audit_id}", response_class=HTMLResponse)
def audit_detail(request: Request, console: Core, looker: Looker, audit_id: int) -> HTMLResponse:
    audit = _audit(console, audit_id)
    spawns = console.journal(audit.containerId) if audit.containerId else []
    root = views.process_tree(spawns, audit.pid, audit.time + 1.0) if audit.pid else None
    mitre = mitre_of(audit.attackType)
    return page(request, "audit.html", looker=looker, audit=audit, root=root,
                mitre=f"{mitre.tactic_text} · {mitre.technique_text}" if mitre else "")  # fmt: skip


def _audit(console: Core, audit_id: int) -> Audit:
    found = console.store.get_audits([audit_id]) if 0 < audit_id < 2**63 else []
    if not found:
        raise NotFound(f"no audit {audit_id} (it may have been pruned by retention)")
    return found[0]


@router.get("/blocked", response_class=HTMLResponse)
def blocked(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    return page(request, "blocked.html", looker=looker, blocked=console.blocked_with_audits())


@router.post("/blocked/{ref}/unblock")
def unblock(request: Request, console: Core, looker: Looker, ref: str, form: Form) -> Any:
    checked(looker, form, "operator")
    if len(ref) > 128:
        raise InvalidInput("a container id has at most 64 characters")
    runtime = runtime_of(request)
    try:
        record = console.unblock(runtime, ref)
    finally:
        runtime.close()
    notice = f"{record.name} is unblocked: its restart policy is back; it was not started"
    return RedirectResponse(f"/blocked?{urlencode({'notice': notice})}", status_code=303)
