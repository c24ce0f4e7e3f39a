"""Who is looking at a page: the user of the ``garrison_session`` cookie, and the checks on a
form that changes anything.

A page without a session redirects to ``/login`` (an htmx refresh gets 401 and an
``HX-Redirect`` instead: a fragment must not become a login form inside a table). A form
that changes anything carries the session's CSRF token in the field ``csrf_token``: a cookie
is sent whichever site made the request, the token only by the console's own pages.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request

from garrison.api.auth import SESSION_COOKIE, accounts_of
from garrison.auth import Role, Session, User

MAX_FIELD = 64 * 1024  # a rule file is the largest field a page sends


class LoginNeeded(Exception):
    """No valid session: the page redirects to the login form, then back to ``next``."""

    def __init__(self, next_path: str, htmx: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.htmx = htmx


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user of a page request and their session (its CSRF token goes into every form)."""

    user: User
    session: Session

    def can(self, role: Role) -> bool:
        return self.user.can(role)


def viewer(request: Request) -> Viewer:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    found = accounts_of(request).session(cookie) if cookie else None
    if found is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginNeeded(here, request.headers.get("hx-request") == "true")
    return Viewer(*found)


def login_url(next_path: str) -> str:
    return f"/login?next={quote(safe_next(next_path), safe='/')}"


def safe_next(path: str) -> str:
    """Only a path of this site: ``//evil.example`` or ``https://…`` would send the user
    away after logging in."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form (the first value of each)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the page's form (application/x-www-form-urlencoded)")
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = parse_qs(body, keep_blank_values=True, max_num_fields=200)
    return {k: v[0][:MAX_FIELD] for k, v in fields.items() if v}


Form = Annotated[dict[str, str], Depends(form_of)]
Looker = Annotated[Viewer, Depends(viewer)]


def checked(looker: Viewer, form: dict[str, str], role: Role) -> None:
    """A change from a form: the session's CSRF token, and a role that allows it (403)."""
    if not hmac.compare_digest(form.get("csrf_token", ""), looker.session.csrf):
        raise HTTPException(403, "the form is stale or was not sent by the console: reload")
    if not looker.can(role):
        raise HTTPException(403, f"{looker.user.name} ({looker.user.role}) may not: {role}")
