"""Real receivers on loopback for the alert tests: SMTP (aiosmtpd), HTTP webhooks, an HTTPS
proxy that plays hooks.slack.com, syslog over UDP, TCP and a unix datagram socket, and the two
kinds of dead receiver (nothing listening; listening but never answering)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "garrison"
SMTP_PASSWORD = "Sm7pS3cretPassw0rd"


def free_port() -> int:
    """A TCP port nothing listens on (aiosmtpd cannot bind port 0 and report it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP -------------------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class MailBox:
    port: int
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD))


@contextlib.contextmanager
def smtp_server() -> Iterator[MailBox]:
    box = MailBox(port=free_port())
    # Plain SMTP with AUTH on loopback: no TLS to set up, and apprise's mode=insecure speaks
    # exactly that. AUTH is offered without TLS on purpose (auth_require_tls=False).
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# --- HTTP webhooks ----------------------------------------------------------------------


@dataclass
class Post:
    host: str
    path: str
    headers: dict[str, str]
    body: bytes


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.posts.append(
            Post(self.headers.get("Host", ""), self.path, dict(self.headers.items()), body)
        )
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_CONNECT(self) -> None:
        # The proxy's side: answer the tunnel, then be the TLS server the client asked for
        # and handle the requests inside it as webhook posts.
        self.send_response(200, "Connection established")
        self.end_headers()
        context = self.server.tls
        assert context is not None
        with context.wrap_socket(self.connection, server_side=True) as tls:
            _WebhookHandler(tls, self.client_address, self.server)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.posts: list[Post] = []
        self.tls = tls
        self.status = status

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextlib.contextmanager
def serving(server: WebhookServer) -> Iterator[WebhookServer]:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def webhook_server(status: int = 200) -> contextlib.AbstractContextManager[WebhookServer]:
    return serving(WebhookServer(status=status))


def tls_proxy(cert: Path, key: Path) -> contextlib.AbstractContextManager[WebhookServer]:
    """An HTTPS proxy that terminates the tunnel itself with ``cert``: a client that trusts
    the cert (REQUESTS_CA_BUNDLE) and goes through the proxy (HTTPS_PROXY) posts here."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return serving(WebhookServer(tls=context))


def self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    command += ["-subj", f"/CN={hostname}", "-addext", f"subjectAltName=DNS:{hostname}"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


# --- syslog -----------------------------------------------------------------------------


@contextlib.contextmanager
def udp_receiver() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


@contextlib.contextmanager
def unix_receiver(path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock


class TcpReceiver:
    """Accepts connections and keeps every byte each one sent until it closed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.streams: list[bytes] = []
        self.closed = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._serve, name="syslog-tcp", daemon=True)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # the listening socket closed: done
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    conn.settimeout(5)
                    self.streams.append(_read_to_end(conn))
                self.closed.release()

    def wait_stream(self) -> bytes:
        assert self.closed.acquire(timeout=5), "no connection ended within 5 s"
        return self.streams[-1]


def _read_to_end(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def tcp_receiver() -> Iterator[TcpReceiver]:
    receiver = TcpReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        with contextlib.suppress(OSError):
            receiver.sock.shutdown(socket.SHUT_RDWR)
        receiver.sock.close()
        receiver.thread.join(5)


# --- dead receivers ---------------------------------------------------------------------


def dead_port() -> int:
    """A port with nothing listening: a connection is refused at once."""
    return free_port()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them from the backlog) and never
    sends a byte: an SMTP client waits for a greeting, an HTTP client for a response."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as sock:
        yield int(sock.getsockname()[1])
