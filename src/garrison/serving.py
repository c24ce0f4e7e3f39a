"""uvicorn on a socket bound beforehand: what the console, its defender listener and the
admission webhook serve on. The socket is bound before anything else, so a busy or malformed
address is one clear error at once, not a log line later.

No web framework is imported here: each server brings its own app.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from typing import Self

import uvicorn

from garrison.errors import ConfigError
from garrison.text import clip


def parse_address(
    text: str, what: str = "console address", localhost: bool = True
) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; ``localhost`` too unless told not); a
    ConfigError naming ``what`` the address is otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"{what} must be HOST:PORT, not {clip(repr(text), 80)}")
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return host, int(port)
    if not (localhost and host == "localhost"):
        raise ConfigError(f"{what}: {clip(host, 80)} is not an IP address")
    return host, int(port)


def bind(
    address: str, what: str = "console address", localhost: bool = True, reuse_port: bool = False
) -> socket.socket:
    """A listening socket on ``address`` (as ``parse_address`` reads it), for uvicorn.
    ``reuse_port``: SO_REUSEPORT, so that several processes of one user listen on one address
    and the kernel spreads the connections among them (socket(7)); each must ask for it."""
    host, port = parse_address(address, what, localhost)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, reuse_port=reuse_port)
    except OSError as exc:
        raise ConfigError(f"{what} {address}: {exc.strerror or exc}") from exc
    # Linux passes this on to each accepted connection. asyncio sets it only on sockets made
    # with IPPROTO_TCP, which create_server's are not: without it an answer's body, written
    # after its head, waits for the client's delayed ACK (40 ms per request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class ServedSocket:
    """uvicorn on a socket bound beforehand (``bind``): in the foreground, or on a thread
    named ``name`` (signals stay with the caller)."""

    def __init__(self, sock: socket.socket, config: uvicorn.Config, scheme: str, name: str) -> None:
        self.sock = sock
        self.scheme = scheme
        self.name = name
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{port}"

    def run(self) -> None:
        """In the foreground, until SIGINT or SIGTERM."""
        self.server.run(sockets=[self.sock])

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10.0)
        self.sock.close()
