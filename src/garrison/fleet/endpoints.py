"""The console's defender listener as an ASGI app (Starlette): enrolment, then the paths a host
reaches with its client certificate (``garrison.fleet.wire``).

The certificate a connection presented is put in each request's scope by the server
(``garrison.fleet.server``) under ``PEER_KEY``; every ``/defender/v1`` request is refused with
401 unless ``FleetService.authenticate`` names a host from it. Bodies are JSON, bounded; a
refusal is ``{"error": "…"}`` with 400 (bad input), 401 (no or bad certificate) or 403 (a
refused enrolment token).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from garrison.errors import GarrisonError, InvalidInput, StoreError
from garrison.fleet import wire
from garrison.fleet.enroll import TokenRefused
from garrison.fleet.service import REPORTS_EVERY, FleetService
from garrison.fleet.sync import WATCH_EVERY, ChangeWatch, HeldSync, SyncAsk
from garrison.fleet.tls import PeerRefused

log = logging.getLogger(__name__)

PEER_KEY = "garrison.peer"  # the scope key of the client certificate (DER), or None

Handler = Callable[[FleetService, str, Request, Any], Any]


def create_app(service: FleetService, watch_every: float = WATCH_EVERY) -> Starlette:
    watch = ChangeWatch(service.store.sync_marks, watch_every)
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
        Route(wire.SYNC, _sync(service, watch), methods=["GET"]),
        Route(wire.COMMANDS_DONE, _host(service, _done), methods=["POST"]),
        Route(wire.BLOCKS, _host(service, _blocks), methods=["GET"]),
        Route(wire.BLOCKS, _host(service, _block), methods=["POST"]),
        Route(wire.BLOCKS + "/{container_id}", _host(service, _unblock), methods=["DELETE"]),
    ]
    return Starlette(routes=routes, lifespan=_lifespan(service, watch))


def _lifespan(
    service: FleetService, watch: ChangeWatch
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """While the listener runs: the watch on the store, and hosts' reports written each
    REPORTS_EVERY; the last of them written when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(watch.run()), asyncio.create_task(_flushing(service))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await run_in_threadpool(service.flush_reports)

    return lifespan


async def _flushing(service: FleetService) -> None:
    while True:
        await asyncio.sleep(REPORTS_EVERY)
        try:
            await run_in_threadpool(service.flush_reports)
        except Exception:  # the task outlives anything: it writes every host's status
            log.exception("hosts' reports")


def _public(
    service: FleetService, handler: Callable[[FleetService, Any], Any]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _answer(lambda body: handler(service, body), request)

    return endpoint


def _host(service: FleetService, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        host = await _authenticated(service, request)
        if isinstance(host, Response):
            return host
        return await _answer(lambda body: handler(service, host, request, body), request)

    return endpoint


async def _authenticated(service: FleetService, request: Request) -> str | Response:
    """The host of the request's certificate, or the refusal to answer."""
    try:
        return await run_in_threadpool(service.authenticate, request.scope.get(PEER_KEY))
    except PeerRefused as exc:
        return _error(str(exc), 401)
    except StoreError as exc:
        return _error(str(exc), 503)


def _sync(service: FleetService, watch: ChangeWatch) -> Callable[[Request], Awaitable[Response]]:
    """The long-polled sync (``garrison.fleet.sync``): answered when there is news for the
    host, or once its wait is over; held meanwhile on the event loop, not a thread."""

    async def endpoint(request: Request) -> Response:
        host = await _authenticated(service, request)
        if isinstance(host, Response):
            return host
        try:
            held = HeldSync.of(SyncAsk.parse(request.query_params))
            while True:
                generation = watch.generation
                marks = watch.marks
                found = service.sync_from_memory(host, held, marks)
                if found is None:
                    found = await run_in_threadpool(service.sync_round, host, held, marks)
                answer, news = found
                if news or held.left() <= 0:
                    return JSONResponse(answer)
                await watch.wait_past(generation, held.left())
        except InvalidInput as exc:
            return _error(str(exc), 400)
        except StoreError as exc:
            return _error(str(exc), 503)

    return endpoint


@dataclasses.dataclass(frozen=True, slots=True)
class _Then:
    """An answer made (on a worker thread) once ``future`` is done, waited for without
    holding a thread: a batch of audits waiting for its commit."""

    future: Future[None]
    answer: Callable[[], Any]


async def _answer(call: Callable[[Any], Any], request: Request) -> Response:
    try:
        body = await _body(request)
        result = await run_in_threadpool(call, body)
        if isinstance(result, _Then):
            await asyncio.wrap_future(result.future)
            result = await run_in_threadpool(result.answer)
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
            audits.append(wire.audit_of(_as_host(doc, host)))
        except InvalidInput as exc:
            log.warning("host %s: an audit refused: %s", host, exc)
    stored = service.submit_batch(host, epoch, mark, audits)
    refused = len(docs) - len(audits)
    return _Then(stored, lambda: {"mark": service.mark(host, epoch), "refused": refused})


def _as_host(doc: Any, host: str) -> Any:
    """An audit's document naming ``host`` (the certificate's) as its hostname."""
    return {**doc, "hostname": host} if isinstance(doc, dict) else doc


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


def _save_models(service: FleetService, host: str, _request: Request, body: Any) -> Any:
    docs = body.get("save", []) if isinstance(body, dict) else None
    deletes = body.get("delete", []) if isinstance(body, dict) else None
    if not isinstance(docs, list) or not isinstance(deletes, list):
        raise InvalidInput("the body needs lists 'save' and 'delete'")
    if not all(isinstance(d, dict) for d in docs) or not all(isinstance(d, str) for d in deletes):
        raise InvalidInput("'save' holds model documents, 'delete' profile ids")
    service.save_models(host, docs, deletes)
    return {}


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
    stored = service.block(host, record, audit, update=body.get("update") is True)
    if stored is None:  # unblocked here: the host restores the container
        return {"record": None, "unblocked": True}
    return {"record": stored.to_json()}


def _unblock(service: FleetService, host: str, request: Request, _body: Any) -> Any:
    return {"removed": service.unblocked(host, request.path_params["container_id"])}
