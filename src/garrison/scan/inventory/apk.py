"""apk's database, ``lib/apk/db/installed``: one stanza per package, one ``X:value`` line per
field (apk-tools ``src/database.c``; the letters are documented in ``apk-v2`` "installed
database"). Read: P name, V version, A architecture, L license, o origin (source package)."""

from __future__ import annotations

from collections.abc import Iterator

from garrison.scan.inventory.parsed import Parsed, package
from garrison.scan.types import Package

_WANTED = frozenset("PVALo")


def parse_installed(data: bytes, path: str) -> Parsed:
    parsed = Parsed()
    for line, fields, error in _stanzas(data.decode("utf-8", errors="replace")):
        pkg = None if error else _package(fields, path)
        if pkg is not None:
            parsed.packages.append(pkg)
        else:
            why = error or "no P (name) or V (version)"
            parsed.skipped.append(f"{path}: stanza at line {line} skipped, {why}")
    return parsed


def _stanzas(text: str) -> Iterator[tuple[int, dict[str, str], str]]:
    start, fields, error = 0, dict[str, str](), ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if start:
                yield start, fields, error
            start, fields, error = 0, {}, ""
            continue
        start = start or number
        if len(line) < 2 or line[1] != ":" or not line[0].isalpha():
            error = error or f"line {number} is not 'X:value'"
        elif line[0] in _WANTED and line[0] not in fields:
            fields[line[0]] = line[2:].strip()
    if start:
        yield start, fields, error


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
