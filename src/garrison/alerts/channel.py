"""Alert channels: a name and a destination URL, checked before anything is sent to them.

Three kinds of URL:

- ``syslog://HOST:PORT`` (UDP), ``syslog+tcp://HOST:PORT`` (TCP, RFC 6587 octet counting),
  ``syslog+unix:///PATH`` (a unix datagram socket such as /dev/log): RFC 5424 frames;
- ``jsonl:///ABS/PATH`` (JSON lines appended to a file) and ``jsonl://-`` (standard output);
- anything else goes to apprise (mailto://, slack://, json://, msteams://, ...). Garrison's
  ``syslog://`` takes precedence over apprise's local-syslog plugin of the same name.

A URL is a credential: every message here names it through ``redacted``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from garrison.alerts._redact import redacted
from garrison.alerts.render import inert
from garrison.errors import InvalidInput

__all__ = [
    "Channel",
    "ChannelKind",
    "SyslogTarget",
    "check_channel",
    "jsonl_path",
    "kind_of",
    "redacted",
    "syslog_target",
]

ChannelKind = Literal["apprise", "syslog", "jsonl"]
Transport = Literal["udp", "tcp", "unix"]

_SYSLOG_TRANSPORTS: dict[str, Transport] = {
    "syslog": "udp",
    "syslog+tcp": "tcp",
    "syslog+unix": "unix",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NAME_MAX = 64
_URL_MAX = 2048
_NAME_RULE = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"


@dataclass(frozen=True, slots=True, repr=False)
class Channel:
    name: str
    url: str

    @property
    def kind(self) -> ChannelKind:
        return kind_of(self.url)

    def __repr__(self) -> str:
        # A repr lands in logs and tracebacks: it must not carry the URL's secrets.
        return f"Channel(name={self.name!r}, url={redacted(self.url)!r})"


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    """Where a syslog channel sends: host and port for udp/tcp, a socket path for unix."""

    transport: Transport
    host: str = ""
    port: int = 0
    path: str = ""


def kind_of(url: str) -> ChannelKind:
    scheme = _scheme(url)
    if scheme in _SYSLOG_TRANSPORTS:
        return "syslog"
    if scheme == "jsonl":
        return "jsonl"
    return "apprise"


def check_channel(name: str, url: str) -> Channel:
    """The channel, or InvalidInput naming the field at fault (the URL only redacted)."""
    _check_name(name)
    _check_url_text(url)
    kind = kind_of(url)
    if kind == "syslog":
        syslog_target(url)
    elif kind == "jsonl":
        jsonl_path(url)
    else:
        _check_apprise(url)
    return Channel(name=name, url=url)


def syslog_target(url: str) -> SyslogTarget:
    """The destination of a syslog URL; InvalidInput when it is not one."""
    transport = _SYSLOG_TRANSPORTS.get(_scheme(url))
    if transport is None:
        raise _bad_url(url, "is not a syslog URL")
    parts = _split(url)
    if parts.username is not None or parts.query or parts.fragment:
        raise _bad_url(url, "takes no user, query or fragment")
    if transport == "unix":
        return _unix_target(url, parts)
    return _inet_target(url, parts, transport)


def jsonl_path(url: str) -> str:
    """The file a jsonl URL appends to, or "-" for standard output."""
    if _scheme(url) != "jsonl":
        raise _bad_url(url, "is not a jsonl URL")
    parts = _split(url)
    if parts.query or parts.fragment:
        raise _bad_url(url, "takes no query or fragment")
    if parts.netloc == "-" and not parts.path:
        return "-"
    if parts.netloc or not parts.path.startswith("/"):
        raise _bad_url(url, "must be jsonl:///ABSOLUTE/PATH or jsonl://-")
    return parts.path


def _check_name(name: str) -> None:
    if not name:
        raise InvalidInput(f"channel name is empty: use {_NAME_RULE}")
    if len(name) > _NAME_MAX:
        raise InvalidInput(f"channel name {name[:_NAME_MAX]!r}... is longer than {_NAME_MAX}")
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"channel name {name!r} is not valid: use {_NAME_RULE}")


def _check_url_text(url: str) -> None:
    if not url:
        raise InvalidInput("channel URL is empty")
    if len(url) > _URL_MAX:
        raise _bad_url(url[:64], f"is longer than {_URL_MAX} characters")
    if any(_is_space_or_control(char) for char in url):
        raise _bad_url(url, "contains a space or a control character")
    if not _scheme(url):
        raise _bad_url(url, "has no scheme such as mailto://, slack:// or syslog://")


def _is_space_or_control(char: str) -> bool:
    # Categories C* (controls, format, surrogates...) and Z* (spaces, line separators).
    return unicodedata.category(char)[0] in "CZ"


def _check_apprise(url: str) -> None:
    # Imported here: apprise takes 0.14 s to import, and every CLI command loads this module.
    from garrison.alerts import _apprise  # noqa: PLC0415

    refusal = _apprise.refusal(url)
    if refusal is not None:
        raise _bad_url(url, f"is refused by apprise: {refusal}")


def _unix_target(url: str, parts: SplitResult) -> SyslogTarget:
    if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise _bad_url(url, "must be syslog+unix:///ABSOLUTE/PATH")
    return SyslogTarget(transport="unix", path=parts.path)


def _inet_target(url: str, parts: SplitResult, transport: Transport) -> SyslogTarget:
    form = f"{_scheme(url)}://HOST:PORT with a port from 1 to 65535"
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 1 <= port <= 65535:
        raise _bad_url(url, f"must be {form}")
    if parts.path not in ("", "/"):
        raise _bad_url(url, f"must be {form} and no path")
    return SyslogTarget(transport=transport, host=parts.hostname, port=port)


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        # An unclosed "[" of an IPv6 literal, mostly.
        raise _bad_url(url, "is malformed") from exc


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def _bad_url(url: str, why: str) -> InvalidInput:
    # One line whatever the URL holds, and not the whole of a 2 kB URL.
    return InvalidInput(f"channel URL {inert(redacted(url), 200)} {why}")
