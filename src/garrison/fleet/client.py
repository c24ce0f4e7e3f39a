"""A host's HTTPS client for its console: JSON over one kept-alive connection, with the host's
client certificate (``tls.client_context``).

The standard library's ``http.client``, not httpx: the defender's memory counts (httpx and its
dependencies are about 7 MiB), and one connection used by one thread at a time is all a link
needs. Not thread-safe: each thread that calls the console has its own client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import urllib.parse
from typing import Any

from garrison.errors import GarrisonError, InvalidInput
from garrison.text import clip

TIMEOUT = 5.0


class ConsoleAway(GarrisonError):
    """The console did not answer (down, unreachable, too slow) or answered that it cannot
    now (5xx): what was asked is to be asked again later."""


class ConsoleRefused(InvalidInput):
    """The console answered, refusing what was asked (4xx): asking again will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class HostRefused(ConsoleRefused, ConsoleAway):
    """The console refuses this host's certificate (401: the host was revoked, or enrolled
    again since). A refusal, but not of what was sent: a link keeps what it has and asks
    again later, as when the console is away — it never drops audits for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 401)


def check_url(url: str) -> urllib.parse.SplitResult:
    """``https://HOST[:PORT]`` of a console; InvalidInput otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise InvalidInput(f"console URL must be https://HOST[:PORT], not {clip(url, 80)!r}")
    return parts


class ConsoleClient:
    def __init__(self, url: str, context: ssl.SSLContext, timeout: float = TIMEOUT) -> None:
        parts = check_url(url)
        self.url = url
        self._host = parts.hostname or ""
        self._port = parts.port or 443
        self._context = context
        self._timeout = timeout
        self._conn: http.client.HTTPSConnection | None = None

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        return self._call("GET", path, None)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path, None)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def interrupt(self) -> None:
        """End the call another thread waits in (a held sync): it raises ConsoleAway."""
        conn = self._conn
        sock = None if conn is None else conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            conn = self._connection()
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # a connection that failed midway is not used again
            raise ConsoleAway(f"console {self.url}: {exc}") from exc
        return _answer(self.url, response.status, raw)

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        return self._conn


def _answer(url: str, status: int, raw: bytes) -> Any:
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {"error": clip(raw.decode("utf-8", "replace"), 200)}
    if status >= 500:
        raise ConsoleAway(f"console {url}: {status} {_error(doc)}")
    if status == 401:
        raise HostRefused(f"console {url} refuses this host: {_error(doc)}")
    if status >= 400:
        raise ConsoleRefused(f"console {url}: {_error(doc)}", status)
    return doc


def _error(doc: Any) -> str:
    return str(doc.get("error", "")) if isinstance(doc, dict) else ""
