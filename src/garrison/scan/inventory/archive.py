"""The archive ``docker save`` streams, or an OCI image layout archive (skopeo, buildah,
``docker buildx --output type=oci``), read as one stream and stacked into one root file system.

Three layouts are read:

- Docker ≤ 24: ``manifest.json`` naming the layer tars ``ID/layer.tar``, bottom to top;
- Docker ≥ 25: the OCI layout with a ``manifest.json`` beside it naming ``blobs/sha256/HEX``;
- the OCI layout alone: ``index.json`` → image manifest → layers (``oci``).

When ``manifest.json`` is there and readable it wins, as Docker itself reads it. The members
come in any order (Docker writes ``manifest.json`` last, skopeo ``index.json`` after or before
the blobs), so each layer is read as it streams past, each small JSON blob (an index, a
manifest) is kept as its descriptors, and the stack is built at the end. A layer that cannot be
read (corrupt, zstd-compressed, missing) is left out and named in ``Rootfs.skipped``; the rest
of the image is still read. The wanted files of all layers together are kept up to
``MAX_KEPT``.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import IO

from garrison.errors import ScanError
from garrison.scan.inventory.layer import LayerDelta, read_layer
from garrison.scan.inventory.limits import (
    MAX_DOCUMENTS,
    MAX_IMAGE_MANIFEST,
    MAX_KEPT,
    MAX_LAYERS,
    in_units,
    too_large,
)
from garrison.scan.inventory.oci import (
    INDEX,
    ZSTD_MAGIC,
    Document,
    LayerRef,
    LayoutError,
    image_layers,
    looks_like_json,
    parse_document,
)
from garrison.scan.inventory.parsed import Parsed
from garrison.scan.inventory.rootfs import Rootfs, Stack
from garrison.scan.inventory.tarstream import headers, open_stream
from garrison.scan.inventory.wanted import normalize

MANIFEST = "manifest.json"
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error)
_ZSTD = "zstd-compressed, which Python's standard library cannot read"
_NOT_A_LAYER = "a JSON document, not a layer tar"


@dataclass(slots=True)
class _Seen:
    layers: dict[str, LayerDelta] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # member name -> why it is unreadable
    aliases: dict[str, str] = field(default_factory=dict)  # symlinked layer -> real member
    manifest: list[str] | None = None  # the layers, bottom to top
    unreadable: str = ""  # why manifest.json cannot be used, when there is one
    index: Document | None = None  # the OCI layout's index.json
    index_why: str = ""  # why index.json cannot be used, when there is one
    documents: dict[str, Document] = field(default_factory=dict)  # JSON blobs: indexes, manifests
    trailer: str = ""  # why the archive itself stopped early, if it did


def read_layers(stream: IO[bytes]) -> Rootfs:
    """Read an image archive as a stream and stack its layers.

    Raises ScanError when the archive is not one (neither a readable ``manifest.json`` nor an
    ``index.json`` leading to an image manifest).
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
    elif not member.isreg():
        return
    elif name == MANIFEST:
        _read_manifest(outer, member, seen)
    elif name == INDEX:
        _read_index(outer, member, seen)
    elif _may_be_layer(name):
        _read_blob(outer, member, name, seen)


def _may_be_layer(name: str) -> bool:
    return name.endswith(".tar") or name.startswith("blobs/")


def _read_blob(outer: tarfile.TarFile, member: tarfile.TarInfo, name: str, seen: _Seen) -> None:
    """A layer tar, a JSON document (an index, a manifest, a config) or a zstd layer, told
    apart by their first bytes, so that a JSON blob is not read as a broken tar."""
    reader = outer.extractfile(member)
    if reader is None:
        return
    head = reader.peek(len(ZSTD_MAGIC)) if isinstance(reader, io.BufferedReader) else b""
    if head.startswith(ZSTD_MAGIC):
        seen.broken[name] = _ZSTD
    elif looks_like_json(head) and member.size <= MAX_IMAGE_MANIFEST:
        _read_json_blob(reader.read(), name, seen)
    elif looks_like_json(head):
        big = f"larger than {in_units(MAX_IMAGE_MANIFEST)} for a JSON document"
        _read_member_layer(reader, name, seen, also=big)
    else:
        _read_member_layer(reader, name, seen)


