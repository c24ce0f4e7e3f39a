"""The console's defender listener as an ASGI app (Starlette): enrolment, then the paths a host
reaches with its client certificate (``garrison.fleet.wire``).

The certificate a connection presented is put in each request's scope by the server
(``garrison.fleet.server``) under ``PEER_KEY``; every ``/defender/v1`` request is refused with
401 unless ``FleetService.authenticate`` names a host from it. Bodies are JSON, bounded; a
refusal is ``{"error": "…"}`` with 400 (bad input), 401 (no or bad certificate) or 403 (a
refused enrolment token).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from garrison.errors import GarrisonError, InvalidInput, StoreError
from garrison.fleet import wire
from garrison.fleet.enroll import TokenRefused
from garrison.fleet.service import FleetService
from garrison.fleet.tls import PeerRefused

log = logging.getLogger(__name__)

PEER_KEY = "garrison.peer"  # the scope key of the client certificate (DER), or None

Handler = Callable[[FleetService, str, Request, Any], Any]


def create_app(service: FleetService) -> Starlette:
    routes = [
        Route(wire.ENROL_CA, _public(service, _ca), methods=["GET"]),
        Route(wire.ENROL_HOSTS, _public(service, _enrol), methods=["POST"]),
        Route(wire.AUDITS, _host(service, _mark), methods=["GET"]),
        Route(wire.AUDITS, _host(service, _batch), methods=["POST"]),
        Route(wire.AUDIT, _host(service, _audit), methods=["POST"]),
        Route(wire.AUDITS_OF + "/{container_id}", _host(service, _audits_of), methods=["GET"]),
        Route(wire.STATUS, _host(service, _status), methods=["POST"]),
        Route(wire.MODELS, _host(service, _models), methods=["GET"]),
        Route(wire.MODELS, _host(service, _save_models), methods=["POST"]),
        Route(wire.SYNC, _host(service, _sync), methods=["GET"]),
        Route(wire.COMMANDS_DONE, _host(service, _done), methods=["POST"]),
        Route(wire.BLOCKS, _host(service, _blocks), methods=["GET"]),
        Route(wire.BLOCKS, _host(service, _block), methods=["POST"]),
        Route(wire.BLOCKS + "/{container_id}", _host(service, _unblock), methods=["DELETE"]),
    ]
    return Starlette(routes=routes)


def _public(
    service: FleetService, handler: Callable[[FleetService, Any], Any]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _answer(lambda body: handler(service, body), request)

    return endpoint


def _host(service: FleetService, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        der = request.scope.get(PEER_KEY)
        try:
            host = await run_in_threadpool(service.authenticate, der)
        except PeerRefused as exc:
            return _error(str(exc), 401)
        except StoreError as exc:
            return _error(str(exc), 503)
        return await _answer(lambda body: handler(service, host, request, body), request)

    return endpoint


async def _answer(call: Callable[[Any], Any], request: Request) -> Response:
    try:
        body = await _body(request)
        result = await run_in_threadpool(call, body)
    except TokenRefused as exc:
        return _error(str(exc), 403)
    except InvalidInput as exc:
        return _error(str(exc), 400)
    except StoreError as exc:  # the database away: the host keeps it and sends it again
        log.warning("defender request %s: %s", request.url.path, exc)
        return _error(str(exc), 503)
    except GarrisonError as exc:
        return _error(str(exc), 400)
    return JSONResponse(result)


async def _body(request: Request) -> Any:
    if request.method not in ("POST", "PUT"):
        return None
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > wire.MAX_BODY:
        raise InvalidInput(f"a body needs a Content-Length of at most {wire.MAX_BODY} bytes")
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not JSON") from exc


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _field(body: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(name), kind):
        raise InvalidInput(f"the body needs {name!r}")
    return body[name]


# -- handlers (on a worker thread) ----------------------------------------------------------


def _ca(service: FleetService, _body: Any) -> Any:
    return {"ca": service.ca.cert_pem.decode()}


def _enrol(service: FleetService, body: Any) -> Any:
    token, host = _field(body, "token", str), _field(body, "host", str)
    csr = _field(body, "csr", str).encode()
    cert = service.enrol(token, host, csr)
    return {"cert": cert.decode(), "ca": service.ca.cert_pem.decode()}


def _mark(service: FleetService, host: str, request: Request, _body: Any) -> Any:
    return {"mark": service.mark(host, request.query_params.get("epoch", ""))}


def _batch(service: FleetService, host: str, _request: Request, body: Any) -> Any:
    epoch, mark = _field(body, "epoch", str), _field(body, "mark", int)
    docs = _field(body, "audits", list)
    if len(docs) > wire.MAX_BATCH:
        raise InvalidInput(f"at most {wire.MAX_BATCH} audits a batch")
    audits = []
    for doc in docs:  # one bad audit costs itself, not the batch: the rest are stored once
        try:
            audits.append(wire.audit_of(doc))
        except InvalidInput as exc:
            log.warning("host %s: an audit refused: %s", host, exc)
    mark = service.store_batch(host, epoch, mark, audits)
    return {"mark": mark, "refused": len(docs) - len(audits)}


def _audit(service: FleetService, host: str, _request: Request, body: Any) -> Any:
    stored = service.store_audit(host, wire.audit_of(_field(body, "audit", dict)))
    return {"audit": wire.audit_doc(stored)}


def _audits_of(service: FleetService, host: str, request: Request, _body: Any) -> Any:
    limit = request.query_params.get("limit", "100")
    if not limit.isdigit():
        raise InvalidInput("limit must be a whole number")
    found = service.audits_of(host, request.path_params["container_id"], min(int(limit), 1000))
    return {"audits": [wire.audit_doc(a) for a in found]}


def _status(service: FleetService, host: str, _request: Request, body: Any) -> Any:
    service.report_status(host, _field(body, "status", dict))
    return {}


def _models(service: FleetService, _host: str, request: Request, _body: Any) -> Any:
    """All models; with ``?since=T``, those changed after T (the console's clock), with the
    cursor to ask from next time."""
    since = request.query_params.get("since")
    if since is None:
        return {"models": service.store.load_models()}
    try:
        cursor = float(since)
    except ValueError as exc:
        raise InvalidInput("since must be a number") from exc
    changed = service.store.models_since(cursor)
    return {"models": [doc for _, doc in changed],
            "cursor": max([cursor, *(when for when, _ in changed)])}  # fmt: skip


def _save_models(service: FleetService, _host: str, _request: Request, body: Any) -> Any:
    docs = body.get("save", []) if isinstance(body, dict) else None
    deletes = body.get("delete", []) if isinstance(body, dict) else None
    if not isinstance(docs, list) or not isinstance(deletes, list):
        raise InvalidInput("the body needs lists 'save' and 'delete'")
    if not all(isinstance(d, dict) for d in docs) or not all(isinstance(d, str) for d in deletes):
        raise InvalidInput("'save' holds model documents, 'delete' profile ids")
    service.save_models(docs, deletes)
    return {}


def _sync(service: FleetService, host: str, _request: Request, _body: Any) -> Any:
    return service.sync(host)


def _done(service: FleetService, host: str, _request: Request, body: Any) -> Any:
    ids = _field(body, "ids", list)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InvalidInput("'ids' holds whole numbers")
    service.finish_commands(host, ids)
    return {}


def _blocks(service: FleetService, host: str, _request: Request, _body: Any) -> Any:
    return {"blocked": [r.to_json() for r in service.store.list_blocked(host=host)]}


def _block(service: FleetService, host: str, _request: Request, body: Any) -> Any:
    record = wire.blocked_of(_field(body, "record", dict))
    raw_audit = body.get("audit")
    audit = None if raw_audit is None else wire.audit_of(raw_audit)
    return {"record": service.block(host, record, audit).to_json()}


def _unblock(service: FleetService, host: str, request: Request, _body: Any) -> Any:
    return {"removed": service.unblocked(host, request.path_params["container_id"])}
