"""Which Engine API endpoint a request is, read exactly as dockerd routes it.

dockerd hands the authorization plugin the request URI as the client sent it (moby
pkg/authorization/middleware.go: ``r.RequestURI``), but routes on Go's decoded path
(gorilla/mux matching ``r.URL.Path``). A plugin that matched the raw text would judge
``/v1.41/containers/%63reate`` as something other than the create dockerd runs
(CVE-2024-41110 is the same class of bug). So the URI is decoded here as Go's
``url.ParseRequestURI`` decodes it, refused where Go refuses it, checked as gorilla/mux cleans
it (a path that is not clean is answered with a redirect and reaches no handler), and matched
against the same route table, with mux's own patterns: ``/v{version:[0-9.]+}`` in front of
every route or none, ``{name:.*}`` for names that may hold slashes.

The table is the Engine API's route list (moby ``api/server/router/*``, API 1.41 to 1.52), each
route with what the gate does with it (docs/authz.md, "Which calls are judged").
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_VERSIONED = re.compile(r"^/v(?P<version>[0-9.]+)(?P<rest>/.*)$", re.DOTALL)
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Call(enum.Enum):
    """What the gate does with an endpoint."""

    READ_ONLY = "read-only"  # GET, HEAD, OPTIONS: answered at once
    CREATE = "containers/create"  # scanned and checked against the rules
    START = "containers/start"  # start, restart, unpause: refused while blocked
    EXEC = "containers/exec"  # checked against the exec compliance rules
    UPDATE = "containers/update"  # refused while blocked (it can undo the block)
    PASSED = "passed"  # changes nothing the gate polices
    UNJUDGED = "unjudged"  # makes containers the gate never sees: refused
    UNKNOWN = "unknown"  # not in the table: refused


# (method, mux template, call). Kept in the order of moby's routers; read-only routes are not
# listed: every GET, HEAD and OPTIONS is read-only.
ROUTES: tuple[tuple[str, str, Call], ...] = (
    ("POST", "/containers/create", Call.CREATE),
    ("POST", "/containers/{name:.*}/kill", Call.PASSED),
    ("POST", "/containers/{name:.*}/pause", Call.PASSED),
    ("POST", "/containers/{name:.*}/unpause", Call.START),
    ("POST", "/containers/{name:.*}/restart", Call.START),
    ("POST", "/containers/{name:.*}/start", Call.START),
    ("POST", "/containers/{name:.*}/stop", Call.PASSED),
    ("POST", "/containers/{name:.*}/wait", Call.PASSED),
    ("POST", "/containers/{name:.*}/resize", Call.PASSED),
    ("POST", "/containers/{name:.*}/attach", Call.PASSED),
    ("POST", "/containers/{name:.*}/exec", Call.EXEC),
    ("POST", "/exec/{name:.*}/start", Call.PASSED),  # an exec judged when it was created
    ("POST", "/exec/{name:.*}/resize", Call.PASSED),
    ("POST", "/containers/{name:.*}/rename", Call.PASSED),
    ("POST", "/containers/{name:.*}/update", Call.UPDATE),
    ("POST", "/containers/prune", Call.PASSED),
    ("POST", "/commit", Call.PASSED),
    ("PUT", "/containers/{name:.*}/archive", Call.PASSED),
    ("DELETE", "/containers/{name:.*}", Call.PASSED),
    ("POST", "/containers/{name:.*}/checkpoints", Call.PASSED),
    ("DELETE", "/containers/{name}/checkpoints/{checkpoint}", Call.PASSED),
    ("POST", "/build", Call.PASSED),
    ("POST", "/build/prune", Call.PASSED),
    ("POST", "/build/cancel", Call.PASSED),
    ("POST", "/images/load", Call.PASSED),
    ("POST", "/images/create", Call.PASSED),
    ("POST", "/images/{name:.*}/push", Call.PASSED),
    ("POST", "/images/{name:.*}/tag", Call.PASSED),
    ("POST", "/images/prune", Call.PASSED),
    ("DELETE", "/images/{name:.*}", Call.PASSED),
    ("POST", "/networks/create", Call.PASSED),
    ("POST", "/networks/{id:.*}/connect", Call.PASSED),
    ("POST", "/networks/{id:.*}/disconnect", Call.PASSED),
    ("POST", "/networks/prune", Call.PASSED),
    ("DELETE", "/networks/{id:.*}", Call.PASSED),
    ("DELETE", "/plugins/{name:.*}", Call.PASSED),
    ("POST", "/plugins/{name:.*}/enable", Call.UNJUDGED),
    ("POST", "/plugins/{name:.*}/disable", Call.PASSED),
    ("POST", "/plugins/pull", Call.UNJUDGED),
    ("POST", "/plugins/{name:.*}/push", Call.PASSED),
    ("POST", "/plugins/{name:.*}/upgrade", Call.UNJUDGED),
    ("POST", "/plugins/{name:.*}/set", Call.UNJUDGED),
    ("POST", "/plugins/create", Call.UNJUDGED),
    ("POST", "/session", Call.PASSED),
    ("POST", "/swarm/init", Call.PASSED),
    ("POST", "/swarm/join", Call.PASSED),
    ("POST", "/swarm/leave", Call.PASSED),
    ("POST", "/swarm/update", Call.PASSED),
    ("POST", "/swarm/unlock", Call.PASSED),
    ("POST", "/services/create", Call.UNJUDGED),
    ("POST", "/services/{id}/update", Call.UNJUDGED),
    ("DELETE", "/services/{id}", Call.PASSED),
    ("DELETE", "/nodes/{id}", Call.PASSED),
    ("POST", "/nodes/{id}/update", Call.PASSED),
    ("POST", "/secrets/create", Call.PASSED),
    ("DELETE", "/secrets/{id}", Call.PASSED),
    ("POST", "/secrets/{id}/update", Call.PASSED),
    ("POST", "/configs/create", Call.PASSED),
    ("DELETE", "/configs/{id}", Call.PASSED),
    ("POST", "/configs/{id}/update", Call.PASSED),
    ("POST", "/auth", Call.PASSED),
    ("POST", "/volumes/create", Call.PASSED),
    ("POST", "/volumes/prune", Call.PASSED),
    ("PUT", "/volumes/{name:.*}", Call.PASSED),
    ("DELETE", "/volumes/{name:.*}", Call.PASSED),
    ("POST", "/grpc", Call.PASSED),
)


@dataclass(frozen=True, slots=True)
class Route:
    """A request's place in the table."""

    call: Call
    path: str = ""  # decoded, without the version prefix
    version: str = ""  # the ``/vX.Y`` prefix's version, "" when the path has none
    ref: str = ""  # the container (or exec, image…) the path names
    template: str = ""
    query: str = ""
    reason: str = field(default="", compare=False)  # why an unknown request is unknown


