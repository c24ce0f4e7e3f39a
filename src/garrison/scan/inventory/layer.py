"""One layer tar read as a change set: the wanted files it adds, its symlinks, whiteouts
and opaque directories. The layer is streamed; only wanted files are kept in memory.

The whiteout format is the OCI image spec's "Representing Changes"
(https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts), which Docker's
``docker save`` layers follow: ``DIR/.wh.NAME`` deletes ``DIR/NAME`` from the layers below,
``DIR/.wh..wh..opq`` hides everything the layers below had in ``DIR``.

What a layer may cost is bounded (``limits``): a wanted file is kept up to the limit of its
kind and while the image's ``MAX_KEPT`` lasts, a name or link target longer than
``MAX_PATH`` is not one a file system holds, and at most ``MAX_NOTES`` skipped files are named.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import IO

from garrison.scan.inventory.limits import (
    KEPT_ENTRY,
    MAX_KEPT,
    MAX_NOTES,
    MAX_PATH,
    in_units,
    too_large,
)
from garrison.scan.inventory.owners import listed_metadata
from garrison.scan.inventory.parsed import clipped
from garrison.scan.inventory.tarstream import headers, open_stream
from garrison.scan.inventory.wanted import is_file_list, is_wanted, limit_of, normalize

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(slots=True)
class LayerDelta:
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # symlink path -> target as written
    dirs: set[str] = field(default_factory=set)
    plain: set[str] = field(default_factory=set)  # other non-directories: they shadow lower paths
    whiteouts: set[str] = field(default_factory=set)  # paths deleted from lower layers
    opaque: set[str] = field(default_factory=set)  # directories emptied of lower content
    skipped: list[str] = field(default_factory=list)
    kept: int = 0  # what the files kept cost, counted against the image's MAX_KEPT
    unnamed: int = 0  # files skipped past MAX_NOTES
    long_names: int = 0  # members left out for a name longer than MAX_PATH

    def skip(self, note: str) -> None:
        if len(self.skipped) < MAX_NOTES:
            self.skipped.append(note)
        else:
            self.unnamed += 1

    def counted(self) -> LayerDelta:
        """The delta, with what was counted rather than named said in ``skipped``."""
        if self.long_names:
            self.skipped.append(
                f"names longer than {MAX_PATH} characters left out: {self.long_names}"
            )
        if self.unnamed:
            self.skipped.append(f"{self.unnamed} more files skipped")
        self.long_names = self.unnamed = 0
        return self


def read_layer(fileobj: IO[bytes], room: int = MAX_KEPT) -> LayerDelta:
    """Read one layer tar (plain or compressed) as a stream, keeping at most ``room`` bytes
    of wanted files (``kept`` says how many it did).

    Raises ``tarfile.TarError``, ``EOFError``, ``OSError`` or ``zlib.error`` when the tar is
    corrupt; the caller decides what a corrupt layer means.
    """
    delta = LayerDelta()
    with open_stream(fileobj, "r|*") as tar:
        for member in headers(tar):
            _take(tar, member, delta, room)
    return delta.counted()


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, delta: LayerDelta, room: int) -> None:
    path = normalize(member.name)
    if len(path) > MAX_PATH:
        delta.long_names += 1
        return
    if not path:
        return
    parent, base = posixpath.split(path)
    if base == OPAQUE:
        delta.opaque.add(parent)
    elif base.startswith(WHITEOUT + WHITEOUT):
        return  # other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content
    elif base.startswith(WHITEOUT):
        delta.whiteouts.add(posixpath.join(parent, base[len(WHITEOUT) :]))
    elif member.issym() and len(member.linkname) <= MAX_PATH:
        delta.links[path] = member.linkname
    elif member.isdir():
        delta.dirs.add(path)
    elif member.islnk() and is_wanted(path):
        _take_hardlink(path, member, delta)
    elif member.isreg() and is_wanted(path):
        _take_file(tar, member, path, delta, room)
    else:
        delta.plain.add(path)  # a link to a target too long to be one shadows like a file


def _take_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, delta: LayerDelta, room: int
) -> None:
    cost = member.size + len(path) + KEPT_ENTRY
    why = too_large(path, member.size, limit_of(path))
    if why is None and delta.kept + cost > room:
        why = f"{path}: skipped, the image's wanted files pass {in_units(MAX_KEPT)}"
    if why:
        delta.plain.add(path)  # still there, hiding what a lower layer had at its path
        delta.skip(why)
        return
    reader = tar.extractfile(member)
    if reader is None:
        return
    data = reader.read()
    if is_file_list(path):  # a few lines of it are read (owners): only those are kept
        data = listed_metadata(data)
        cost = len(data) + len(path) + KEPT_ENTRY
    delta.files[path] = data
    delta.kept += cost


def _take_hardlink(path: str, member: tarfile.TarInfo, delta: LayerDelta) -> None:
    # A hard link's data lives with an earlier member of the same layer; only a target that
    # was itself wanted is at hand (a streamed tar cannot seek back to the others).
    target = normalize(member.linkname)
    if target in delta.files:
        delta.files[path] = delta.files[target]
        delta.kept += len(path) + KEPT_ENTRY
    else:
        delta.plain.add(path)
        delta.skip(f"{path}: hard link to {clipped(target)}, which was not read")
