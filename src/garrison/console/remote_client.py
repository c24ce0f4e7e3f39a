"""The HTTP side of a remote console: where it is and which token to show it
(``RemoteSettings``), and its REST API called with HTTP errors mapped once, here, to
Garrison's (``ApiClient``).

The API answers an error as ``{"error": "…"}`` with the message the console's own code raised,
so a remote command fails with the line the same command prints on the console's host.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from garrison import __version__
from garrison.console.remote_settings import (
    CA_VAR,
    TOKEN_FILE_VAR,
    TOKEN_VAR,
    URL_VAR,
    RemoteSettings,
)
from garrison.errors import (
    ConfigError,
    ConsoleDenied,
    ConsoleError,
    ConsoleUnreachable,
    GarrisonError,
    InvalidInput,
    NotFound,
    RuntimeRefused,
)
from garrison.text import clip

T = TypeVar("T")
__all__ = ["CA_VAR", "TOKEN_FILE_VAR", "TOKEN_VAR", "URL_VAR", "ApiClient", "RemoteSettings"]
# Reading may wait on a large query or export: the connection itself should come at once.
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
_ERRORS: dict[int, type[GarrisonError]] = {
    400: InvalidInput, 401: ConsoleDenied, 403: ConsoleDenied, 404: NotFound, 409: RuntimeRefused,
}  # fmt: skip


class ApiClient:
    """The console's REST API, authenticated by the settings' token."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.url = settings.url
        self._http = httpx.Client(
            base_url=settings.url,
            headers={
                "Authorization": f"Bearer {settings.token}",
                "User-Agent": f"garrison-cli/{__version__}",
            },
            verify=_verify(settings.ca),
            timeout=TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body=body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body=body)

    def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """The answer's JSON; a Garrison error for an HTTP error or no answer."""
        request = self._http.build_request(method, path, params=params, json=body)
        with self._reached():
            response = self._http.send(request)
        self._check(response)
        try:
            return response.json()
        except ValueError:
            raise ConsoleError(f"console at {self.url}: its answer to {path} is not JSON "
                               "(is this a Garrison console?)") from None  # fmt: skip

    def lines(self, path: str, params: Mapping[str, Any]) -> Iterator[str]:
        """The text the answer streams, a line at a time, each with its line end."""
        request = self._http.build_request("GET", path, params=params)
        with self._reached():
            response = self._http.send(request, stream=True)
        try:
            if response.is_error:
                response.read()
                self._check(response)
            with self._reached():
                yield from _split_lines(response.iter_text())
        finally:
            response.close()

    def read(self, build: Callable[[Any], T], doc: Any) -> T:
        """``build(doc)``: an answer rebuilt into its object; one this version cannot read
        is the console's error, said so."""
        try:
            return build(doc)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise self._unreadable(exc) from exc

    def each(self, build: Callable[[Any], T], docs: Any) -> list[T]:
        if not isinstance(docs, list):
            raise self._unreadable(TypeError(f"a list was expected, not {type(docs).__name__}"))
        return [self.read(build, doc) for doc in docs]

    def _unreadable(self, exc: Exception) -> ConsoleError:
        why = clip(f"{type(exc).__name__}: {exc}", 300)
        return ConsoleError(f"console at {self.url}: an answer this garrison cannot read "
                            f"({why}); are both the same version?")  # fmt: skip

    @contextlib.contextmanager
    def _reached(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            why = clip(" ".join(str(exc).split()) or type(exc).__name__, 300)
            raise ConsoleUnreachable(f"console unreachable at {self.url}: {why}") from exc

    def _check(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        status, message = response.status_code, _message(response)
        kind = _ERRORS.get(status)
        if kind is ConsoleDenied and status == 401:
            raise ConsoleDenied(f"console at {self.url} refused the token: {message}")
        if kind is ConsoleDenied:
            raise ConsoleDenied(f"console at {self.url}: {message}")
        if kind is not None:
            raise kind(message)
        where = response.headers.get("location")
        extra = f" (to {clip(where, 200)})" if where else ""
        raise ConsoleError(f"console at {self.url} answered HTTP {status}{extra}: {message}")


def _verify(ca: Path | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{CA_VAR}: cannot use {ca} as a CA bundle: {exc}") from exc


def _message(response: httpx.Response) -> str:
    """The API's ``error``, else the status's reason (a proxy's page is not shown)."""
    try:
        found = response.json().get("error")
    except (ValueError, AttributeError):
        found = None
    return clip(str(found), 2000) if found else response.reason_phrase or "error"


def _split_lines(chunks: Iterator[str]) -> Iterator[str]:
    rest = ""
    for chunk in chunks:
        *whole, rest = (rest + chunk).split("\n")
        yield from (line + "\n" for line in whole)
    if rest:
        yield rest
