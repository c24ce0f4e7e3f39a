"""OSV range evaluation: https://ossf.github.io/osv-schema/#evaluation

Ranges are compiled once, at import: GIT ranges dropped, event versions checked against the
ecosystem's version class and sorted (``introduced: "0"`` lowest). A range holding a version
its ecosystem cannot parse is dropped and counted, as the rest of the record stays usable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cmp_to_key

from univers.versions import Version

from garrison.scan.vulndb._schema import OsvAffected, OsvRange
from garrison.scan.vulndb._versions import VersionError, compare, parse, version_class

# At equal versions an ``introduced`` sorts before the events that close a range.
_RANK = {"introduced": 0, "fixed": 1, "last_affected": 1, "limit": 2}

Event = tuple[str, str]  # (kind, version)


@dataclass(frozen=True, slots=True)
class CompiledRange:
    type: str  # "ECOSYSTEM" or "SEMVER"
    events: tuple[Event, ...]  # sorted


@dataclass(frozen=True, slots=True)
class CompiledAffected:
    ranges: tuple[CompiledRange, ...]
    versions: tuple[str, ...]
    bad_ranges: tuple[str, ...] = ()  # why each dropped range was dropped


def _is_zero(event: Event) -> bool:
    return event == ("introduced", "0")


def _sort_events(cls: type[Version], events: Sequence[Event]) -> tuple[Event, ...]:
    def cmp(a: Event, b: Event) -> int:
        if _is_zero(a) or _is_zero(b):
            return int(_is_zero(b)) - int(_is_zero(a))
        by_version = compare(parse(cls, a[1]), parse(cls, b[1]))
        return by_version or _RANK[a[0]] - _RANK[b[0]]

    return tuple(sorted(events, key=cmp_to_key(cmp)))


def compile_range(ecosystem: str, rng: OsvRange) -> CompiledRange:
    """A sorted range; :class:`VersionError` when a version does not parse."""
    cls = version_class(ecosystem, rng.type)
    if cls is None:
        raise VersionError(f"no version ordering for ecosystem {ecosystem!r}")
    # ``limit: "*"`` means no limit (the schema's own example for GIT ranges).
    events = [(e.kind, e.version) for e in rng.events if (e.kind, e.version) != ("limit", "*")]
    for event in events:
        if not _is_zero(event):
            parse(cls, event[1])
    return CompiledRange(rng.type, _sort_events(cls, events))


def compile_affected(ecosystem: str, affected: OsvAffected) -> CompiledAffected:
    ranges: list[CompiledRange] = []
    bad: list[str] = []
    for rng in affected.ranges:
        if rng.type == "GIT":
            continue  # commits, not package versions
        try:
            ranges.append(compile_range(ecosystem, rng))
        except VersionError as exc:
            bad.append(str(exc))
    return CompiledAffected(tuple(ranges), tuple(affected.versions), tuple(bad))


def encode(compiled: CompiledAffected) -> str:
    """The stored form: ``{"r": [[type, [[kind, version], ...]], ...], "v": [versions]}``."""
    ranges = [[r.type, [list(e) for e in r.events]] for r in compiled.ranges]
    return json.dumps({"r": ranges, "v": list(compiled.versions)}, separators=(",", ":"))


def evaluate_range(installed: Version, rng: CompiledRange) -> tuple[bool, str]:
    """Whether ``installed`` is in the range, and the fixed version that closes it ("")."""
    cls = type(installed)
    if not _below_limits(installed, rng.events):
        return False, ""
    vulnerable = False
    for index, (kind, text) in enumerate(rng.events):
        if kind == "limit":
            continue
        if _is_zero((kind, text)):
            vulnerable = True
            continue
        order = compare(installed, parse(cls, text))
        if order < 0:  # sorted: every later event is above the installed version
            return vulnerable, _closing_fix(rng.events[index:]) if vulnerable else ""
        if kind == "introduced":
            vulnerable = True
        elif kind == "fixed" or (kind == "last_affected" and order > 0):
            vulnerable = False
    return vulnerable, ""


def _below_limits(installed: Version, events: Sequence[Event]) -> bool:
    """The spec's ``BeforeLimits``: below any limit, or no limit at all."""
    limits = [parse(type(installed), text) for kind, text in events if kind == "limit"]
    return not limits or any(compare(installed, limit) < 0 for limit in limits)


def _closing_fix(events: Sequence[Event]) -> str:
    """The version of the event that ends the open range: a fix, or "" for last_affected."""
    for kind, text in events:
        if kind in ("fixed", "last_affected"):
            return text if kind == "fixed" else ""
    return ""
