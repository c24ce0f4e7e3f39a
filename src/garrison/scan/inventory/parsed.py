"""What each parser returns: the packages it read and the records it had to skip, with why."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from garrison.scan.types import Ecosystem, Package

# Package.arch is asked of scan/types.py; until it is there the architecture is dropped.
_HAS_ARCH = "arch" in {f.name for f in dataclasses.fields(Package)}


@dataclass(slots=True)
class Parsed:
    packages: list[Package] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: Parsed) -> None:
        self.packages.extend(other.packages)
        self.skipped.extend(other.skipped)


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
    extra: dict[str, Any] = {"arch": arch} if _HAS_ARCH else {}
    return Package(
        ecosystem=ecosystem,
        name=name,
        version=version,
        source_name="" if source_name == name else source_name,
        source_version="" if source_version == version else source_version,
        path=path,
        licenses=licenses,
        **extra,
    )


def arch_of(pkg: Package) -> str:
    return str(getattr(pkg, "arch", ""))
