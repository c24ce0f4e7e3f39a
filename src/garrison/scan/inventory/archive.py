"""The archive ``docker save`` streams: ``manifest.json`` naming the layer tars bottom to top,
and the layers themselves, as ``ID/layer.tar`` (Docker ≤ 24) or ``blobs/sha256/HEX`` (the OCI
layout of Docker ≥ 25).

Docker writes ``manifest.json`` after the layers, so each layer is read as it streams past and
the stack is built once the manifest says in which order. A layer tar that cannot be read is
left out and named in ``Rootfs.skipped``; the rest of the image is still read. The wanted
files of all layers together are kept up to ``MAX_KEPT``.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import IO

from garrison.errors import ScanError
from garrison.scan.inventory.layer import LayerDelta, read_layer
from garrison.scan.inventory.limits import MAX_IMAGE_MANIFEST, MAX_KEPT, MAX_LAYERS, too_large
from garrison.scan.inventory.parsed import Parsed
from garrison.scan.inventory.rootfs import Rootfs, Stack
from garrison.scan.inventory.tarstream import headers, open_stream
from garrison.scan.inventory.wanted import normalize

MANIFEST = "manifest.json"
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error)


@dataclass(slots=True)
class _Seen:
    layers: dict[str, LayerDelta] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # member name -> why it is unreadable
    aliases: dict[str, str] = field(default_factory=dict)  # symlinked layer -> real member
    manifest: list[str] | None = None  # the layers, bottom to top
    unreadable: str = "no readable manifest.json"  # why there is no manifest, until there is
    trailer: str = ""  # why the archive itself stopped early, if it did


def read_layers(stream: IO[bytes]) -> Rootfs:
    """Read a ``docker save`` archive as a stream and stack its layers.

    Raises ScanError when the archive is not one (no readable ``manifest.json``).
    """
    seen = _Seen()
    try:
        with open_stream(stream, "r|") as outer:
            for member in headers(outer):
                _visit(outer, member, seen)
    except _CORRUPT as exc:
        seen.trailer = f"image archive: unreadable after {len(seen.layers)} layers ({exc})"
    return _stack(seen)


def _visit(outer: tarfile.TarFile, member: tarfile.TarInfo, seen: _Seen) -> None:
    name = normalize(member.name)
    if member.issym() or member.islnk():
        # Docker ≤ 24 writes a layer shared with an earlier image once, and links the rest.
        base = posixpath.dirname(name) if member.issym() else ""
        seen.aliases[name] = normalize(posixpath.join(base, member.linkname))
    elif member.isreg() and name == MANIFEST:
        _read_manifest(outer, member, seen)
    elif member.isreg() and _may_be_layer(name):
        _read_member_layer(outer, member, name, seen)


def _may_be_layer(name: str) -> bool:
    return name.endswith(".tar") or name.startswith("blobs/")


def _read_member_layer(
    outer: tarfile.TarFile, member: tarfile.TarInfo, name: str, seen: _Seen
) -> None:
    reader = outer.extractfile(member)
    if reader is None:
        return
    room = MAX_KEPT - sum(delta.kept for delta in seen.layers.values())
    try:
        seen.layers[name] = read_layer(reader, room)
    except _CORRUPT as exc:
        seen.broken[name] = str(exc) or type(exc).__name__


def _read_manifest(outer: tarfile.TarFile, member: tarfile.TarInfo, seen: _Seen) -> None:
    too_big = too_large(MANIFEST, member.size, MAX_IMAGE_MANIFEST)
    layers = None if too_big else _layers(outer.extractfile(member))
    if layers is None:
        seen.unreadable = too_big or f"no readable {MANIFEST} (not a list of images, layers)"
    elif len(layers) > MAX_LAYERS:
        seen.unreadable = f"{MANIFEST} lists {len(layers)} layers, more than {MAX_LAYERS}"
    else:
        seen.manifest = layers


def _layers(reader: IO[bytes] | None) -> list[str] | None:
    """The layers of the first image of a manifest.json, or None when it has no such list."""
    try:
        data = json.loads(reader.read()) if reader is not None else None
    except (ValueError, RecursionError):  # not JSON, or nested deeper than json recurses
        return None
    if not (isinstance(data, list) and data and isinstance(data[0], dict)):
        return None
    layers = data[0].get("Layers") or []
    valid = isinstance(layers, list) and all(isinstance(name, str) for name in layers)
    return layers if valid else None


def _stack(seen: _Seen) -> Rootfs:
    if seen.manifest is None:
        why = seen.trailer or seen.unreadable
        raise ScanError(f"not a readable image archive: {why}")
    names = [normalize(n) for n in seen.manifest]
    stack = Stack()
    notes = Parsed(skipped=[seen.trailer] if seen.trailer else [])
    for index, name in enumerate(names):
        real = seen.aliases.get(name, name)
        delta = seen.layers.get(real)
        if delta is None:
            why = seen.broken.get(real, "missing from the archive")
            notes.skip(f"layer {index} ({_short(name)}): skipped, {why}")
            continue
        stack.apply(delta)
        for note in delta.skipped:
            notes.skip(f"layer {index}: {note}")
    return stack.rootfs(notes.counted("image archive").skipped, names)


def _short(name: str) -> str:
    parts = name.split("/")
    return (parts[-1] if parts[0] == "blobs" else parts[0])[:12]
