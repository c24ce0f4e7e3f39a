"""A Docker authorization plugin for tests (this module holds no tests): it allows every
request except, while ``refuse_kills`` is set, ``POST /containers/ID/kill`` — the way a site's
own plugin, or Docker with its plugin down, refuses what Garrison asks. It speaks the plugin
protocol over a unix socket and is found through ``/run/docker/plugins/NAME.sock``."""

from __future__ import annotations

import json
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

PLUGIN_DIR = Path("/run/docker/plugins")
KILL = re.compile(r"^(/v[\d.]+)?/containers/[^/]+/kill")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    plugin: RefusingPlugin


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request: dict[str, Any] = json.loads(body or b"{}")
        self._answer(self.server.plugin.answer(self.path, request))

    def _answer(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1.2+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"


class RefusingPlugin:
    def __init__(self, name: str, socket_path: Path) -> None:
        self.name = name
        self.socket_path = socket_path
        self.refuse_kills = threading.Event()
        self.refused = 0
        self._server = _Server(str(socket_path), _Handler)
        self._server.plugin = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str, request: dict[str, Any]) -> dict[str, Any]:
        if path == "/Plugin.Activate":
            return {"Implements": ["authz"]}
        uri = str(request.get("RequestUri", ""))
        if path == "/AuthZPlugin.AuthZReq" and self.refuse_kills.is_set() and KILL.match(uri):
            self.refused += 1
            return {"Allow": False, "Msg": "kills are refused here"}
        return {"Allow": True}

    @property
    def link(self) -> Path:
        return PLUGIN_DIR / f"{self.name}.sock"

    def start(self) -> RefusingPlugin:
        self._thread.start()
        PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(self.socket_path)
        return self

    def stop(self) -> None:
        self.link.unlink(missing_ok=True)
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)
