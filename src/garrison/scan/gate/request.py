"""Docker authorization plugin requests: parsing, and which API call a request is.

Facts verified on Docker 20.10 (shared/notes/kernel.md, "Docker authorization plugins"): the
URI key is ``RequestUri``; ``RequestBody`` is base64; ``RequestHeaders`` is a flat map; over
the unix socket ``User`` is empty. The daemon forwards a body only when it is JSON and under
1 MiB (moby pkg/authorization/authz.go ``sendBody``/``drainBody``): a larger request reaches the
plugin with no body at all, and so did any chunked request before the CVE-2024-41110 fix (this
machine's Debian 20.10.24+dfsg1-1+deb12u1 has the fix: small chunked bodies arrive).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from garrison.errors import InvalidInput
from garrison.scan.gate.routes import BAD_ESCAPE, READ_ONLY_METHODS, Call, Route, route

# dockerd forwards bodies of at most 4 MiB (1 MiB before 25.0), base64 in a JSON message.
MAX_MESSAGE = 8 * 1024 * 1024

__all__ = ["MAX_MESSAGE", "READ_ONLY_METHODS", "AuthZRequest", "Call", "EmptyBody", "parse_authz"]


@dataclass(frozen=True, slots=True)
class AuthZRequest:
    """One ``/AuthZPlugin.AuthZReq`` (or ``AuthZRes``) message."""

    method: str
    route: Route
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    user: str = ""
    uri: str = ""

    @property
    def call(self) -> Call:
        return self.route.call

    @property
    def path(self) -> str:
        """The decoded path, without the API version prefix and the query."""
        return self.route.path

    @property
    def container_ref(self) -> str:
        """The id or name in ``/containers/{ref}/…``; "" for other paths."""
        return self.route.ref

    def required_body(self) -> bytes:
        """The body; EmptyBody when it reached the plugin without one."""
        if not self.body:
            raise EmptyBody(self.path)
        return self.body


class EmptyBody(InvalidInput):
    """A body-bearing request arrived without its body."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"the {path} request reached the authorization plugin without its body, so it "
            "cannot be checked: Docker forwards no body of 1 MiB or more to authorization "
            "plugins, nor any chunked body before its fix for CVE-2024-41110. Send the request "
            "with a body under 1 MiB and a Content-Length."
        )


def parse_authz(raw: bytes) -> AuthZRequest:
    """Parse the JSON message dockerd sends; InvalidInput when it is not one."""
    if len(raw) > MAX_MESSAGE:
        raise InvalidInput(f"the authorization request is larger than {MAX_MESSAGE} bytes")
    try:
        doc = json.loads(raw)
    except RecursionError as exc:
        raise InvalidInput("the authorization request is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the authorization request is not JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("the authorization request is not a JSON object")
    uri, method = _text(doc, "RequestUri"), _text(doc, "RequestMethod").upper()
    where = route(method, uri)
    return AuthZRequest(
        method=method,
        route=where,
        query=go_query(where.query),
        headers=_headers(doc.get("RequestHeaders")),
        body=_body(doc.get("RequestBody")),
        user=_text(doc, "User"),
        uri=uri,
    )


def go_query(query: str) -> dict[str, str]:
    """Go's ``url.ParseQuery`` as ``r.Form.Get`` reads it: ``&``-separated, a pair holding
    ``;`` or a malformed escape dropped, the first value of a key kept."""
    values: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair or ";" in pair or BAD_ESCAPE.search(pair):
            continue
        key, _, value = pair.partition("=")
        values.setdefault(unquote_plus(key), unquote_plus(value))
    return values


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"the authorization request's {key} is not a string")
    return value


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k).lower(): str(v) for k, v in value.items()}


def _body(value: Any) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise InvalidInput("the authorization request's RequestBody is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("the authorization request's RequestBody is not valid base64") from exc
