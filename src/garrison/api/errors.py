"""Errors as the REST API answers them: a status and ``{"error": …, "field": …}``, never a
traceback. Garrison's errors map once, here; a request FastAPI cannot validate names its
first bad field."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
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


async def _garrison(_: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    if status == 500:
        log.error("api: %s", exc)
    return JSONResponse(error_body(str(exc)), status_code=status)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = f"{where or 'request'}: {first.get('msg', 'invalid')}"
    return JSONResponse(error_body(message, where), status_code=400)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code,
                        headers=exc.headers)  # fmt: skip


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("api: unexpected error", exc_info=exc)
    return JSONResponse(error_body("internal error (logged)"), status_code=500)
