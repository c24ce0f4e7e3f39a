"""Stanzas of the control-file format dpkg keeps its database in (deb822, Debian Policy 5.1).

Own small parser rather than python-debian: the inventory needs a verdict per stanza (a
garbled one is skipped and counted, the rest of the file still read), not a lenient reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_FIELD = re.compile(r"^([^\s:#-][^\s:]*):[ \t]*(.*)$")


@dataclass(frozen=True, slots=True)
class Stanza:
    line: int  # 1-based line where the stanza starts
    fields: dict[str, str]  # names lowercased (deb822 names ignore case); continuations "\n"
    error: str = ""  # why the stanza is garbled, or ""


def stanzas(text: str) -> Iterator[Stanza]:
    """Every stanza, garbled ones included (with ``error`` set)."""
    start, lines = 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            start = start or number
            lines.append(line)
        elif lines:
            yield _stanza(start, lines)
            start, lines = 0, []
    if lines:
        yield _stanza(start, lines)


def _stanza(start: int, lines: list[str]) -> Stanza:
    fields: dict[str, str] = {}
    name = ""
    for offset, line in enumerate(lines):
        if line[0] in " \t":
            if not name:
                return Stanza(start, fields, "continuation line before any field")
            fields[name] += "\n" + line.strip()
            continue
        match = _FIELD.match(line)
        if match is None:
            return Stanza(start, fields, f"line {start + offset} is not 'Field: value'")
        name = match.group(1).lower()
        if name in fields:
            return Stanza(start, fields, f"field {name} given twice")
        fields[name] = match.group(2).strip()
    return Stanza(start, fields)
