"""apk's database, ``lib/apk/db/installed``: one stanza per package, one ``X:value`` line per
field (apk-tools ``src/database.c``; the letters are documented in ``apk-v2`` "installed
database"). Read: P name, V version, A architecture, L license, o origin (source package)."""

from __future__ import annotations

import re

from garrison.scan.inventory.limits import MAX_DATABASE, MAX_FIELD, MAX_RECORDS, too_large
from garrison.scan.inventory.parsed import Parsed, package
from garrison.scan.inventory.spans import Span, first, spans
from garrison.scan.types import Package

_BAD_LINE = re.compile(rb"^(?![A-Za-z]:)", re.MULTILINE)
_WANTED = {letter: re.compile(rb"^" + letter.encode() + rb":", re.MULTILINE) for letter in "PVALo"}
_LINE_END = re.compile(rb"\n")


def parse_installed(data: bytes, path: str) -> Parsed:
    """The packages of apk's database; a database larger than ``MAX_DATABASE`` is skipped,
    one of more than ``MAX_RECORDS`` stanzas read that far."""
    if note := too_large(path, len(data), MAX_DATABASE):
        return Parsed(skipped=[note])
    parsed = Parsed()
    for index, span in enumerate(spans(data)):
        where = f"{path}: stanza at line {span.line}"
        if index == MAX_RECORDS:
            parsed.skip(f"{where} and the rest skipped, past {MAX_RECORDS} records")
            break
        fields, error = _fields(data, span)
        pkg = None if error else _package(fields, path)
        if pkg is not None:
            parsed.add(pkg, where)
        else:
            parsed.skip(f"{where} skipped, {error or 'no P (name) or V (version)'}")
    return parsed.counted(path)


def _fields(data: bytes, span: Span) -> tuple[dict[str, str], str]:
    """The wanted fields of a stanza (the first of each letter), or why it is garbled."""
    bad = first(_BAD_LINE, data, span)
    if bad < span.end:
        return {}, f"line {span.line_at(data, bad)} is not 'X:value'"
    fields: dict[str, str] = {}
    for letter, pattern in _WANTED.items():
        begin = first(pattern, data, span) + 2
        if begin > span.end:
            continue
        end = first(_LINE_END, data, span, begin)
        if end - begin > MAX_FIELD:
            return {}, f"{letter} longer than {MAX_FIELD} bytes"
        fields[letter] = data[begin:end].strip().decode("utf-8", errors="replace")
    return fields, ""


def _package(fields: dict[str, str], path: str) -> Package | None:
    name, version = fields.get("P", ""), fields.get("V", "")
    if not name or not version:
        return None
    return package(
        "Alpine",
        name,
        version,
        source_name=fields.get("o", ""),
        path=path,
        licenses=(fields["L"],) if fields.get("L") else (),
        arch=fields.get("A", ""),
    )
