"""Version ordering per ecosystem: the ``univers`` classes for Debian, PyPI and npm, and our
own :class:`ApkVersion` for Alpine (univers' Gentoo-based class refuses ``_git``, ``_svn``,
``_cvs`` and ``_hg``, so musl ``1.2.4_git20230717-r4`` could never be matched).

Each is checked against its ecosystem's own tool (``dpkg --compare-versions``, ``packaging``,
npm's ``semver``, apk's rules) in ``tests/scan/test_versions_*.py``. Everything here compares
through :func:`compare`, built on ``<`` and ``>`` only: univers' Gentoo class left ``<=`` and
``>=`` to attrs' comparison of the raw strings ("1.0-r10" >= "1.0-r9" was False).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from univers.versions import (
    DebianVersion,
    InvalidVersion,
    PypiVersion,
    SemverVersion,
    Version,
)

from garrison.errors import InvalidInput
from garrison.scan.vulndb._apk import ApkVersion

# OSV ecosystem (without a ":release" suffix) → version class for ECOSYSTEM ranges.
_ECOSYSTEM_CLASSES: dict[str, type[Version]] = {
    "Debian": DebianVersion,
    "Alpine": ApkVersion,
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
