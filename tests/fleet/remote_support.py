"""A console's defender listener on a real store (SQLite or the session's PostgreSQL), on a
free loopback port, that a test can stop and start again on the same port (the console away);
and hosts enrolled with it, each with its own data folder."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.fleet.join import ca_digest, enrol, open_link
from garrison.fleet.link import RemoteLink
from garrison.fleet.server import DefenderListener, open_ca
from garrison.fleet.service import FleetService
from garrison.store.base import Store
from tests.conftest import made_store
from tests.support import free_port


class Console:
    """The defender listener of a console whose data folder is ``data_dir``."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self.service = FleetService(store, open_ca(store, data_dir))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.listener: DefenderListener | None = None

    def start(self) -> Console:
        for _ in range(50):  # the port of a listener just stopped may linger a moment
            try:
                self.listener = DefenderListener(
                    self.service, f"127.0.0.1:{self.port}", directory=self.data_dir / "listener"
                ).start()
                break
            except Exception:
                time.sleep(0.1)
        assert self.listener is not None, "the listener did not start"
        return self

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def token(self, ttl: float = 600.0) -> str:
        return self.service.make_enrol_token(ttl)[0]

    def digest(self) -> str:
        return ca_digest(self.service.ca.cert_pem)

    def enrol(self, data_dir: Path, host: str) -> str:
        return enrol(data_dir, self.url, self.token(), self.digest(), host)


@contextlib.contextmanager
def listening(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    """A started console on the store ``request.param`` names; stopped at the end."""
    with made_store(request, tmp_path) as store:
        made = Console(store, tmp_path / "console").start()
        try:
            yield made
        finally:
            made.stop()


@contextlib.contextmanager
def linked(console: Console, data_dir: Path) -> Iterator[RemoteLink]:
    """The link of the host enrolled in ``data_dir``, closed at the end."""
    link = open_link(data_dir, console.url)
    try:
        yield link
    finally:
        link.close(timeout=5.0)