def _compile(template: str) -> re.Pattern[str]:
    """A mux template as a regular expression: ``{var}`` is ``[^/]+``, ``{var:re}`` is re."""
    out, pos = [], 0
    for var in re.finditer(r"\{(\w+)(?::([^}]*))?\}", template):
        out.append(re.escape(template[pos : var.start()]))
        out.append(f"(?P<{var[1]}>{var[2] or '[^/]+'})")
        pos = var.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


_TABLE = tuple((m, _compile(t), t, c) for m, t, c in ROUTES)


def route(method: str, uri: str) -> Route:
    """Where dockerd sends ``method uri``; UNKNOWN (with a reason) when it would not route it
    or the table does not know it."""
    method = method.upper()
    parsed = decode_uri(uri)
    if isinstance(parsed, str):
        return Route(Call.READ_ONLY if method in READ_ONLY_METHODS else Call.UNKNOWN, reason=parsed)
    path, query = parsed
    if method in READ_ONLY_METHODS:
        return Route(Call.READ_ONLY, path, query=query)
    version, rest = "", path
    if (versioned := _VERSIONED.match(path)) is not None:
        version, rest = versioned["version"], versioned["rest"]
    for route_method, pattern, template, call in _TABLE:
        match = pattern.fullmatch(rest) if route_method == method else None
        if match is not None:
            groups = match.groupdict()
            ref = groups.get("name") or groups.get("id") or ""
            return Route(call, rest, version, _text(ref), template, query)
    return Route(Call.UNKNOWN, rest, version, query=query, reason="not an Engine API route")


def decode_uri(uri: str) -> tuple[str, str] | str:
    """(decoded path, raw query) as Go's ``url.ParseRequestURI`` and gorilla/mux see them, or
    why dockerd would route no handler for it (the text of the refusal)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return "the request URI holds a control character"
    rest = uri
    scheme = _SCHEME.match(uri)
    if scheme is not None:
        rest = uri[scheme.end() :]
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    else:
        rest, _, query = rest.partition("?")
    if scheme is not None and rest.startswith("//"):
        slash = rest.find("/", 2)
        rest = rest[slash:] if slash >= 0 else ""
    if not rest.startswith("/"):
        return "the request URI is not a path"
    if BAD_ESCAPE.search(rest):
        return "the request path holds a malformed escape"
    path = unquote_to_bytes(rest).decode("latin-1")
    if clean_path(path) != path:
        return "the request path is not in clean form (dockerd redirects it)"
    return path, query


def clean_path(path: str) -> str:
    """gorilla/mux's ``cleanPath``: Go's ``path.Clean``, keeping a trailing slash."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def version_below(version: str, minimum: str) -> bool:
    """moby ``versions.LessThan``: dot-separated numbers, a part that is not one counts 0."""
    left, right = version.split("."), minimum.split(".")
    for i in range(max(len(left), len(right))):
        a = _number(left[i]) if i < len(left) else 0
        b = _number(right[i]) if i < len(right) else 0
        if a != b:
            return a < b
    return False


def _number(part: str) -> int:
    return int(part) if part.isascii() and part.isdigit() else 0


def _text(latin: str) -> str:
    """A path variable back to text (the path was decoded byte for byte)."""
    return latin.encode("latin-1").decode("utf-8", "replace")
