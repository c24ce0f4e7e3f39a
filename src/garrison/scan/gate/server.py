"""The gate served as a Docker authorization plugin: Starlette on uvicorn, on a unix socket.

Read-only calls are answered on the event loop, never queued behind the thread pool: the
gate's own reads (image inspect, history, save; container inspect) pass through this plugin
while the create that caused them waits in a pool thread, so queueing them could deadlock.
"""

from __future__ import annotations

import contextlib
import os
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
from garrison.scan.gate.request import Call, parse_authz

PLUGIN_DIR = Path("/run/docker/plugins")
DEFAULT_SOCKET = Path("/run/garrison/authz.sock")
DEFAULT_NAME = "garrison"
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
PASSED = frozenset({Call.READ_ONLY, Call.OTHER})


def make_app(gate: Gate) -> Starlette:
    """The plugin's HTTP API (Docker plugin protocol v1.2)."""

    async def activate(_request: Request) -> JSONResponse:
        return _json({"Implements": ["authz"]})

    async def authz_req(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            req = parse_authz(raw)
        except InvalidInput as exc:
            return _json(refusal(str(exc)).to_json())
        if req.call in PASSED:
            return _json(ALLOW.to_json())
        reply = await run_in_threadpool(gate.decide, req)
        return _json(reply.to_json())

    async def authz_res(request: Request) -> JSONResponse:
        await request.body()
        return _json(ALLOW.to_json())

    return Starlette(
        routes=[
            Route("/Plugin.Activate", activate, methods=["POST"]),
            Route("/AuthZPlugin.AuthZReq", authz_req, methods=["POST"]),
            Route("/AuthZPlugin.AuthZRes", authz_res, methods=["POST"]),
        ]
    )


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
        self._prepare_socket_dir()
        config = uvicorn.Config(
            make_app(self.gate),
            uds=str(self.config.socket_path),
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="garrison-authz", daemon=True)
        self._thread.start()
        self._wait_started()
        self._register()
        return self

    def stop(self) -> None:
        """Stop answering and remove the spec file and the socket. Stop dockerd first: it
        refuses every call while its plugin is down."""
        self._unregister()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(self.config.stop_timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(self.config.stop_timeout)
        self.config.socket_path.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _prepare_socket_dir(self) -> None:
        # The socket inherits nothing useful from uvicorn's 0o666: keep it in a 0700 folder.
        folder = self.config.socket_path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.config.socket_path.unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot prepare the plugin socket in {folder}: {exc}") from exc

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
        """Make dockerd find the plugin: a link in the sockets folder and/or a spec file."""
        link, spec, target = self.config.link_path, self.config.spec_path, self.config.socket_path
        try:
            if link is not None and link != target:
                link.parent.mkdir(parents=True, exist_ok=True)
                link.unlink(missing_ok=True)
                link.symlink_to(target)
            if spec is not None:
                spec.parent.mkdir(parents=True, exist_ok=True)
                spec.write_text(f"unix://{target}\n")
        except OSError as exc:
            self.stop()
            raise ConfigError(f"cannot register the plugin {self.config.name}: {exc}") from exc

    def _unregister(self) -> None:
        for path in (self.config.link_path, self.config.spec_path):
            if path is not None and path != self.config.socket_path:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)

    def __enter__(self) -> GateServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
