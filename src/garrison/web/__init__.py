"""The console's web pages: server-rendered (Jinja2), live parts refreshed by htmx, every
asset served from this package (``static/``), readable without JavaScript.

``mount(app)`` adds them to the REST API's app: the pages call the same ``Console`` as the
API, and log in to the same accounts (a session cookie instead of a token).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from garrison.web import investigate, login, models, monitor, policy
from garrison.web.render import HEADERS, error_page
from garrison.web.session import LoginNeeded, login_url
from garrison.web.throttle import LoginThrottle

ROUTERS = (login, monitor, investigate, models, policy)


def mount(app: FastAPI) -> None:
    app.state.page_error = error_page
    app.state.login_throttle = LoginThrottle()
    app.mount("/static", StaticFiles(packages=[("garrison.web", "static")]), name="static")
    app.add_exception_handler(LoginNeeded, _to_login)
    for module in ROUTERS:
        app.include_router(module.router)


async def _to_login(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginNeeded)
    where = login_url(exc.next_path)
    if exc.htmx:  # a live refresh: the whole page goes to the login form, not the fragment
        return Response(status_code=401, headers={"HX-Redirect": where, **HEADERS})
    return RedirectResponse(where, status_code=303, headers=HEADERS)


__all__ = ["mount"]
