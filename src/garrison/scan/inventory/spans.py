"""The stanzas of a package database (dpkg's status file, apk's installed database), read in
place: a stanza is a run of lines that are not blank, and the parsers look into it with
regular expressions, copying (and decoding) only the values they keep. A file costs its own
bytes and little more however it is laid out (millions of short lines, one line of
megabytes), and its lines are never walked one by one in Python.

Only ``\\n`` ends a line, as for dpkg and apk; a line of spaces, tabs and CRs is blank.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Possessive quantifiers (``*+``) throughout: a plain ``*`` keeps a backtracking record per
# repetition, hundreds of bytes for each line it passes.
_BLANKS = re.compile(rb"(?:[ \t\r\f\v]*+\n)*+")  # blank lines
_TAIL = re.compile(rb"[ \t\r\f\v]*+\Z")  # a last line, blank and without its newline
_END = re.compile(rb"\n[ \t\r\f\v]*+(?:\n|\Z)")  # the newline before a blank line, or the last


@dataclass(frozen=True, slots=True)
class Span:
    line: int  # the number of its first line, from 1
    begin: int  # offset of its first byte
    end: int  # offset just past its last line (its newline excluded)

    def line_at(self, data: bytes, offset: int) -> int:
        """The number of the line holding ``offset``, an offset inside the stanza."""
        return self.line + data.count(b"\n", self.begin, offset)


def spans(data: bytes) -> Iterator[Span]:
    """Where each stanza of ``data`` is, in order."""
    line, at = 1, 0
    while True:
        begin = _BLANKS.match(data, at).end()  # type: ignore[union-attr]  # always matches
        if _TAIL.match(data, begin):
            return
        line += data.count(b"\n", at, begin)
        found = _END.search(data, begin)
        end = found.start() if found else len(data)
        yield Span(line, begin, end)
        line += data.count(b"\n", begin, end)
        at = end


def first(pattern: re.Pattern[bytes], data: bytes, span: Span, begin: int = -1) -> int:
    """Where ``pattern`` first matches inside the stanza (from ``begin``), or ``span.end``."""
    found = pattern.search(data, span.begin if begin < 0 else begin, span.end)
    return found.start() if found else span.end
