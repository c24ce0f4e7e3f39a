"""The bundles kept on a host: one folder, ``<id>.tar.gz`` and its index entry ``<id>.json``.

The index entry is written (atomically) only once the bundle is complete, so a bundle is
listed only when whole; a capture killed midway leaves ``*.partial`` files, which are never
listed (``stale_partials`` finds them, the caller decides). Removal takes the bundle before
its entry, and an entry whose bundle is gone is ignored: a crash between the two leaves
nothing listed that is not there. Everything is 0700/0600: a bundle holds a container's files.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.errors import InvalidInput, NotFound, StoreError
from garrison.forensics.bundle import (
    Manifest,
    check_bundle_id,
    fsync_dir,
    iso_utc,
    json_field,
    parse_iso,
)
from garrison.store.datadir import secure_data_dir
from garrison.text import clip, escape_unsafe

log = logging.getLogger(__name__)

SUFFIX = ".tar.gz"
INDEX = ".json"
MIN_PREFIX = 4  # as for blocked containers: shorter prefixes match by accident
SUBJECT_KEYS = ("containerId", "containerName", "imageName", "reason")


@dataclass(frozen=True, slots=True)
class BundleInfo:
    id: str
    path: Path
    created: float
    size: int  # bytes of the .tar.gz
    complete: bool
    missing: tuple[str, ...]  # names of missing members
    subject: dict[str, Any]
    pinned: bool = False

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "path": str(self.path),
            "created": iso_utc(self.created),
            "size": self.size,
            "complete": self.complete,
            "missing": list(self.missing),
            "pinned": self.pinned,
        }
        doc |= {key: _text(self.subject.get(key)) for key in SUBJECT_KEYS}
        return doc | {"subject": self.subject}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BundleInfo:
        """The bundle ``to_json`` gave (as the REST API answers it); ``path`` is where the
        bundle is on the console's host."""
        return cls(
            id=str(doc["id"]), path=Path(str(doc["path"])),
            created=parse_iso(str(doc["created"]), "created"), size=int(doc["size"]),
            complete=bool(doc["complete"]), missing=tuple(str(m) for m in doc["missing"]),
            subject=dict(doc["subject"]), pinned=bool(doc.get("pinned")),
        )  # fmt: skip


class Library:
    """The bundles under ``root`` (``<data_dir>/forensics/bundles``), made 0700 when missing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._warned: set[str] = set()
        for folder in reversed([p for p in root.parents if not p.exists()]):
            secure_data_dir(folder)  # <data_dir>/forensics too, when this makes it
        secure_data_dir(root)

    def new_path(self, bundle_id: str) -> Path:
        """Where a BundleWriter writes it (``finish`` renames over a bundle of that id)."""
        return self._bundle_path(bundle_id)

    def add(self, manifest: Manifest) -> BundleInfo:
        """Index a bundle that ``BundleWriter.finish()`` wrote at ``new_path``."""
        path = self._bundle_path(manifest.bundle)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotFound(f"bundle {manifest.bundle}: no {path}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        missing = tuple(m.name for m in manifest.missing)
        info = BundleInfo(
            manifest.bundle,
            path,
            manifest.created,
            size,
            manifest.complete,
            missing,
            dict(manifest.subject),
        )
        self._write_index(info)
        return info

    def list(self) -> builtins.list[BundleInfo]:
        """Newest first. Malformed entries are skipped (logged once), never raised."""
        found = [info for index in self._index_files() if (info := self._read(index))]
        return sorted(found, key=lambda info: (info.created, info.id), reverse=True)

    def get(self, ref: str) -> BundleInfo:
        """By id, unique id prefix, container name or container id prefix; for a container,
        its newest bundle. Raises NotFound, or InvalidInput when ``ref`` is ambiguous."""
        if not ref.strip():
            raise InvalidInput("name a bundle: an id, an id prefix or a container")
        bundles = self.list()
        return _by_id(ref, bundles) or _by_container(ref, bundles)

    def pin(self, bundle_id: str, pinned: bool) -> BundleInfo:
        """Pinned bundles are never pruned."""
        check_bundle_id(bundle_id)
        info = next((b for b in self.list() if b.id == bundle_id), None)
        if info is None:
            raise NotFound(f"no forensics bundle {bundle_id}")
        info = dataclasses.replace(info, pinned=pinned)
        self._write_index(info)
        return info

    def remove(self, bundle_id: str) -> None:
        """The bundle, then its index entry; raises NotFound when neither is there."""
        removed = False
        for path in (self._bundle_path(bundle_id), self._index_path(bundle_id)):
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        if not removed:
            raise NotFound(f"no forensics bundle {bundle_id}")

    def prune(self, max_bytes: int, max_age: float, now: float) -> builtins.list[str]:
        """Remove unpinned bundles older than ``max_age`` seconds, then the oldest unpinned
        ones until all kept bundles (pinned included) fit in ``max_bytes``; 0 is no limit.
        The removed ids, oldest first."""
        if max_bytes < 0 or max_age < 0:
            raise InvalidInput("prune limits cannot be negative (0 is no limit)")
        oldest_first = self.list()[::-1]
        old = [b for b in oldest_first if not b.pinned and 0 < max_age < now - b.created]
        kept = [b for b in oldest_first if b.id not in {o.id for o in old}]
        doomed = sorted(old + _over_size(kept, max_bytes), key=lambda b: (b.created, b.id))
        for info in doomed:
            with contextlib.suppress(NotFound):  # removed meanwhile by another command
                self.remove(info.id)
        return [info.id for info in doomed]

    def stale_partials(self) -> builtins.list[Path]:
        """Leftovers of writes that did not finish: bundles, their spools, index entries."""
        return sorted(p for p in self._entries() if p.name.endswith(".partial"))

    def unindexed(self) -> builtins.list[Path]:
        """Whole bundles with no index entry (a crash between ``finish`` and ``add``):
        ``verify`` gives their manifest back, for ``add``."""
        bundles = [p for p in self._entries() if _visible(p) and p.name.endswith(SUFFIX)]
        return sorted(p for p in bundles if not self._index_path(p.name[: -len(SUFFIX)]).exists())

    def _bundle_path(self, bundle_id: str) -> Path:
        return self.root / f"{check_bundle_id(bundle_id)}{SUFFIX}"

    def _index_path(self, bundle_id: str) -> Path:
        return self.root / f"{check_bundle_id(bundle_id)}{INDEX}"

    def _entries(self) -> builtins.list[Path]:
        try:
            return builtins.list(self.root.iterdir())
        except OSError as exc:
            raise StoreError(f"cannot list {self.root}: {exc.strerror or exc}") from exc

    def _index_files(self) -> builtins.list[Path]:
        return [p for p in self._entries() if _visible(p) and p.name.endswith(INDEX)]

    def _read(self, index: Path) -> BundleInfo | None:
        """The entry's bundle, or None when it is gone or the entry is malformed."""
        bundle_id = index.name[: -len(INDEX)]
        try:
            size = self._bundle_path(bundle_id).stat().st_size
            return _info(json.loads(index.read_bytes()), self._bundle_path(bundle_id), size)
        except FileNotFoundError:
            return None  # the bundle (or the entry) was removed
        except (OSError, ValueError, InvalidInput) as exc:
            self._warn_once(index, exc)
            return None

    def _write_index(self, info: BundleInfo) -> None:
        final, data = self._index_path(info.id), _index_json(info).encode()
        prefix = f".{final.name}."
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=prefix, suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
            fsync_dir(self.root)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StoreError(f"cannot write {final}: {exc.strerror or exc}") from exc

    def _warn_once(self, index: Path, exc: Exception) -> None:
        if index.name not in self._warned:
            self._warned.add(index.name)
            log.warning("ignoring forensics index entry %s: %s", index, exc)


