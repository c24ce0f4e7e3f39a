"""Model pages: every model with its learning time left, one model's contents, and the
commands that change it (queued for the defender, as ``garrison models`` does)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from garrison.api.deps import Core
from garrison.errors import InvalidInput
from garrison.policy.loading import load_rules
from garrison.text import clip
from garrison.web import views
from garrison.web.render import page
from garrison.web.session import Form, Looker, checked

router = APIRouter(include_in_schema=False)
MAX_HOURS = 365 * 24.0


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    docs = {str(d.get("profileId")): d for d in console.store.load_models()}
    rows = [
        {**m, "left": views.learning_left(docs.get(str(m["profileId"]), {}))}
        for m in console.list_models()
    ]
    return page(request, "models.html", looker=looker, models=rows)


@router.get("/models/{ref}", response_class=HTMLResponse)
def model(request: Request, console: Core, looker: Looker, ref: str) -> HTMLResponse:
    doc = console.show_model(ref)
    pending = [c for c in console.pending_model_commands() if c.profile_id == doc["profileId"]]
    return page(request, "model.html", looker=looker, m=doc, left=views.learning_left(doc),
                pending=pending)  # fmt: skip


@router.post("/models/{ref}/{op}")
def command(console: Core, looker: Looker, ref: str, op: str, form: Form) -> Any:
    checked(looker, form, "operator")
    doc = console.show_model(ref)
    profile = str(doc["profileId"])
    if op == "rule":
        return _rule_from(console, doc)
    if op == "relearn":
        console.relearn(profile)
    elif op == "extend":
        console.extend(profile, _hours(form.get("hours", "")) * 3600.0)
    elif op == "learn-start":
        console.learn_start(profile)
    elif op == "learn-stop":
        console.learn_stop(profile)
    else:
        raise InvalidInput(f"no model command {clip(op, 40)!r}")
    notice = f"{op} queued: the defender applies it within a second"
    return RedirectResponse(f"/models/{quote(profile)}?{urlencode({'notice': notice})}", 303)


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise InvalidInput(f"hours: a number, not {clip(text, 20)!r}") from None
    if not 0 < hours <= MAX_HOURS:
        raise InvalidInput(f"hours: more than 0 and at most {MAX_HOURS:.0f}")
    return hours


def _rule_from(console: Core, doc: dict[str, Any]) -> RedirectResponse:
    """A new first rule allowing what the model learned; then its edit page, to tighten."""
    rules = console.runtime_rules()
    names = {r.name for r in rules.rules}
    base = clip(f"from model {doc.get('imageName') or doc.get('profileId')}", 100)
    name = next(n for i in range(1, len(names) + 2) if (n := _numbered(base, i)) not in names)
    data = [views.rule_from_model(doc, name), *(r.model_dump(mode="json") for r in rules.rules)]
    console.apply_runtime_rules(load_rules(json.dumps({"rules": data}), fmt="json"))
    notice = "The rule allows what the model learned and alerts on the rest: tighten it here"
    return RedirectResponse(f"/policy/runtime/edit?{urlencode({'rule': name, 'notice': notice})}",
                            303)  # fmt: skip


def _numbered(base: str, i: int) -> str:
    return base if i == 1 else f"{base} ({i})"
