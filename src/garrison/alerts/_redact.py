"""Channel URLs with their secrets hidden, for error messages and logs.

A channel URL is a credential: a mail password, a Slack webhook's tokens, a PagerDuty key.
Whatever Garrison shows or logs about a channel goes through ``redacted``; ``secrets_in``
gives the same hidden parts to the log filter that scrubs apprise's messages.

The URL is split by hand rather than with ``urllib.parse``: that module raises on odd input
(an unclosed ``[``, a port out of range) and a display helper must not.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

HIDDEN = "***"

# Query parameter names that carry a credential, matched as substrings of the lowercased
# name: "pass" covers "password" and apprise's "?pass=", "auth" covers "+Authorization".
_SECRET_NAMES = (
    "token",
    "key",
    "secret",
    "password",
    "pass",
    "apikey",
    "webhook",
    "signature",
    "sig",
    "auth",
)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")

# Shorter hidden parts are not scrubbed from log lines: replacing every "ab" in a line would
# garble it, and a secret that short is guessed rather than read anyway.
_SCRUBBED_LEN = 4

# Garrison's own schemes carry no credential in their host or path.
_PLAIN_SCHEMES = frozenset({"syslog", "syslog+tcp", "syslog+unix", "jsonl"})

# A longer path segment (or dotless host) may be a token: show only its start.
_SHORT = 8
_SHOWN = 4

# One piece of a URL: its text as written and as shown.
Piece = tuple[str, str]


def redacted(url: str) -> str:
    """The URL with its password, secret query values and token-like parts hidden."""
    return "".join(shown for _, shown in _pieces(url))


def secrets_in(url: str) -> list[Piece]:
    """Each hidden part of the URL with what replaces it, longest first.

    Both the written and the percent-decoded form are listed: apprise logs decoded values.
    """
    found: dict[str, str] = {}
    for text, shown in _pieces(url):
        if text != shown and len(text) >= _SCRUBBED_LEN:
            found[text] = shown
            found.setdefault(unquote(text), shown)
    return sorted(found.items(), key=lambda item: len(item[0]), reverse=True)


def mask(text: str) -> str:
    """A token shown by its first characters only; short texts are left as they are."""
    if len(text) <= _SHORT:
        return text
    return text[:_SHOWN] + HIDDEN


def _pieces(url: str) -> list[Piece]:
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return [(url, mask(url))]
    plain = scheme.lower() in _PLAIN_SCHEMES
    before_fragment, hash_sign, fragment = rest.partition("#")
    hier, question, query = before_fragment.partition("?")
    authority, slash, path = hier.partition("/")
    pieces: list[Piece] = [(scheme + sep, scheme + sep)]
    pieces += _authority(authority, plain)
    if slash:
        pieces += _path(path, plain)
    if question:
        pieces += [("?", "?"), *_query(query)]
    if hash_sign:
        pieces += _fragment(fragment, plain)
    return pieces


def _authority(authority: str, plain: bool) -> list[Piece]:
    userinfo, at, hostport = authority.rpartition("@")
    pieces: list[Piece] = []
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            pieces += [(user, user), (":", ":"), (password, HIDDEN if password else "")]
        else:
            # A user alone is a key in pagerduty://KEY@APIKEY; a login has a password too.
            pieces.append((user, user if plain else mask(user)))
        pieces.append(("@", "@"))
    host, port = _split_port(hostport)
    pieces.append((host, host if plain or _looks_like_hostname(host) else mask(host)))
    if port:
        pieces.append((port, port))
    return pieces


def _split_port(hostport: str) -> tuple[str, str]:
    """("host", ":514") from "host:514"; an IPv6 literal keeps its colons."""
    if hostport.startswith("["):
        end = hostport.find("]") + 1
        if end:
            return hostport[:end], hostport[end:]
        return hostport, ""
    host, colon, port = hostport.rpartition(":")
    if colon and port.isdigit():
        return host, colon + port
    return hostport, ""


def _looks_like_hostname(host: str) -> bool:
    # slack://TokenA/..., msteams://TokenA/..., pagerduty://KEY@APIKEY: a service's host
    # slot holds a token. A real host has a dot, is an IPv6 literal or is localhost.
    return "." in host or host.startswith("[") or host.lower() == "localhost"


def _path(path: str, plain: bool) -> list[Piece]:
    pieces: list[Piece] = []
    for segment in path.split("/"):
        shown = segment if plain or _is_channel_name(segment) else mask(segment)
        pieces += [("/", "/"), (segment, shown)]
    return pieces


def _is_channel_name(segment: str) -> bool:
    return unquote(segment).startswith(("#", "@"))


def _query(query: str) -> list[Piece]:
    pieces: list[Piece] = []
    for index, param in enumerate(query.split("&")):
        name, equals, value = param.partition("=")
        if index:
            pieces.append(("&", "&"))
        pieces.append((name + equals, name + equals))
        hidden = HIDDEN if value and _is_secret_name(name) else value
        pieces.append((value, hidden))
    return pieces


def _is_secret_name(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in _SECRET_NAMES)


def _fragment(fragment: str, plain: bool) -> list[Piece]:
    # slack://A/B/C/#general: the fragment's first part is a channel name by construction.
    first, *others = fragment.split("/")
    pieces: list[Piece] = [("#", "#"), (first, first)]
    for segment in others:
        shown = segment if plain or _is_channel_name(segment) else mask(segment)
        pieces += [("/", "/"), (segment, shown)]
    return pieces
