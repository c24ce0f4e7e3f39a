"""The OCI image layout as skopeo, buildah and ``docker buildx --output type=oci`` write it
(https://github.com/opencontainers/image-spec/blob/main/image-layout.md): ``oci-layout``,
``index.json`` and the content-addressed ``blobs/sha256/HEX``, with no ``manifest.json``.
``index.json`` names image manifests (or nested image indexes: one per platform, or more); a
manifest names its layers, bottom to top.

The archive is one stream whose members come in any order, so each small JSON blob is reduced
here to its descriptors as it passes (``parse_document``) and the chain index → manifest →
layers is followed at the end (``image_layers``). What a hostile layout may cost is bounded:
each JSON document by ``MAX_IMAGE_MANIFEST`` bytes (the caller checks), the descriptors of one
document by ``MAX_LAYERS``, the documents kept by ``MAX_DOCUMENTS``, and the indexes followed
by ``MAX_DEPTH``. A digest is used as a member name only when it is ``sha256:`` and 64 hex
digits (``sha256:../../etc/passwd`` names nothing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from garrison.scan.inventory.limits import MAX_DEPTH, MAX_LAYERS
from garrison.scan.inventory.parsed import clipped

INDEX = "index.json"
PLATFORM = "linux/amd64"  # the platform read when an index offers several
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878, 3.1.1; Python 3.11's tarfile cannot read it

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_KEPT_CHARS = 200  # of a digest, media type or platform field: longer ones are invalid anyway
_ATTESTATION = "unknown/unknown"  # buildx's provenance and SBOM manifests: not an image

# What an index entry may be to lead to an image: an index or a manifest, OCI's or Docker's
# (skopeo keeps Docker's media types when it copies a Docker image as it is).
_IMAGE_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)


class LayoutError(ValueError):
    """The layout leads to no image: why, in one line."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    digest: str
    media_type: str = ""
    platform: str = ""  # "os/architecture[/variant]", "" when the descriptor has none


@dataclass(frozen=True, slots=True)
class Document:
    """An image index (its ``manifests``) or an image manifest (its ``layers``)."""

    kind: Literal["index", "manifest"]
    entries: tuple[Descriptor, ...] = ()
    problem: str = ""  # why the document cannot be used, when it cannot


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer to stack: its member name, or why it has none."""

    name: str
    problem: str = ""


@dataclass(slots=True)
class Image:
    layers: list[LayerRef] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def looks_like_json(head: bytes) -> bool:
    """True when a member's first bytes open a JSON object (a tar opens with a name)."""
    return head.lstrip(b" \t\r\n")[:1] == b"{"


def parse_document(raw: bytes) -> Document | None:
    """The index or manifest in ``raw``; None for any other JSON object (an image config,
    an attestation), ``LayoutError`` when ``raw`` is not a JSON object at all."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested deeper than json recurses
        raise LayoutError("not JSON") from exc
    if not isinstance(data, dict):
        raise LayoutError("not a JSON object")
    if isinstance(manifests := data.get("manifests"), list):
        return _document("index", manifests)
    if isinstance(layers := data.get("layers"), list):
        return _document("manifest", layers)
    return None


def _document(kind: Literal["index", "manifest"], listed: list[Any]) -> Document:
    if len(listed) > MAX_LAYERS:
        key = "manifests" if kind == "index" else "layers"
        return Document(kind, problem=f"lists {len(listed)} {key}, more than {MAX_LAYERS}")
    return Document(kind, tuple(_descriptor(entry, kind == "index") for entry in listed))


def _descriptor(entry: object, choosing: bool) -> Descriptor:
    """What is used of a descriptor: an index's, to choose among them; a layer's, its digest."""
    if not isinstance(entry, dict):
        return Descriptor("")
    if not choosing:
        return Descriptor(_text(entry.get("digest")))
    return Descriptor(
        _text(entry.get("digest")), _text(entry.get("mediaType")), _platform(entry.get("platform"))
    )


def _platform(platform: object) -> str:
    if not isinstance(platform, dict):
        return ""
    parts = [platform.get(key) for key in ("os", "architecture", "variant")]
    return _text("/".join(part for part in parts if isinstance(part, str) and part))


def _text(value: object) -> str:
    return value[:_KEPT_CHARS] if isinstance(value, str) else ""


def blob_name(digest: str) -> str | None:
    """The member holding the blob of ``digest``, or None when it is not a sha256 digest."""
    found = _DIGEST.fullmatch(digest)
    return f"blobs/sha256/{found.group(1)}" if found else None


def short(digest: str) -> str:
    found = _DIGEST.fullmatch(digest)
    return found.group(1)[:12] if found else clipped(digest)


def image_layers(
    index: Document, documents: Mapping[str, Document], unread: Mapping[str, str]
) -> Image:
    """The layers of the image ``index.json`` leads to, through nested indexes, choosing
    ``PLATFORM`` where an index offers several. ``unread`` says why a blob was not kept, by
    member name. Raises ``LayoutError`` when the chain leads to no image manifest."""
    image = Image()
    document, where = index, INDEX
    followed: set[str] = set()
    for _ in range(MAX_DEPTH + 1):
        if document.problem:
            raise LayoutError(f"{where} {document.problem}")
        if document.kind == "manifest":
            image.layers = [_layer(entry) for entry in document.entries]
            return image
        digest = _choose(document.entries, where, image.notes).digest
        name = _followed(digest, where, followed)
        found = documents.get(name)
        if found is None:
            why = unread.get(name, "not in the archive")
            raise LayoutError(f"{where} names {short(digest)}, no image index or manifest: {why}")
        document, where = found, f"{found.kind} {short(digest)}"
    raise LayoutError(f"{INDEX}: image indexes nested deeper than {MAX_DEPTH}")


def _followed(digest: str, where: str, followed: set[str]) -> str:
    name = blob_name(digest)
    if name is None:
        raise LayoutError(f"{where} names {clipped(digest)!r}, not a sha256 digest")
    if name in followed:
        raise LayoutError(f"{where} names {short(digest)} again: the indexes loop")
    followed.add(name)
    return name


def _choose(entries: tuple[Descriptor, ...], where: str, notes: list[str]) -> Descriptor:
    """The entry for ``PLATFORM``, else the first without a platform, else the first image;
    a note says which when the index offered more than one image."""
    usable = [e for e in entries if not e.media_type or e.media_type in _IMAGE_TYPES]
    images = [e for e in usable if e.platform != _ATTESTATION]
    if not images:
        raise LayoutError(f"{where} lists no image manifest")
    ours = [e for e in images if e.platform.startswith(PLATFORM + "/") or e.platform == PLATFORM]
    bare = [e for e in images if not e.platform]
    chosen = (ours or bare or images)[0]
    read = f"{short(chosen.digest)} ({clipped(chosen.platform) or 'no platform'}) read"
    if not (ours or bare):
        notes.append(f"{where}: no manifest for {PLATFORM}, {read}")
    elif len(images) > 1:
        notes.append(f"{where}: {len(images)} image manifests, {read}")
    return chosen


def _layer(entry: Descriptor) -> LayerRef:
    name = blob_name(entry.digest)
    if name is None:
        digest = clipped(entry.digest)
        return LayerRef(digest, f"{digest!r} is not a sha256 digest")
    return LayerRef(name)
