"""Who is asking: an API token (``Authorization: Bearer gt_…``) or a page's session cookie.

Every route depends on ``allow(role)``: no credentials → 401, a role below the one the route
needs → 403. A request carried by a session cookie that changes anything must echo the
session's CSRF token (header ``X-CSRF-Token``): a cookie is sent by the browser whatever page
made the request, a header only by the console's own pages. A token is not sent by a browser
on its own, so token requests need no CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request

from garrison.auth import Accounts, Role, User

SESSION_COOKIE = "garrison_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def current_user(request: Request) -> User:
    """The user of the request; 401 without valid credentials."""
    accounts = accounts_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and presented:
        user = accounts.user_of_token(presented.strip())
        if user is None:
            raise _unauthorized("the token is unknown, expired or revoked")
        return user
    cookie = request.cookies.get(SESSION_COOKIE, "")
    found = accounts.session(cookie) if cookie else None
    if found is None:
        raise _unauthorized("log in, or send an API token (Authorization: Bearer gt_…)")
    user, session = found
    echoed = request.headers.get(CSRF_HEADER, "")
    if request.method not in SAFE_METHODS and not hmac.compare_digest(echoed, session.csrf):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
    return user


def allow(role: Role) -> Callable[..., User]:
    """A dependency: the current user, who must have ``role`` (or a higher one)."""

    def dependency(user: User = Depends(current_user)) -> User:  # noqa: B008 - FastAPI's idiom
        if not user.can(role):
            raise HTTPException(403, f"{user.name} ({user.role}) may not do this: it needs {role}")
        return user

    dependency.__name__ = f"allow_{role}"
    return dependency


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, headers={"WWW-Authenticate": 'Bearer realm="garrison"'})
