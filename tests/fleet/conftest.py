"""A console CA in a temporary folder, and a real TLS server on 127.0.0.1 that reports what
it made of each connection: stopped, its sockets closed and its thread joined, even when the
test fails."""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from garrison.fleet import ConsoleCA, Credentials, PeerRefused, make_host_request, server_context

YEAR = timedelta(days=365)
TIMEOUT = 10.0  # the most a socket or a queue waits; not a timing assertion


class Outcome:
    """What the server made of one connection: ``accepted`` (with the host name it read),
    ``tls-refused`` (the handshake failed) or ``peer-refused`` (``check_peer`` said no)."""

    def __init__(self, kind: str, detail: str, serial: int | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.serial = serial

    def __repr__(self) -> str:
        return f"Outcome({self.kind!r}, {self.detail!r})"


class TlsServer:
    """Accepts on a free port of 127.0.0.1; after each handshake asks ``ca.check_peer`` and
    answers ``hello <host>`` to a host it accepts."""

    def __init__(self, context: ssl.SSLContext, ca: ConsoleCA) -> None:
        self.context = context
        self.ca = ca
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # how often the loop looks at the stop flag
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tls-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.listener.close()
        assert not self._thread.is_alive(), "the TLS server thread did not stop"

    def next_outcome(self) -> Outcome:
        return self.outcomes.get(timeout=TIMEOUT)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(TIMEOUT)
                self.outcomes.put(self._handle(conn))

    def _handle(self, conn: socket.socket) -> Outcome:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except OSError as exc:  # ssl.SSLError is one
            return Outcome("tls-refused", str(exc))
        with tls:
            try:
                host = self.ca.check_peer(tls)
            except PeerRefused as exc:
                return Outcome("peer-refused", str(exc))
            tls.sendall(f"hello {host}\n".encode())
            return Outcome("accepted", host)


@pytest.fixture
def ca(tmp_path: Path) -> ConsoleCA:
    return ConsoleCA.create(tmp_path / "ca")


@pytest.fixture
def console_files(ca: ConsoleCA, tmp_path: Path) -> tuple[Path, Path]:
    """The console's certificate and key files, for 127.0.0.1 and localhost."""
    return ca.issue_server(["localhost"], ["127.0.0.1"]).save(tmp_path / "console", "console")


@pytest.fixture
def host_files(ca: ConsoleCA, tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Enrol a host the way a real one does (key made here, only the request signed); its
    certificate and key files."""

    def enrol(
        host: str = "web-1", not_before: datetime | None = None, valid_for: timedelta = YEAR
    ) -> tuple[Path, Path]:
        request = make_host_request(host)
        cert = ca.issue_client(request.csr_pem, not_before=not_before, valid_for=valid_for)
        return Credentials(cert, request.key_pem).save(tmp_path / "hosts" / host, "host")

    return enrol


@pytest.fixture
def serve(ca: ConsoleCA) -> Iterator[Callable[[ssl.SSLContext], TlsServer]]:
    """Start a TlsServer with a context; every one started is stopped at the end."""
    started: list[TlsServer] = []

    def start(context: ssl.SSLContext) -> TlsServer:
        server = TlsServer(context, ca)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def console(
    serve: Callable[[ssl.SSLContext], TlsServer], ca: ConsoleCA, console_files: tuple[Path, Path]
) -> TlsServer:
    """The console's TLS server, with the context ``server_context`` makes."""
    return serve(server_context(*console_files, ca.cert_pem))
