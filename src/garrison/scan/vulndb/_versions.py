"""Version ordering per ecosystem, with the ``univers`` version classes.

``univers``' Gentoo/Alpine class defines ``<``, ``>`` and ``==`` with ``vercmp`` but leaves
``<=``/``>=`` to attrs, which compares the raw strings ("1.0-r10" >= "1.0-r9" is False), so
everything here compares through :func:`compare`, built on ``<`` and ``>`` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    InvalidVersion,
    PypiVersion,
    SemverVersion,
    Version,
)

from garrison.errors import InvalidInput

# OSV ecosystem (without a ":release" suffix) → univers class for ECOSYSTEM ranges.
_ECOSYSTEM_CLASSES: dict[str, type[Version]] = {
    "Debian": DebianVersion,
    "Alpine": AlpineLinuxVersion,
    "PyPI": PypiVersion,
    "npm": SemverVersion,
}
SUPPORTED_ECOSYSTEMS = tuple(_ECOSYSTEM_CLASSES)

_PEP503 = re.compile(r"[-_.]+")


class VersionError(InvalidInput, ValueError):
    """A version string its ecosystem cannot parse."""


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """``"Debian:12"`` → ``("Debian", "12")``; ``"Alpine:v3.19"`` → ``("Alpine", "v3.19")``."""
    base, _, release = ecosystem.partition(":")
    return base, release


def normalize_name(ecosystem: str, name: str) -> str:
    """The key a package is stored and looked up by (PyPI names per PEP 503)."""
    if ecosystem == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name


def version_class(ecosystem: str, range_type: str = "ECOSYSTEM") -> type[Version] | None:
    """The class ordering versions of a range; ``None`` for ecosystems we do not match."""
    if range_type == "SEMVER":
        return SemverVersion
    return _ECOSYSTEM_CLASSES.get(ecosystem)


_BY_NAME: dict[str, type[Version]] = {c.__name__: c for c in _ECOSYSTEM_CLASSES.values()}


def parse(cls: type[Version], text: str) -> Version:
    """A parsed version; :class:`VersionError` when ``text`` is not one."""
    return _parse(cls.__name__, text)


@lru_cache(maxsize=65536)
def _parse(class_name: str, text: str) -> Version:
    cls = _BY_NAME[class_name]
    if cls is SemverVersion:
        # SemVer 2.0 §10: build metadata does not take part in precedence.
        text = text.partition("+")[0]
    try:
        return cls(text)
    except (InvalidVersion, ValueError, TypeError) as exc:
        raise VersionError(f"{text!r} is not a valid {cls.__name__}") from exc


def compare(a: Version, b: Version) -> int:
    """-1, 0 or 1, using only ``<`` and ``>`` (see the module docstring)."""
    if a < b:
        return -1
    return 1 if a > b else 0


def comparator(cls: type[Version]) -> Callable[[str, str], int]:
    """A string comparison for ``cls`` (for sorting with ``functools.cmp_to_key``)."""

    def cmp(a: str, b: str) -> int:
        return compare(parse(cls, a), parse(cls, b))

    return cmp
