"""The webhook served: Starlette on uvicorn, HTTPS only (the API server calls no other).

``POST /validate`` answers an AdmissionReview (``Admission.review``); ``GET /healthz`` says
the process answers, for a readiness probe. A body that is not a review gets HTTP 400 and an
error that is the webhook's (its store unreadable) HTTP 500, each as a ``v1 Status`` whose
message the API server shows; it then applies the webhook's ``failurePolicy``.
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from garrison.errors import ConfigError, InvalidInput
from garrison.k8s._review import MAX_REVIEW
from garrison.k8s.admission import Admission
from garrison.serving import bind
from garrison.text import clip

log = logging.getLogger(__name__)
DEFAULT_ADDRESS = "127.0.0.1:8443"
STOP_TIMEOUT = 10  # seconds given to the reviews under way at SIGTERM
START_TIMEOUT = 10.0


def make_app(admission: Admission) -> Starlette:
    async def validate(request: Request) -> JSONResponse:
        try:
            answer = await run_in_threadpool(admission.review, await _bounded_body(request))
        except InvalidInput as exc:
            return _status(400, "BadRequest", f"not an AdmissionReview v1 request: {exc}")
        except Exception as exc:
            log.exception("admission review failed")
            return _status(500, "InternalError", f"the Garrison webhook failed: {exc}")
        return JSONResponse(answer)

    async def healthz(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/validate", validate, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


async def _bounded_body(request: Request) -> bytes:
    """The body, refused past MAX_REVIEW without reading the rest into memory."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REVIEW:
            raise InvalidInput(f"the review is larger than {MAX_REVIEW} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _status(code: int, reason: str, message: str) -> JSONResponse:
    """A meta/v1 Status: what the API server's client reads from a failed call."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": clip(message, 1000),
        "reason": reason,
        "code": code,
    }
    return JSONResponse(doc, status_code=code)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where and with what certificate the webhook listens."""

    address: str
    cert: Path
    key: Path


class WebhookServer:
    """The socket is bound and the certificate loaded at once: a busy address or a key that
    does not match is one clear error before anything runs."""

    def __init__(self, admission: Admission, config: WebhookConfig) -> None:
        self.config = config
        _check_tls(config.cert, config.key)
        self.sock = bind(config.address, "--address", localhost=False)
        uv = uvicorn.Config(
            make_app(admission),
            ssl_certfile=str(config.cert),
            ssl_keyfile=str(config.key),
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            # A client that keeps an idle connection and never reads holds a TLS shutdown
            # open (asyncio waits 30 s for its close_notify); the API server's Go client
            # answers at once, but nothing may keep the webhook from stopping.
            timeout_graceful_shutdown=STOP_TIMEOUT,
        )
        self.server = uvicorn.Server(uv)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"https://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> WebhookServer:
        """Serve on a thread (uvicorn leaves signals alone there); return once it answers."""
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="admission", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the admission webhook did not start on {self.config.address}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop taking connections; the reviews under way get STOP_TIMEOUT seconds."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT + 5.0)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(5.0)
        self.sock.close()

    def run(self) -> None:
        """In the foreground until SIGINT or SIGTERM (then stopped, the handlers restored)."""
        self.start()
        try:
            _wait_for_signal(lambda: self._thread is not None and self._thread.is_alive())
        finally:
            self.stop()


def _wait_for_signal(alive: Callable[[], bool]) -> None:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5) and alive():
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _check_tls(cert: Path, key: Path) -> None:
    for path in (cert, key):
        if not path.is_file():
            raise ConfigError(f"no such file: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use --cert {cert} with --key {key}: {exc}") from exc