def _info(doc: Any, path: Path, size: int) -> BundleInfo:
    """An index entry read back; raises InvalidInput naming the malformed field."""
    where = f"{path.name[: -len(SUFFIX)]}{INDEX}: "
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"{where}not a JSON object")
    if json_field(doc, "id", str, where) != path.name[: -len(SUFFIX)]:
        raise InvalidInput(f"{where}id is not the file's")
    missing = json_field(doc, "missing", list, where)
    if not all(isinstance(name, str) for name in missing):
        raise InvalidInput(f"{where}missing is not a list of names")
    created = parse_iso(json_field(doc, "created", str, where), f"{where}created")
    complete, pinned = (
        json_field(doc, "complete", bool, where),
        json_field(doc, "pinned", bool, where),
    )
    subject = dict(json_field(doc, "subject", dict, where))
    bundle_id = path.name[: -len(SUFFIX)]
    return BundleInfo(bundle_id, path, created, size, complete, tuple(missing), subject, pinned)


def _index_json(info: BundleInfo) -> str:
    doc = {
        "format": 1,
        "id": info.id,
        "created": iso_utc(info.created),
        "size": info.size,
        "complete": info.complete,
        "missing": list(info.missing),
        "pinned": info.pinned,
        "subject": info.subject,
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _over_size(oldest_first: list[BundleInfo], max_bytes: int) -> list[BundleInfo]:
    """The oldest unpinned bundles to remove for all of them to fit in ``max_bytes``."""
    total, doomed = sum(b.size for b in oldest_first), []
    for info in oldest_first:
        if not max_bytes or total <= max_bytes:
            break
        if not info.pinned:
            doomed.append(info)
            total -= info.size
    return doomed


def _by_id(ref: str, bundles: list[BundleInfo]) -> BundleInfo | None:
    found = [b for b in bundles if b.id == ref] or _prefixed(ref, bundles)
    return found[0] if len(found) == 1 else None


def _by_container(ref: str, bundles: list[BundleInfo]) -> BundleInfo:
    """The newest bundle of the container ``ref`` names; a name is reused by later
    containers, and the newest is the one meant."""
    named = [b for b in bundles if _container_name(b) == ref.lstrip("/")]
    if named:
        return named[0]
    found = [b for b in bundles if _container_id_has(b, ref)]
    if len({_text(b.subject.get("containerId")) for b in found}) == 1:
        return found[0]
    shown = escape_unsafe(clip(ref))
    if found or _prefixed(ref, bundles):
        raise InvalidInput(f"{shown!r} names more than one bundle: give more of the id")
    raise NotFound(
        f"no forensics bundle matches {shown!r}: give a bundle id, an id prefix "
        f"({MIN_PREFIX}+ characters), a container id prefix or a container name"
    )


def _prefixed(ref: str, bundles: list[BundleInfo]) -> list[BundleInfo]:
    return [b for b in bundles if len(ref) >= MIN_PREFIX and b.id.startswith(ref)]


def _container_name(info: BundleInfo) -> str:
    return _text(info.subject.get("containerName")).lstrip("/")  # Docker's leading slash


def _container_id_has(info: BundleInfo, ref: str) -> bool:
    container = _text(info.subject.get("containerId"))
    return len(ref) >= MIN_PREFIX and bool(container) and container.startswith(ref)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")  # temporaries start with a dot


def _text(value: Any) -> str:
    return "" if value is None else str(value)
