"""Which audits to list: the filters of ``garrison audits list`` and of the store."""

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

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Every field set must match; newest first, at most ``limit`` (0: no limit).

    ``container`` matches a container id prefix or a name; ``image`` an image name (with or
    without ``:latest`` and ``docker.io/``) or an image id prefix (with or without
    ``sha256:``).
    """

    container: str = ""
    image: str = ""
    type: str = ""
    effect: str = ""
    since: float | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 0 <= self.limit <= MAX_LIMIT:
            given = clip(str(self.limit), 30)
            raise InvalidInput(f"limit must be 0 (no limit) to {MAX_LIMIT:,}, not {given}")

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
            and (self.since is None or audit.time >= self.since)
        )

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


def parse_since(text: str, now: float) -> float:
    """``--since``: a duration back from now (``30s``, ``10m``, ``2h``, ``7d``, ``1w``) or an
    ISO 8601 time (``2024-05-01``, ``2024-05-01T10:00:00Z``; UTC when no zone is given)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"--since {text!r}: use a duration like 10m, 2h, 7d or a time like 2024-05-01T10:00Z"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
