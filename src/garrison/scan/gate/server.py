"""The gate served as a Docker authorization plugin: Starlette on uvicorn, on a unix socket.

Read-only calls are answered on the event loop, never queued behind the thread pool: the
gate's own reads (image inspect, history, save; container inspect) pass through this plugin
while the create that caused them waits in a pool thread, so queueing them could deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from garrison.errors import ConfigError, InvalidInput
from garrison.scan.gate.gate import ALLOW, Gate, refusal
from garrison.scan.gate.request import MAX_MESSAGE, Call, parse_authz
from garrison.watchdog import heartbeat

PLUGIN_DIR = Path("/run/docker/plugins")
DEFAULT_SOCKET = Path("/run/garrison/authz.sock")
DEFAULT_NAME = "garrison"
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
BEAT_SECONDS = 0.25
LISTEN_BACKLOG = 128  # requests wait here while a stalled plugin is replaced
log = logging.getLogger(__name__)
PASSED = frozenset({Call.READ_ONLY, Call.PASSED})  # answered on the event loop, at once


def make_app(gate: Gate) -> Starlette:
    """The plugin's HTTP API (Docker plugin protocol v1.2)."""

    async def activate(_request: Request) -> JSONResponse:
        gate.activated()
        return _json({"Implements": ["authz"]})

    async def authz_req(request: Request) -> JSONResponse:
        try:
            req = parse_authz(await _bounded_body(request))
        except InvalidInput as exc:
            return _json(refusal(str(exc)).to_json())
        gate.request_seen(req)
        if req.call in PASSED:
            return _json(ALLOW.to_json())
        reply = await run_in_threadpool(gate.decide, req)
        if not reply.allow:
            gate.request_refused(req)
        return _json(reply.to_json())

    async def authz_res(request: Request) -> JSONResponse:
        # The response is not judged: it says which call is over (images.py).
        try:
            gate.response_seen(await _bounded_body(request))
        except InvalidInput:
            async for _chunk in request.stream():
                pass  # the rest of a message too large to read, to keep the connection usable
            gate.images.forget()
        return _json(ALLOW.to_json())

    return Starlette(
        routes=[
            Route("/Plugin.Activate", activate, methods=["POST"]),
            Route("/AuthZPlugin.AuthZReq", authz_req, methods=["POST"]),
            Route("/AuthZPlugin.AuthZRes", authz_res, methods=["POST"]),
        ]
    )


async def _bounded_body(request: Request) -> bytes:
    """The request body, refused past MAX_MESSAGE without reading the rest into memory."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise InvalidInput(f"the authorization request is larger than {MAX_MESSAGE} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(doc: dict[str, object]) -> JSONResponse:
    return JSONResponse(doc, media_type=CONTENT_TYPE)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where the plugin listens and how dockerd finds it.

    dockerd (moby pkg/plugins/discovery.go) looks for ``NAME.sock`` in ``/run/docker/plugins``
    and for ``NAME.spec`` only in ``/etc/docker/plugins`` and ``/usr/lib/docker/plugins``. By
    default the socket lives in a 0700 folder of its own and a symbolic link named
    ``/run/docker/plugins/NAME.sock`` points at it; ``spec_dir`` writes a ``.spec`` instead.
    """

    socket_path: Path = DEFAULT_SOCKET
    name: str = DEFAULT_NAME
    link_dir: Path | None = PLUGIN_DIR
    spec_dir: Path | None = None
    start_timeout: float = 10.0
    stop_timeout: float = 10.0
    fd: int | None = None  # a listening socket handed down by the watchdog, already registered

    @property
    def link_path(self) -> Path | None:
        return self.link_dir / f"{self.name}.sock" if self.link_dir else None

    @property
    def spec_path(self) -> Path | None:
        return self.spec_dir / f"{self.name}.spec" if self.spec_dir else None


class GateServer:
    """Runs the plugin in a background thread: ``start()`` returns once it answers."""

    def __init__(self, gate: Gate, config: ServerConfig) -> None:
        self.gate = gate
        self.config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> GateServer:
        inherited = self.config.fd is not None
        if not inherited:
            self._prepare_socket_dir()
        config = uvicorn.Config(
            make_app(self.gate),
            uds=None if inherited else str(self.config.socket_path),
            fd=self.config.fd,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="garrison-authz", daemon=True)
        self._thread.start()
        self._wait_started()
        if not inherited:
            self._register()
        return self

    def _run(self) -> None:
        assert self._server is not None
        asyncio.run(_beating(self._server))

    def stop(self) -> None:
        """Stop answering and remove the spec file and the socket. Stop dockerd first: it
        refuses every call while its plugin is down."""
        if self.config.fd is None:
            self._unregister()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(self.config.stop_timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(self.config.stop_timeout)
        if self.config.fd is None:
            self.config.socket_path.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _prepare_socket_dir(self) -> None:
        prepare_socket_dir(self.config.socket_path)

    def _wait_started(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while time.monotonic() < deadline:
            if self._server is not None and self._server.started:
                with contextlib.suppress(OSError):
                    os.chmod(self.config.socket_path, 0o600)
                return
            if self._thread is not None and not self._thread.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise ConfigError(f"the authorization plugin did not start on {self.config.socket_path}")

    def _register(self) -> None:
        try:
            register(self.config)
        except ConfigError:
            self.stop()
            raise

    def _unregister(self) -> None:
        unregister(self.config)

    def __enter__(self) -> GateServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def _beating(server: uvicorn.Server) -> None:
    """Serve, beating for the watchdog from the event loop that answers dockerd: a loop that
    stops answering (a stopped process, a hog holding the GIL) stops beating."""
    beat = heartbeat.claim("authz-loop")

    async def beats() -> None:
        while True:
            beat.beat()
            await asyncio.sleep(BEAT_SECONDS)

    task = asyncio.create_task(beats())
    try:
        await server.serve()
    finally:
        task.cancel()
        beat.release()


def prepare_socket_dir(socket_path: Path) -> None:
    """The socket's folder, owner-only (uvicorn leaves the socket 0o666 until it is chmod'ed),
    repaired when it was made looser; any old socket removed."""
    folder = socket_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if folder.stat().st_mode & 0o077:
            log.warning("plugin socket folder %s was open to other users; made 0700", folder)
            os.chmod(folder, 0o700)
        socket_path.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot prepare the plugin socket in {folder}: {exc}") from exc


def listen(socket_path: Path) -> socket.socket:
    """The plugin's listening socket (0600 in a 0700 folder), for the watchdog to hand down."""
    prepare_socket_dir(socket_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(socket_path))
        os.chmod(socket_path, 0o600)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {socket_path}: {exc}") from exc
    return sock


def register(config: ServerConfig) -> None:
    """Make dockerd find the plugin: a link in the sockets folder and/or a spec file."""
    link, spec, target = config.link_path, config.spec_path, config.socket_path
    try:
        if link is not None and link != target:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        if spec is not None:
            spec.parent.mkdir(parents=True, exist_ok=True)
            spec.write_text(f"unix://{target}\n")
    except OSError as exc:
        raise ConfigError(f"cannot register the plugin {config.name}: {exc}") from exc


def unregister(config: ServerConfig) -> None:
    for path in (config.link_path, config.spec_path):
        if path is not None and path != config.socket_path:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
