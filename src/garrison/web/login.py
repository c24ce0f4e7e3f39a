"""Logging in and out of the pages: a password checked by ``Accounts.login`` (unless too many
failed lately: ``throttle``), then a server-side session whose cookie is ``HttpOnly``,
``SameSite=Strict`` and, under TLS, ``Secure``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from garrison.api.auth import SESSION_COOKIE, accounts_of
from garrison.auth.accounts import SESSION_TTL
from garrison.text import clip
from garrison.web.render import page
from garrison.web.session import Form, Looker, checked, safe_next
from garrison.web.throttle import LoginThrottle

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    next_path = safe_next(request.query_params.get("next", "/"))
    return page(request, "login.html", next_path=next_path, name="", error="")


@router.post("/login", response_model=None)
def login(request: Request, form: Form) -> Response:
    name, next_path = form.get("name", "")[:64], safe_next(form.get("next", "/"))
    throttle: LoginThrottle = request.app.state.login_throttle
    client = _client(request)
    wait = throttle.wait(name, client)
    if wait > 0:
        log.warning("console: login for %r from %s refused: too many failures", clip(name, 64),
                    client)  # fmt: skip
        return page(request, "login.html", status=429, next_path=next_path, name=name,
                    error=f"Too many failed logins: try again in {wait:.0f} s.")  # fmt: skip
    accounts = accounts_of(request)
    user = accounts.login(name, form.get("password", ""))
    if user is None:
        throttle.failed(name, client)
        log.warning("console: failed login for %r from %s", clip(name, 64), client)
        return page(request, "login.html", status=401, next_path=next_path, name=name,
                    error="Wrong user name or password (or the user is disabled).")  # fmt: skip
    throttle.succeeded(name)
    cookie, _ = accounts.new_session(user.name)
    answer = RedirectResponse(next_path, status_code=303)
    answer.set_cookie(
        SESSION_COOKIE, cookie, max_age=int(SESSION_TTL), path="/", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return answer


@router.post("/logout")
def logout(request: Request, looker: Looker, form: Form) -> RedirectResponse:
    checked(looker, form, "auditor")
    accounts_of(request).end_session(request.cookies.get(SESSION_COOKIE, ""))
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
