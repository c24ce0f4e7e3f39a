"""What an alert says, made inert.

Most of an audit's text is chosen by whoever runs in the container: a command line, a process
path, a file name in ``msg``. A newline in it could add a header to an email (``\\r\\nBcc:``),
start a second syslog frame or a second JSON line; ``<!channel>`` would page a whole Slack
channel. ``inert`` makes any such text one harmless line before it reaches a channel.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass, field

from garrison.audit.record import Audit

FIELD_MAX = 1000
TITLE_MAX = 200
ELLIPSIS = "…"

# The order of the body's lines and of the syslog structured data.
FIELD_NAMES = (
    "time",
    "host",
    "container",
    "image",
    "type",
    "attackType",
    "mitreTechnique",
    "effect",
    "rule",
    "msg",
    "processPath",
    "filePath",
    "command",
    "user",
    "count",
    "auditId",  # the store's id: a receiver that sees an alert twice (a crash between the
    # send and its record) can tell
    "bundle",  # a block's forensics bundle: `garrison forensics show BUNDLE` on its host
)

_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

# Unicode categories shown as escapes: Cc (C0, DEL, C1 including U+0085), Cf (format:
# bidi overrides that reorder what a reader sees, zero-width characters, the BOM),
# Cs (lone surrogates, which no UTF-8 encoder accepts), Zl and Zp (U+2028, U+2029).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    fields: dict[str, str] = field(hash=False)  # FIELD_NAMES, each inert ("" when unknown)
    summary: bool = False


def render(audit: Audit, *, folded: int = 0) -> Message:
    """The alert for one audit; ``folded`` more like it make it a summary."""
    fields = {name: inert(value) for name, value in _raw_fields(audit).items()}
    lines = [f"{name}: {value}" for name, value in fields.items() if value]
    if folded > 0:
        lines.append(f"{ELLIPSIS} and {folded} more like it in the last period")
    return Message(
        title=_title(audit, folded),
        body="\n".join(lines),
        fields=fields,
        summary=folded > 0,
    )


def inert(text: str, limit: int = FIELD_MAX) -> str:
    """One line of visible text: control and separator characters escaped, at most ``limit``
    characters (the last an ellipsis when cut)."""
    if text.isprintable() and len(text) <= limit:
        return text  # the common case, kept cheap
    shown = "".join(_visible(char) for char in text)
    if len(shown) <= limit:
        return shown
    return shown[: limit - 1] + ELLIPSIS


def slack_safe(text: str) -> str:
    """The text as Slack must receive it to show it literally: ``&``, ``<``, ``>`` escaped.

    Slack reads ``<!channel>`` as a mention and ``<http://x|label>`` as a link; escaped, they
    show as typed. Apprise's slack plugin applies exactly this to a ``text`` body and to the
    title (tests/alerts pin it on the wire), so ``send`` passes the inert texts unescaped:
    escaping them here as well would show ``&amp;lt;`` in Slack.
    """
    return html.escape(text, quote=False)


def email_header_safe(text: str) -> str:
    """A title fit for an email Subject: no CR or LF (nor any other control) survives."""
    return inert(text, TITLE_MAX)


def _raw_fields(audit: Audit) -> dict[str, str]:
    doc = audit.to_json()
    return {
        "time": str(doc["time"]),
        "host": audit.hostname,
        "container": audit.containerName or audit.containerId[:12],
        "image": audit.imageName,
        "type": audit.type,
        "attackType": audit.attackType,
        "mitreTechnique": str(doc["mitreTechnique"]),
        "effect": audit.effect,
        "rule": audit.ruleName,
        "msg": audit.msg,
        "processPath": audit.processPath,
        "filePath": audit.filePath,
        "command": audit.command,
        "user": audit.user,
        "count": str(audit.count),
        "auditId": "" if audit.id is None else str(audit.id),
        "bundle": audit.bundle,
    }


def _title(audit: Audit, folded: int) -> str:
    suffix = f" (+{folded} more)" if folded > 0 else ""
    where = audit.containerName or audit.containerId[:12] or f"host {audit.hostname}"
    image = f" ({audit.imageName})" if audit.imageName else ""
    core = f"Garrison {audit.effect}: {audit.type}/{audit.attackType} in {where}{image}"
    # Cut the core, not the suffix: a summary must say it is one.
    return inert(core, TITLE_MAX - len(suffix)) + suffix


def _visible(char: str) -> str:
    if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
