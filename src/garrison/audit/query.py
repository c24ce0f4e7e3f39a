"""Which audits to list: the filters of ``garrison audits list|export`` and of the store."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.policy.collections import image_names
from garrison.text import clip

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000_000  # 0 lists all; a bound keeps a typo from overflowing SQLite's integer
MAX_OFFSET = 10**12

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Every field set must match; newest first, ``offset`` skipped, then at most ``limit``
    (0: no limit).

    ``container`` matches a container id prefix or a name; ``image`` an image name (with or
    without ``:latest`` and ``docker.io/``) or an image id prefix (with or without
    ``sha256:``). ``search`` is a case-insensitive substring of ``msg`` or ``command``, taken
    literally (no wildcards); ``rule``, ``host`` and ``attack_type`` match ``ruleName``,
    ``hostname`` and ``attackType`` exactly. ``since`` <= time < ``until``.
    """

    container: str = ""
    image: str = ""
    type: str = ""
    effect: str = ""
    since: float | None = None
    limit: int = DEFAULT_LIMIT
    search: str = ""
    rule: str = ""
    host: str = ""
    attack_type: str = ""
    until: float | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.limit <= MAX_LIMIT:
            given = clip(str(self.limit), 30)
            raise InvalidInput(f"limit must be 0 (no limit) to {MAX_LIMIT:,}, not {given}")
        if not 0 <= self.offset <= MAX_OFFSET:
            given = clip(str(self.offset), 30)
            raise InvalidInput(f"offset must be 0 to {MAX_OFFSET:,}, not {given}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidInput("--until must be later than --since")
        for name in ("container", "image", "type", "effect", "rule", "host", "attack_type"):
            _check_utf8(name, getattr(self, name))

    @property
    def search_folded(self) -> str:
        """``search`` as compared: lower case (``folded_contains``)."""
        return self.search.lower()

    def image_name_values(self) -> list[str]:
        return image_names(self.image)

    def image_id_prefixes(self) -> list[str]:
        bare = self.image.removeprefix("sha256:")
        return [bare, f"sha256:{bare}"] if len(bare) >= 4 else []

    def container_name(self) -> str:
        return self.container.removeprefix("/")

    def matches(self, audit: Audit) -> bool:
        return (
            self._container_matches(audit)
            and self._image_matches(audit)
            and (not self.type or audit.type == self.type)
            and (not self.effect or audit.effect == self.effect)
            and (not self.rule or audit.ruleName == self.rule)
            and (not self.host or audit.hostname == self.host)
            and (not self.attack_type or audit.attackType == self.attack_type)
            and (self.since is None or audit.time >= self.since)
            and (self.until is None or audit.time < self.until)
            and self._search_matches(audit)
        )

    def _search_matches(self, audit: Audit) -> bool:
        if not self.search:
            return True
        needle = self.search_folded
        return folded_contains(needle, audit.msg) or folded_contains(needle, audit.command)

    def _container_matches(self, audit: Audit) -> bool:
        if not self.container:
            return True
        name = audit.containerName.removeprefix("/")
        return name == self.container_name() or audit.containerId.startswith(self.container)

    def _image_matches(self, audit: Audit) -> bool:
        if not self.image:
            return True
        if audit.imageName in self.image_name_values():
            return True
        return any(audit.imageId.startswith(p) for p in self.image_id_prefixes())


def folded_contains(needle: str, text: str) -> bool:
    """Whether ``text`` holds ``needle`` (already lower case), case aside. Every store
    compares with this (SQLite through a function of its own), so they agree on Unicode."""
    return needle in text.lower()


def _check_utf8(name: str, value: str) -> None:
    """A lone surrogate (a non-UTF-8 byte of a command line, decoded) cannot be compared in
    SQL; no name Garrison stores holds one."""
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{name} {clip(ascii(value), 60)} is not valid UTF-8 text") from exc


def parse_since(text: str, now: float) -> float:
    """``--since``: a duration back from now (``30s``, ``10m``, ``2h``, ``7d``, ``1w``) or an
    ISO 8601 time (``2024-05-01``, ``2024-05-01T10:00:00Z``; UTC when no zone is given)."""
    return parse_when(text, now, "--since")


def parse_when(text: str, now: float, option: str) -> float:
    """``--since`` or ``--until`` (named ``option`` in the error): as ``parse_since``."""
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"{option} {text!r}: use a duration like 10m, 2h, 7d or a time like 2024-05-01T10:00Z"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
