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
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from garrison.errors import InvalidInput

_VERSION = re.compile(r"^/v\d+(\.\d+)*(?=/)")
_CONTAINER_ACTION = re.compile(r"^/containers/(?P<ref>[^/]+)/(?P<action>start|exec)$")
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Call(enum.Enum):
    """The API calls the gate judges; everything else is passed."""

    READ_ONLY = "read-only"
    CREATE = "containers/create"
    START = "containers/start"
    EXEC = "containers/exec"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class AuthZRequest:
    """One ``/AuthZPlugin.AuthZReq`` (or ``AuthZRes``) message."""

    method: str
    path: str  # without the API version prefix and the query
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    user: str = ""
    uri: str = ""

    @property
    def call(self) -> Call:
        if self.method in READ_ONLY_METHODS:
            return Call.READ_ONLY
        if self.method != "POST":
            return Call.OTHER
        if self.path == "/containers/create":
            return Call.CREATE
        match = _CONTAINER_ACTION.match(self.path)
        if match is None:
            return Call.OTHER
        return Call.START if match["action"] == "start" else Call.EXEC

    @property
    def container_ref(self) -> str:
        """The id or name in ``/containers/{ref}/…``; "" for other paths."""
        match = _CONTAINER_ACTION.match(self.path)
        return unquote(match["ref"]) if match else ""

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object; InvalidInput when it is empty or not a JSON object."""
        if not self.body:
            raise EmptyBody(self.path)
        try:
            doc = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the {self.path} request body is not JSON") from exc
        if not isinstance(doc, dict):
            raise InvalidInput(f"the {self.path} request body is not a JSON object")
        return doc


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
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the authorization request is not JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("the authorization request is not a JSON object")
    uri = _text(doc, "RequestUri")
    parts = urlsplit(uri)
    return AuthZRequest(
        method=_text(doc, "RequestMethod").upper(),
        path=_VERSION.sub("", parts.path) or "/",
        query={k: v[-1] for k, v in parse_qs(parts.query).items()},
        headers=_headers(doc.get("RequestHeaders")),
        body=_body(doc.get("RequestBody")),
        user=_text(doc, "User"),
        uri=uri,
    )


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
