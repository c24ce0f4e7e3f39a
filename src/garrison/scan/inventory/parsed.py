"""What each parser returns: the packages it read and the records it had to skip, with why.

A package is listed only when its identity (name, version, source) is text: at most
``MAX_FIELD`` characters, none of them a control, format or lone surrogate character (a NUL
in a name is a garbled record, and a lone surrogate cannot even be written out as UTF-8).
A license or architecture that is not text is dropped, the package kept.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from garrison.scan.inventory.limits import MAX_FIELD, MAX_NOTES
from garrison.scan.types import Ecosystem, Package

# Unicode general categories (UAX #44) of what is not text: controls, format characters (bidi
# overrides, zero-width), surrogates, line and paragraph separators.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_CLIP = 80

# Package.arch is asked of scan/types.py; until it is there the architecture is dropped.
_HAS_ARCH = "arch" in {f.name for f in dataclasses.fields(Package)}


@dataclass(slots=True)
class Parsed:
    packages: list[Package] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unnamed: int = 0  # records skipped past MAX_NOTES: counted, not named

    def extend(self, other: Parsed) -> None:
        self.packages.extend(other.packages)
        self.skipped.extend(other.skipped)

    def add(self, pkg: Package, where: str) -> None:
        """List ``pkg``, or skip it (``where`` names the record) when it is not text."""
        why = _not_text(pkg)
        if why:
            self.skip(f"{where} skipped, {why}")
        else:
            self.packages.append(pkg)

    def skip(self, note: str) -> None:
        if len(self.skipped) < MAX_NOTES:
            self.skipped.append(note)
        else:
            self.unnamed += 1

    def counted(self, path: str) -> Parsed:
        """This file's result, the records skipped past ``MAX_NOTES`` in one line."""
        if self.unnamed:
            self.skipped.append(f"{path}: {self.unnamed} more records skipped")
            self.unnamed = 0
        return self


def package(
    ecosystem: Ecosystem,
    name: str,
    version: str,
    *,
    source_name: str = "",
    source_version: str = "",
    path: str = "",
    licenses: tuple[str, ...] = (),
    arch: str = "",
) -> Package:
    """A Package (source fields left empty when they repeat the binary's), carrying its
    architecture where the contract has the field."""
    extra: dict[str, Any] = {"arch": arch if _is_text(arch) else ""} if _HAS_ARCH else {}
    return Package(
        ecosystem=ecosystem,
        name=name,
        version=version,
        source_name="" if source_name == name else source_name,
        source_version="" if source_version == version else source_version,
        path=path,
        licenses=tuple(text for text in licenses if _is_text(text)),
        **extra,
    )


def arch_of(pkg: Package) -> str:
    return str(getattr(pkg, "arch", ""))


def clipped(value: str) -> str:
    """A value from the file quoted in a skipped note: what is not text escaped, clipped."""
    if not value.isprintable():
        value = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in value[: 4 * _CLIP])
    return value if len(value) <= _CLIP else value[: _CLIP - 1] + "…"


def _is_text(value: str) -> bool:
    return len(value) <= MAX_FIELD and _first_not_text(value) is None


def _first_not_text(value: str) -> str | None:
    if value.isprintable():  # printable excludes every category of _NOT_TEXT: the usual case
        return None
    return next((c for c in value if unicodedata.category(c) in _NOT_TEXT), None)


def _not_text(pkg: Package) -> str:
    """Why the package's identity is not text, or ""."""
    for label, value in (
        ("name", pkg.name),
        ("version", pkg.version),
        ("source", pkg.source_name),
        ("source version", pkg.source_version),
    ):
        if len(value) > MAX_FIELD:
            return f"its {label} is longer than {MAX_FIELD} characters"
        char = _first_not_text(value)
        if char is not None:
            return f"its {label} holds U+{ord(char):04X}"
    return ""