def _read_json_blob(raw: bytes, name: str, seen: _Seen) -> None:
    try:
        document = parse_document(raw)
    except LayoutError as exc:  # a layer tar whose first member's name opens with "{"
        _read_member_layer(io.BytesIO(raw), name, seen, also=str(exc))
        return
    seen.broken[name] = _NOT_A_LAYER  # should a manifest name it as a layer
    if document is None:
        return  # an image config, an attestation: nothing the inventory reads
    if len(seen.documents) < MAX_DOCUMENTS:
        seen.documents[name] = document
    else:
        seen.broken[name] = f"a JSON document past the first {MAX_DOCUMENTS}, not kept"


def _read_member_layer(reader: IO[bytes], name: str, seen: _Seen, also: str = "") -> None:
    room = MAX_KEPT - sum(delta.kept for delta in seen.layers.values())
    try:
        seen.layers[name] = read_layer(reader, room)
    except _CORRUPT as exc:
        why = str(exc) or type(exc).__name__
        seen.broken[name] = f"{also}, and not a tar ({why})" if also else why


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


def _read_index(outer: tarfile.TarFile, member: tarfile.TarInfo, seen: _Seen) -> None:
    too_big = too_large(INDEX, member.size, MAX_IMAGE_MANIFEST)
    reader = None if too_big else outer.extractfile(member)
    if reader is None:
        seen.index_why = too_big or f"{INDEX}: not a file"
        return
    try:
        seen.index = parse_document(reader.read())
    except LayoutError as exc:
        seen.index_why = f"{INDEX}: {exc}"
        return
    if seen.index is None:
        seen.index_why = f"{INDEX}: lists no manifests"


def _image(seen: _Seen) -> tuple[list[LayerRef], list[str]]:
    """The layers to stack, bottom to top, and what to say about the choice of them."""
    if seen.manifest is not None:
        return [LayerRef(normalize(name)) for name in seen.manifest], []
    if seen.index is None:
        raise _not_an_archive(seen)
    try:
        image = image_layers(seen.index, seen.documents, seen.broken)
    except LayoutError as exc:
        raise _not_an_archive(seen, str(exc)) from exc
    fallback = [f"{seen.unreadable}: {INDEX} read"] if seen.unreadable else []
    return image.layers, fallback + image.notes


def _not_an_archive(seen: _Seen, oci: str = "") -> ScanError:
    whys = [why for why in (seen.trailer, seen.unreadable, seen.index_why, oci) if why]
    why = "; ".join(whys) or f"no readable {MANIFEST} or {INDEX}"
    return ScanError(f"not a readable image archive: {why}")


def _stack(seen: _Seen) -> Rootfs:
    refs, said = _image(seen)
    stack = Stack()
    notes = Parsed(skipped=[seen.trailer] if seen.trailer else [])
    for note in said:
        notes.skip(note)
    for index, ref in enumerate(refs):
        real = seen.aliases.get(ref.name, ref.name)
        delta = None if ref.problem else seen.layers.get(real)
        if delta is None:
            notes.skip(f"layer {index}{_short(ref)}: skipped, {_why_missing(ref, real, seen)}")
            continue
        stack.apply(delta)
        for note in delta.skipped:
            notes.skip(f"layer {index}: {note}")
    return stack.rootfs(notes.counted("image archive").skipped, [ref.name for ref in refs])


def _why_missing(ref: LayerRef, real: str, seen: _Seen) -> str:
    if ref.problem:
        return ref.problem
    return seen.broken.get(real, "missing from the archive")


def _short(ref: LayerRef) -> str:
    if ref.problem:
        return ""
    parts = ref.name.split("/")
    return f" ({(parts[-1] if parts[0] == 'blobs' else parts[0])[:12]})"
