"""Serving the console: uvicorn on an address of the user's choosing (loopback by default),
with TLS when given a certificate and key; in the foreground (``garrison console serve``) or
on a thread beside the defender (``garrison run --console-address``).

The socket is bound before anything else, so a busy or malformed address is one clear error
at once, not a log line later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import uvicorn

from garrison.api.app import create_app
from garrison.console import Console
from garrison.runtime.base import ContainerRuntime
from garrison.serving import ServedSocket, bind
from garrison.store.datadir import open_private

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:8080"
PASSWORD_FILE = "initial-admin-password"


class ConsoleServer(ServedSocket):
    """The API and the pages over ``console`` on ``address`` (``reuse_port``: shared with
    replicas on the same machine)."""

    def __init__(
        self,
        console: Console,
        address: str,
        runtime_factory: Callable[[], ContainerRuntime],
        tls: tuple[Path, Path] | None = None,
        *,
        reuse_port: bool = False,
    ) -> None:
        self.address = address
        self.tls = tls
        sock = bind(address, reuse_port=reuse_port)
        app = create_app(console, runtime_factory)
        cert, key = tls if tls else (None, None)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, ssl_certfile=cert, ssl_keyfile=key
        )
        super().__init__(sock, config, "https" if tls else "http", "console")


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
