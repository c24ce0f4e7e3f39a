"""Pages from the package's Jinja2 templates, with the headers every page carries: no script
or style from anywhere but the console itself, no framing, nothing cached."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from garrison import __version__
from garrison.human import ago, duration, local_time, short_id
from garrison.text import clip

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("garrison.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(ago=ago, duration=duration, local_time=local_time, short_id=short_id)
ENV.filters["utc"] = lambda epoch: (
    dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).isoformat(timespec="seconds")
    if epoch
    else ""
)
ENV.globals["version"] = __version__


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` (plus the request and the viewer, when any)."""
    context.setdefault("looker", None)
    context.setdefault("notice", clip(request.query_params.get("notice", ""), 300))
    html = ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page: what went wrong and a way back."""
    return page(request, "error.html", status=status, status_code=status, message=message)
