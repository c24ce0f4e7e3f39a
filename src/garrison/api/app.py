"""The REST API: a FastAPI app over one ``Console``, its paths shaped after Prisma Cloud
Compute's (``/api/v1/…``) so that scripts port easily. OpenAPI at ``/api/v1/openapi.json``,
browsable at ``/api/docs``.

Every route needs credentials (``garrison.api.auth``); a request body is capped at
``MAX_BODY`` bytes before it is read whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from garrison import __version__, web
from garrison.api import errors
from garrison.api.routes import (
    alerts,
    audits,
    containers,
    forensics,
    hosts,
    images,
    incidents,
    policies,
    profiles,
    status,
    users,
)
from garrison.console import Console
from garrison.runtime.base import ContainerRuntime

MAX_BODY = 4 * 1024 * 1024
ROUTERS = (
    status, audits, profiles, policies, containers, images, incidents, forensics, alerts, users,
    hosts,
)  # fmt: skip


def create_app(console: Console, runtime_factory: Callable[[], ContainerRuntime]) -> FastAPI:
    """The API over ``console``; ``runtime_factory`` makes a runtime for what must reach the
    containers (unblock)."""
    app = FastAPI(
        title="Garrison",
        version=__version__,
        description="Container runtime defense: audits, models, policies, blocked containers.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        responses=errors.RESPONSES,
    )
    app.state.console = console
    app.state.accounts = console.accounts()
    app.state.runtime_factory = runtime_factory
    errors.install(app)
    app.middleware("http")(_cap_body)
    for module in ROUTERS:
        app.include_router(module.router)
    web.mount(app)
    return app


async def _cap_body(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Refuse a body announced larger than MAX_BODY, and one that is chunked (no length)."""
    if request.method in ("POST", "PUT", "PATCH"):
        length = request.headers.get("content-length")
        if length is None and request.headers.get("transfer-encoding"):
            return JSONResponse(errors.error_body("send a Content-Length"), status_code=411)
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            message = f"the body is larger than {MAX_BODY} bytes"
            return JSONResponse(errors.error_body(message), status_code=413)
    return await call_next(request)
