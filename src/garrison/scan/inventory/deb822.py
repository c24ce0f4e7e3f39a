"""Stanzas of the control-file format dpkg keeps its database in (deb822, Debian Policy 5.1).

Own small parser rather than python-debian: the inventory needs a verdict per stanza (a
garbled one is skipped and counted, the rest of the file still read), not a lenient reader.
Only the fields asked for are kept (a status file is mostly descriptions and conffiles), each
at most ``MAX_FIELD`` bytes; a stanza is checked and read with regular expressions (see
``spans``), so it costs the same however many lines the rest of it has.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from garrison.scan.inventory.limits import MAX_FIELD
from garrison.scan.inventory.spans import Span, first, spans

# A line that is neither a continuation nor "Name:" (a name does not start with # or -).
_BAD_LINE = re.compile(rb"^(?![ \t]|[^\s:#-][^\s:]*+:)", re.MULTILINE)
_FIELD_END = re.compile(rb"\n(?![ \t])")  # the first line that does not continue a field


@dataclass(frozen=True, slots=True)
class Stanza:
    line: int  # 1-based line where the stanza starts
    fields: dict[str, str]  # kept fields, names lowercased (deb822 names ignore case)
    error: str = ""  # why the stanza is garbled, or ""


def stanzas(data: bytes, keep: frozenset[str]) -> Iterator[Stanza]:
    """Every stanza, garbled ones included (with ``error`` set), with the fields named in
    ``keep`` (lowercase); a kept field's continuation lines are joined with ``\\n``. A kept
    field given twice or longer than ``MAX_FIELD`` garbles its stanza."""
    kept = _kept_pattern(keep)
    for span in spans(data):
        yield _stanza(data, span, kept)


@functools.cache
def _kept_pattern(keep: frozenset[str]) -> re.Pattern[bytes]:
    names = b"|".join(re.escape(name.encode()) for name in sorted(keep))
    return re.compile(rb"^(" + names + rb"):", re.MULTILINE | re.IGNORECASE)


def _stanza(data: bytes, span: Span, kept: re.Pattern[bytes]) -> Stanza:
    if data[span.begin] in b" \t":
        return Stanza(span.line, {}, "continuation line before any field")
    problem = first(_BAD_LINE, data, span), ""  # "": the line is not a field
    found: dict[str, int] = {}
    for match in kept.finditer(data, span.begin, problem[0]):
        name = match.group(1).decode().lower()
        if name in found:
            problem = match.start(), f"field {name} given twice"
            break
        found[name] = match.start()
    if problem[0] < span.end:
        return Stanza(span.line, {}, _why(data, span, problem))
    return _kept(data, span, found)


def _why(data: bytes, span: Span, problem: tuple[int, str]) -> str:
    at, why = problem
    return why or f"line {span.line_at(data, at)} is not 'Field: value'"


def _kept(data: bytes, span: Span, found: dict[str, int]) -> Stanza:
    fields: dict[str, str] = {}
    for name, at in found.items():
        begin = at + len(name) + 1
        end = first(_FIELD_END, data, span, begin)
        if end - begin > MAX_FIELD:
            return Stanza(span.line, {}, f"field {name} longer than {MAX_FIELD} bytes")
        lines = (line.strip() for line in data[begin:end].split(b"\n"))
        fields[name] = b"\n".join(lines).decode("utf-8", errors="replace")
    return Stanza(span.line, fields)
