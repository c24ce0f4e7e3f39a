"""Policy pages: the runtime rules in order (edit one or all as YAML, add, reorder, delete),
and the gate's vulnerability and compliance policies. Every change is checked whole, with the
CLI's messages (rule, field, line and column), and nothing is saved when one is refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from garrison.api.deps import Core
from garrison.errors import InvalidInput
from garrison.policy import RuleSet
from garrison.policy.documents import DocumentError, parse_document
from garrison.policy.loading import InvalidRules, load_rules
from garrison.web.render import page
from garrison.web.session import Form, Looker, checked

router = APIRouter(include_in_schema=False)
RUNTIME = "/policy/runtime"
NEW_RULE = """name: my rule
scope: [{images: ["*"]}]
processes:
  effect: alert
  denied: {effect: prevent, paths: []}
"""
GATE = {
    "vulnerability": ("Vulnerability policy", "Rules the gate applies to an image's known "
                      "vulnerabilities when a container is created; effect block refuses it."),
    "compliance": ("Compliance policy", "Rules the gate applies to a container's configuration "
                   "(privileged, root, secrets…) when it is created; effect block refuses it."),
}  # fmt: skip


@router.get(RUNTIME, response_class=HTMLResponse)
def runtime(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    rules = console.runtime_rules()
    return page(request, "policy.html", looker=looker, version_digest=rules.digest()[:12],
                rules=[r.model_dump(mode="json") for r in rules.rules])  # fmt: skip


@router.get(f"{RUNTIME}/edit", response_class=HTMLResponse)
def edit(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    name = request.query_params.get("rule")
    if request.query_params.get("all"):
        text = _yaml({"rules": [_brief(r) for r in console.runtime_rules().rules]})
        return _editor(request, looker, text, None)
    text = _yaml(_brief(console.runtime_rule(name))) if name is not None else NEW_RULE
    return _editor(request, looker, text, name or "")


@router.post(f"{RUNTIME}/edit", response_model=None)
def save(request: Request, console: Core, looker: Looker, form: Form) -> Response:
    checked(looker, form, "operator")
    original, text = form.get("rule"), form.get("text", "")
    try:
        rules = _whole(console, text) if original is None else _one(console, original, text)
    except InvalidRules as exc:
        return _editor(request, looker, text, original, exc.problems)
    console.apply_runtime_rules(rules)
    return _back(f"Saved: {len(rules.rules)} rules, version {rules.digest()[:12]}")


@router.post(f"{RUNTIME}/move")
def move(console: Core, looker: Looker, form: Form) -> RedirectResponse:
    checked(looker, form, "operator")
    rules = list(console.runtime_rules().rules)
    name, step = form.get("rule", ""), -1 if form.get("direction") == "up" else 1
    index = next((i for i, r in enumerate(rules) if r.name == name), None)
    if index is None:
        raise InvalidInput(f"no runtime rule named {name[:100]!r}: reload the page")
    target = min(max(index + step, 0), len(rules) - 1)
    rules[index], rules[target] = rules[target], rules[index]
    console.apply_runtime_rules(RuleSet(rules=rules))
    return _back(f"Moved {name!r} to position {target + 1}")


@router.post(f"{RUNTIME}/delete")
def delete(console: Core, looker: Looker, form: Form) -> RedirectResponse:
    checked(looker, form, "operator")
    name = form.get("rule", "")
    console.delete_runtime_rule(name)
    return _back(f"Deleted {name!r}")


def _whole(console: Core, text: str) -> RuleSet:
    del console
    return load_rules(text, source="policy")


def _one(console: Core, original: str, text: str) -> RuleSet:
    """The rules with ``original`` replaced by the rule in ``text`` (added first when
    ``original`` is empty: a new rule), checked whole."""
    try:
        rule = parse_document(text, "yaml")
    except DocumentError as exc:
        raise InvalidRules("rule", [exc.problem]) from None
    if not isinstance(rule, dict):
        raise InvalidRules("rule", ["expected one rule: a mapping with name, scope, …"])
    current = [r.model_dump(mode="json") for r in console.runtime_rules().rules]
    names = [r["name"] for r in current]
    if original and original not in names:
        raise InvalidRules("rule", [f"no runtime rule named {original[:100]!r} any more"])
    rules = (
        [rule if r["name"] == original else r for r in current] if original else [rule, *current]
    )
    return load_rules(json.dumps({"rules": rules}), source="policy", fmt="json")


def _editor(
    request: Request,
    looker: Looker,
    text: str,
    original: str | None,
    problems: list[str] | None = None,
) -> HTMLResponse:
    heading = (
        "All runtime rules" if original is None else f"Rule {original}" if original else "New rule"
    )
    return page(request, "rule_edit.html", looker=looker, text=text, original=original,
                problems=problems or [], heading=heading, action=f"{RUNTIME}/edit",
                back=RUNTIME, back_label="Runtime policy", status=400 if problems else 200,
                label="The rules, in order" if original is None else "The rule")  # fmt: skip


@router.get("/policy/{kind}", response_class=HTMLResponse)
def gate(request: Request, console: Core, looker: Looker, kind: str) -> HTMLResponse:
    title, about = _gate_kind(kind)
    policy = _gate_doc(console, kind)
    reports = _reports(console) if kind == "vulnerability" else None
    return page(request, "gate_policy.html", looker=looker, kind=kind, title=title, about=about,
                rules=policy.get("rules", []), reports=reports)  # fmt: skip


@router.get("/policy/{kind}/edit", response_class=HTMLResponse)
def gate_edit(request: Request, console: Core, looker: Looker, kind: str) -> HTMLResponse:
    _gate_kind(kind)
    return _gate_editor(request, looker, kind, _yaml(_gate_doc(console, kind)))


@router.post("/policy/{kind}/edit", response_model=None)
def gate_save(request: Request, console: Core, looker: Looker, kind: str, form: Form) -> Response:
    _gate_kind(kind)
    checked(looker, form, "operator")
    text = form.get("text", "")
    try:
        console.apply_gate_policy(kind, parse_document(text, "yaml"))
    except DocumentError as exc:
        return _gate_editor(request, looker, kind, text, [exc.problem])
    except InvalidInput as exc:
        return _gate_editor(request, looker, kind, text, [str(exc)])
    return RedirectResponse(f"/policy/{kind}?{urlencode({'notice': 'Saved'})}", 303)


def _gate_editor(
    request: Request, looker: Looker, kind: str, text: str, problems: list[str] | None = None
) -> HTMLResponse:
    title, _ = _gate_kind(kind)
    return page(request, "rule_edit.html", looker=looker, text=text, original=None,
                problems=problems or [], heading=title, action=f"/policy/{kind}/edit",
                back=f"/policy/{kind}", back_label=title, status=400 if problems else 200,
                label="The policy")  # fmt: skip


def _gate_doc(console: Core, kind: str) -> dict[str, Any]:
    policy, _ = console.gate_policy(kind)
    found: dict[str, Any] = json.loads(policy.model_dump_json())
    return found


def _gate_kind(kind: str) -> tuple[str, str]:
    if kind not in GATE:
        raise InvalidInput("a policy is runtime, vulnerability or compliance")
    return GATE[kind]


def _reports(console: Core) -> list[dict[str, Any]]:
    """The newest scan report of each image."""
    return console.list_images()


@router.get("/images", response_class=HTMLResponse)
def images(request: Request, console: Core, looker: Looker) -> HTMLResponse:
    return page(request, "images.html", looker=looker, reports=console.list_images())


@router.get("/images/{ref:path}", response_class=HTMLResponse)
def image(request: Request, console: Core, looker: Looker, ref: str) -> HTMLResponse:
    return page(request, "image.html", looker=looker, r=console.image_report(ref))


def _brief(rule: Any) -> dict[str, Any]:
    """A rule as a person would write it: only what differs from the defaults."""
    data: dict[str, Any] = rule.model_dump(mode="json", exclude_defaults=True)
    return data


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _back(notice: str) -> RedirectResponse:
    return RedirectResponse(f"{RUNTIME}?{urlencode({'notice': notice})}", status_code=303)
