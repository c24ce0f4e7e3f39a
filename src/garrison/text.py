"""Text that came from outside (a rule file, a container, an archive) on its way to a terminal.

Some characters do something other than show themselves: control characters (C0, DEL, C1:
``ESC`` starts a terminal escape sequence, ``CR`` rewrites the line), format characters (the
bidi overrides U+202A to U+202E and isolates U+2066 to U+2069 reorder what follows, zero-width
characters hide), line and paragraph separators, and lone surrogates (which no terminal can
encode). Names refuse them on input (``first_unsafe``); text printed from elsewhere has them
escaped (``escape_unsafe``). Source: Unicode general categories, UAX #44; Trojan Source
(CVE-2021-42574) for the bidi characters.
"""

from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def is_unsafe(char: str) -> bool:
    return unicodedata.category(char) in UNSAFE_CATEGORIES


def first_unsafe(text: str) -> str | None:
    """The first character of ``text`` that must not be shown as it is, if any."""
    if text.isprintable():  # printable excludes every unsafe category: the common case
        return None
    return next((c for c in text if is_unsafe(c)), None)


def code_point(char: str) -> str:
    """``U+202E`` and the character's name, when it has one."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def escape_unsafe(text: str, keep: str = "") -> str:
    """``text`` with each unsafe character (except those in ``keep``) written as an escape:
    ``\\n``, ``\\x1b``, ``\\u202e``."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if c not in keep and is_unsafe(c) else c for c in text)


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clip(text: str, limit: int = 200) -> str:
    """At most ``limit`` characters, with ``…`` where it was cut: for echoing input in errors."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
