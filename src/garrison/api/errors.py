"""Errors as the REST API answers them: a status and ``{"error": …, "field": …}``, never a
traceback. Garrison's errors map once, here; a request FastAPI cannot validate names its
first bad field."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from garrison.errors import (
    ConfigError,
    ContainerGone,
    GarrisonError,
    InvalidInput,
    NotFound,
    RuntimeRefused,
    RuntimeUnavailable,
    StoreError,
)
from garrison.policy.loading import InvalidRules
from garrison.text import clip

log = logging.getLogger(__name__)

# The most specific first.
_STATUS: tuple[tuple[type[GarrisonError], int], ...] = (
    (InvalidRules, 400),
    (InvalidInput, 400),
    (ConfigError, 400),
    (NotFound, 404),
    (ContainerGone, 404),
    (RuntimeRefused, 409),
    (RuntimeUnavailable, 503),
    (StoreError, 503),
)


class ErrorAnswer(BaseModel):
    """Every error the API answers: what went wrong, and the request field when one did."""

    error: str
    field: str | None = None


_WHY = {
    400: "Malformed input (a field, a rule, a policy), named in the answer",
    401: "No credentials, or ones that are unknown, expired or revoked",
    403: "Credentials whose role may not do this (or a missing CSRF token)",
    404: "No such object",
    409: "The container runtime refused",
    413: "The request body is too large",
    503: "The store or the container runtime cannot be reached",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorAnswer, "description": why} for code, why in _WHY.items()
}


def error_body(message: str, field: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"error": clip(message, 2000)}
    if field:
        body["field"] = field
    return body


def install(app: FastAPI) -> None:
    app.add_exception_handler(GarrisonError, _garrison)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def status_of(exc: GarrisonError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


# A page (any path outside /api/) answers an error as a page: ``app.state.page_error``.
PageError = Callable[[Request, int, str], Response]


def _answer(
    request: Request,
    status: int,
    body: dict[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Response:
    page_error: PageError | None = getattr(request.app.state, "page_error", None)
    if page_error is not None and not request.url.path.startswith("/api/"):
        return page_error(request, status, str(body["error"]))
    return JSONResponse(body, status_code=status, headers=headers)


async def _garrison(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GarrisonError)
    status = status_of(exc)
    if status == 500:
        log.error("api: %s", exc)
    return _answer(request, status, error_body(str(exc)))


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = f"{where or 'request'}: {first.get('msg', 'invalid')}"
    return _answer(request, 400, error_body(message, where))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _answer(request, exc.status_code, error_body(str(exc.detail)), exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("api: unexpected error", exc_info=exc)
    return _answer(request, 500, error_body("internal error (logged)"))
