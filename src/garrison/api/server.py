"""Serving the console: uvicorn on an address of the user's choosing (loopback by default),
with TLS when given a certificate and key; in the foreground (``garrison console serve``) or
on a thread beside the defender (``garrison run --console-address``).

The socket is bound before anything else, so a busy or malformed address is one clear error
at once, not a log line later.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from garrison.api.app import create_app
from garrison.console import Console
from garrison.errors import ConfigError
from garrison.runtime.base import ContainerRuntime
from garrison.store.datadir import open_private
from garrison.text import clip

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:8080"
PASSWORD_FILE = "initial-admin-password"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); ConfigError naming it otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"console address must be HOST:PORT, not {clip(repr(text), 80)}")
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return host, int(port)
    if host != "localhost":
        raise ConfigError(f"console address: {clip(host, 80)} is not an IP address")
    return host, int(port)


def bind(address: str) -> socket.socket:
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as exc:
        raise ConfigError(f"console address {address}: {exc.strerror or exc}") from exc
    # Linux passes this on to each accepted connection. asyncio sets it only on sockets made
    # with IPPROTO_TCP, which create_server's are not: without it an answer's body, written
    # after its head, waits for the client's delayed ACK (40 ms per request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class ConsoleServer:
    """The API (and the pages, as they come) over ``console`` on ``address``."""

    def __init__(
        self,
        console: Console,
        address: str,
        runtime_factory: Callable[[], ContainerRuntime],
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.address = address
        self.tls = tls
        self.sock = bind(address)
        app = create_app(console, runtime_factory)
        cert, key = tls if tls else (None, None)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, ssl_certfile=cert, ssl_keyfile=key
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}"

    def run(self) -> None:
        """In the foreground, until SIGINT or SIGTERM."""
        self.server.run(sockets=[self.sock])

    def start(self) -> ConsoleServer:
        """On a thread (signals stay with the caller)."""
        self._thread = threading.Thread(target=self.run, name="console", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10.0)
        self.sock.close()


def first_admin(console: Console, data_dir: Path) -> str:
    """On the very first start, the user ``admin`` with a random password, written to a file
    only root can read (never to a log); what to tell the user, or "" when users exist."""
    password = console.accounts().bootstrap_admin()
    if password is None:
        return ""
    path = data_dir / PASSWORD_FILE
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, f"{password}\n".encode())
    finally:
        os.close(fd)
    return (
        f"first start: log in as admin with the password in {path}; "
        "change it with `garrison users passwd admin`, then delete the file"
    )
