"""The archive ``docker save`` streams: ``manifest.json`` naming the layer tars bottom to top,
and the layers themselves, as ``ID/layer.tar`` (Docker ≤ 24) or ``blobs/sha256/HEX`` (the OCI
layout of Docker ≥ 25).

Docker writes ``manifest.json`` after the layers, so each layer is read as it streams past and
the stack is built once the manifest says in which order. A layer tar that cannot be read is
left out and named in ``Rootfs.skipped``; the rest of the image is still read.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from garrison.errors import ScanError
from garrison.scan.inventory.layer import LayerDelta, headers, read_layer
from garrison.scan.inventory.rootfs import Rootfs, Stack
from garrison.scan.inventory.wanted import normalize

MANIFEST = "manifest.json"
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error)


@dataclass(slots=True)
class _Seen:
    layers: dict[str, LayerDelta] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # member name -> why it is unreadable
    aliases: dict[str, str] = field(default_factory=dict)  # symlinked layer -> real member
    manifest: list[Any] | None = None
    trailer: str = ""  # why the archive itself stopped early, if it did


def read_layers(stream: IO[bytes]) -> Rootfs:
    """Read a ``docker save`` archive as a stream and stack its layers.

    Raises ScanError when the archive is not one (no readable ``manifest.json``).
    """
    seen = _Seen()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as outer:
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
        seen.manifest = _manifest(outer, member)
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
    try:
        seen.layers[name] = read_layer(reader)
    except _CORRUPT as exc:
        seen.broken[name] = str(exc) or type(exc).__name__


def _manifest(outer: tarfile.TarFile, member: tarfile.TarInfo) -> list[Any] | None:
    reader = outer.extractfile(member)
    try:
        data = json.loads(reader.read()) if reader is not None else None
    except ValueError:
        return None
    return data if isinstance(data, list) and data and isinstance(data[0], dict) else None


def _stack(seen: _Seen) -> Rootfs:
    if seen.manifest is None:
        why = seen.trailer or "no readable manifest.json"
        raise ScanError(f"not a readable image archive: {why}")
    names = [normalize(str(n)) for n in seen.manifest[0].get("Layers") or []]
    stack = Stack()
    skipped = [seen.trailer] if seen.trailer else []
    for index, name in enumerate(names):
        real = seen.aliases.get(name, name)
        delta = seen.layers.get(real)
        if delta is None:
            why = seen.broken.get(real, "missing from the archive")
            skipped.append(f"layer {index} ({_short(name)}): skipped, {why}")
            continue
        stack.apply(delta)
        skipped.extend(f"layer {index}: {s}" for s in delta.skipped)
    return stack.rootfs(skipped, names)


def _short(name: str) -> str:
    parts = name.split("/")
    return (parts[-1] if parts[0] == "blobs" else parts[0])[:12]
