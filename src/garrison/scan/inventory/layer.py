"""One layer tar read as a change set: the wanted files it adds, its symlinks, whiteouts
and opaque directories. The layer is streamed; only wanted files are kept in memory.

The whiteout format is the OCI image spec's "Representing Changes"
(https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts), which Docker's
``docker save`` layers follow: ``DIR/.wh.NAME`` deletes ``DIR/NAME`` from the layers below,
``DIR/.wh..wh..opq`` hides everything the layers below had in ``DIR``.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from garrison.scan.inventory.wanted import is_wanted, normalize

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# A wanted file larger than this is not a package database but something named like one.
MAX_FILE = 64 * 1024 * 1024


@dataclass(slots=True)
class LayerDelta:
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # symlink path -> target as written
    dirs: set[str] = field(default_factory=set)
    plain: set[str] = field(default_factory=set)  # other non-directories: they shadow lower paths
    whiteouts: set[str] = field(default_factory=set)  # paths deleted from lower layers
    opaque: set[str] = field(default_factory=set)  # directories emptied of lower content
    skipped: list[str] = field(default_factory=list)


def read_layer(fileobj: IO[bytes]) -> LayerDelta:
    """Read one layer tar (plain or compressed) as a stream.

    Raises ``tarfile.TarError``, ``EOFError``, ``OSError`` or ``zlib.error`` when the tar is
    corrupt; the caller decides what a corrupt layer means.
    """
    delta = LayerDelta()
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for member in headers(tar):
            _take(tar, member, delta)
    return delta


def headers(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a streamed tar, without the list of every header tarfile keeps (a
    layer can hold a hundred thousand files)."""
    member = tar.next()
    while member is not None:
        yield member
        tar.members.clear()  # type: ignore[attr-defined]  # private list, not in typeshed
        member = tar.next()


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, delta: LayerDelta) -> None:
    path = normalize(member.name)
    if not path:
        return
    parent, base = posixpath.split(path)
    if base == OPAQUE:
        delta.opaque.add(parent)
    elif base.startswith(WHITEOUT + WHITEOUT):
        return  # other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content
    elif base.startswith(WHITEOUT):
        delta.whiteouts.add(posixpath.join(parent, base[len(WHITEOUT) :]))
    elif member.issym():
        delta.links[path] = member.linkname
    elif member.isdir():
        delta.dirs.add(path)
    elif member.islnk() and is_wanted(path):
        _take_hardlink(path, member, delta)
    elif member.isreg() and is_wanted(path):
        _take_file(tar, path, member, delta)
    else:
        delta.plain.add(path)


def _take_file(tar: tarfile.TarFile, path: str, member: tarfile.TarInfo, delta: LayerDelta) -> None:
    if member.size > MAX_FILE:
        delta.plain.add(path)
        delta.skipped.append(f"{path}: {member.size} bytes, larger than {MAX_FILE}")
        return
    reader = tar.extractfile(member)
    if reader is not None:
        delta.files[path] = reader.read()


def _take_hardlink(path: str, member: tarfile.TarInfo, delta: LayerDelta) -> None:
    # A hard link's data lives with an earlier member of the same layer; only a target that
    # was itself wanted is at hand (a streamed tar cannot seek back to the others).
    target = normalize(member.linkname)
    if target in delta.files:
        delta.files[path] = delta.files[target]
    else:
        delta.plain.add(path)
        delta.skipped.append(f"{path}: hard link to {target}, which was not read")
