"""dpkg's database: ``var/lib/dpkg/status`` and the one-stanza files of
``var/lib/dpkg/status.d/`` (distroless images, which have no dpkg).

The packages listed are those ``dpkg-query -W`` lists: every state except ``not-installed``
(dpkg ``src/query/main.c``, ``showpackages``), so ``config-files`` and ``half-installed``
packages are in, as they are on the machine itself.
"""

from __future__ import annotations

import re

from garrison.scan.inventory.deb822 import Stanza, stanzas
from garrison.scan.inventory.limits import MAX_DATABASE, MAX_RECORDS, too_large
from garrison.scan.inventory.parsed import Parsed, clipped, package
from garrison.scan.types import Package

_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_STATES = frozenset(
    {
        "installed",
        "config-files",
        "half-installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
    }
)
_KEEP = frozenset({"package", "status", "version", "source", "architecture"})


def parse_status(data: bytes, path: str, *, status_d: bool = False) -> Parsed:
    """Packages of one dpkg status file. In ``status.d`` a stanza without ``Status`` is an
    installed package (distroless writes none). A file larger than ``MAX_DATABASE`` is
    skipped; one of more than ``MAX_RECORDS`` stanzas is read that far."""
    if note := too_large(path, len(data), MAX_DATABASE):
        return Parsed(skipped=[note])
    parsed = Parsed()
    for index, stanza in enumerate(stanzas(data, _KEEP)):
        where = f"{path}: stanza at line {stanza.line}"
        if index == MAX_RECORDS:
            parsed.skip(f"{where} and the rest skipped, past {MAX_RECORDS} records")
            break
        pkg, why = _package(stanza, path, status_d)
        if pkg is not None:
            parsed.add(pkg, where)
        elif why:
            parsed.skip(f"{where} skipped, {why}")
    return parsed.counted(path)


def _package(stanza: Stanza, path: str, status_d: bool) -> tuple[Package | None, str]:
    """The package of a stanza, or None with why ("" when dpkg itself would not list it)."""
    fields = stanza.fields
    if stanza.error:
        return None, stanza.error
    if not fields.get("package"):
        return None, "no Package field"
    status = fields.get("status")
    state = _state(status, status_d)
    if state not in _STATES:
        return None, "" if state == "not-installed" else f"bad Status '{clipped(status or '')}'"
    if not fields.get("version"):
        return None, f"{clipped(fields['package'])} has no Version"
    return _with_source(fields, path)


def _state(status: str | None, status_d: bool) -> str:
    if status is None:
        return "installed" if status_d else "not-installed"
    words = status.split()
    return words[2] if len(words) == 3 else ""


def _with_source(fields: dict[str, str], path: str) -> tuple[Package | None, str]:
    name, version = fields["package"], fields["version"]
    if len(name.split()) != 1:
        return None, f"bad Package '{clipped(name)}'"
    match = _SOURCE.match(fields.get("source") or name)
    if match is None:
        return None, f"{clipped(name)} has a bad Source '{clipped(fields['source'])}'"
    pkg = package(
        "Debian",
        name,
        version,
        source_name=match.group(1),
        source_version=match.group(2) or version,
        path=path,
        arch=fields.get("architecture", ""),
    )
    return pkg, ""
