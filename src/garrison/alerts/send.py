"""Delivering one rendered alert to one channel.

``deliver`` either returns (the channel took the alert) or raises ``DeliveryFailed`` with a
short reason that names the channel by its redacted URL; whatever went wrong underneath (a
refused connection, a receiver that never answers, an HTTP 500, a full disk) ends there.
"""

from __future__ import annotations

import json
import os
import sys
import time

from garrison.alerts._redact import redacted
from garrison.alerts.channel import Channel, jsonl_path
from garrison.alerts.render import Message, email_header_safe
from garrison.alerts.syslog import frame, send_syslog, severity_of
from garrison.errors import DeliveryFailed, InvalidInput

__all__ = ["DeliveryFailed", "deliver", "jsonl_line"]

# JSON leaves these unescaped inside strings, yet many line readers (Python's splitlines,
# JavaScript) end a line at them. inert() already escaped them in rendered texts; this keeps
# a hand-built Message one line too.
_LINE_BREAKERS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def deliver(channel: Channel, message: Message, *, hostname: str, timeout: float = 10.0) -> None:
    """Send ``message`` to ``channel``; DeliveryFailed when it did not arrive within
    ``timeout`` seconds (per network operation for syslog, for the whole call for apprise)."""
    kind = channel.kind
    if kind == "syslog":
        _to_syslog(channel, message, hostname=hostname, timeout=timeout)
    elif kind == "jsonl":
        _to_jsonl(channel, message)
    else:
        # Apprise's slack plugin escapes &, < and > of a text body and of the title itself
        # (render.slack_safe documents it): the texts go as they are, for every service.
        from garrison.alerts import _apprise  # noqa: PLC0415 - apprise is slow to import

        _apprise.notify(
            channel.url,
            title=email_header_safe(message.title),
            body=message.body,
            timeout=timeout,
        )


def jsonl_line(message: Message) -> bytes:
    """The alert as one JSON object on one line, newline included."""
    record = {"title": message.title, "summary": message.summary, **message.fields}
    text = json.dumps(record, ensure_ascii=False)
    for char, escape in _LINE_BREAKERS.items():
        text = text.replace(char, escape)
    # A lone surrogate (possible only in a hand-built Message) can only sit inside a JSON
    # string, where backslashreplace writes it as the valid JSON escape \udXXX.
    return (text + "\n").encode("utf-8", "backslashreplace")


def _to_syslog(channel: Channel, message: Message, *, hostname: str, timeout: float) -> None:
    data = frame(
        message,
        hostname=hostname,
        now=time.time(),
        severity=severity_of(message.fields.get("effect", "")),
        procid=str(os.getpid()),
    )
    send_syslog(channel, data, timeout)


def _to_jsonl(channel: Channel, message: Message) -> None:
    try:
        path = jsonl_path(channel.url)
    except InvalidInput as exc:
        raise DeliveryFailed(str(exc)) from exc
    try:
        if path == "-":
            _write_stdout(jsonl_line(message))
        else:
            _append(path, jsonl_line(message))
    except (OSError, ValueError) as exc:  # ValueError: standard output closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DeliveryFailed(f"{redacted(channel.url)}: {reason}") from exc


def _write_stdout(line: bytes) -> None:
    sys.stdout.write(line.decode())
    sys.stdout.flush()


def _append(path: str, line: bytes) -> None:
    # O_APPEND: each write lands at the end even with other writers, so lines never mix;
    # 0600 because an alert names containers, images and command lines.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
