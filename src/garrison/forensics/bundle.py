"""One forensics bundle: a single ``.tar.gz`` streamed to disk, its ``manifest.json`` last.

The manifest comes last because only then is every member's SHA-256 known, and a streamed
tar cannot be rewritten; a reader (``verify``) hashes the members as they pass and compares
at the end, so a bundle cut short has no manifest and says so.

A tar header carries the member's size before its bytes, so a member of unknown size (a
``docker export``) is spooled first, to a 0600 file beside the bundle. That also bounds what
a full disk costs: a spool that fails loses that member only (it is recorded as missing and
the bundle goes on), whereas a write that fails inside the compressed stream leaves the rest
of it undecodable, so the bundle is discarded (``ForensicsError``).

gzip level 1, not 6: on 100 MB of /usr binaries level 6 took 3.1 times the CPU (28 MB/s
against 87) for an output 10% smaller, and a capture runs on a host under attack.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, TypeVar

from garrison.errors import ForensicsError, InvalidInput
from garrison.store.datadir import open_private
from garrison.text import clip, escape_unsafe, first_unsafe

FORMAT = 1
MANIFEST = "manifest.json"
CHUNK = 1 << 20  # bytes read or written at a time: what bounds memory, whatever the size
COMPRESS_LEVEL = 1
MAX_ID = 100
_ID = re.compile(rf"(?!\.)[A-Za-z0-9._-]{{1,{MAX_ID}}}")
_HEX = frozenset("0123456789abcdef")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Member:
    """One file in the bundle."""

    name: str
    size: int
    sha256: str  # hex


@dataclass(frozen=True, slots=True)
class Missing:
    """Something the bundle should hold but does not, and why."""

    name: str
    why: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a bundle holds; written into it as its last member."""

    bundle: str
    created: float  # epoch seconds
    subject: dict[str, Any]  # the caller's, stored as it is
    members: tuple[Member, ...]
    missing: tuple[Missing, ...]
    complete: bool  # nothing is missing

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "bundle": self.bundle,
            "created": iso_utc(self.created),
            "subject": self.subject,
            "complete": self.complete,
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in self.members],
            "missing": [{"name": m.name, "why": m.why} for m in self.missing],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Manifest:
        """Raises InvalidInput naming the first malformed field."""
        if not isinstance(doc, Mapping):
            raise InvalidInput("manifest: not a JSON object")
        if doc.get("format") != FORMAT:
            raise InvalidInput(f"manifest: format is {doc.get('format')!r}, not {FORMAT}")
        members = tuple(_member(m, i) for i, m in enumerate(json_field(doc, "members", list)))
        missing = tuple(_missing(m, i) for i, m in enumerate(json_field(doc, "missing", list)))
        if len({m.name for m in members}) < len(members):
            raise InvalidInput("manifest: members: a name is listed twice")
        complete = json_field(doc, "complete", bool)
        if complete == bool(missing):
            raise InvalidInput("manifest: complete disagrees with missing")
        return cls(
            bundle=json_field(doc, "bundle", str),
            created=parse_iso(json_field(doc, "created", str), "manifest: created"),
            subject=dict(json_field(doc, "subject", dict)),
            members=members,
            missing=missing,
            complete=complete,
        )


class BundleWriter:
    """Writes one bundle to ``<path>.partial``, renamed to ``path`` by ``finish()``.

    Not thread-safe: one capture writes one bundle. As a context manager, leaving the block
    without ``finish()`` (by an exception or not) aborts the bundle.
    """

    def __init__(self, path: Path, bundle_id: str, subject: Mapping[str, Any]) -> None:
        self.path = path
        self.bundle_id = check_bundle_id(bundle_id)
        self.subject = dict(subject)
        _check_json(self.subject, "subject")  # now, not at finish() after a long capture
        self.created = time.time()
        self._partial = path.with_name(f"{path.name}.partial")
        self._members: list[Member] = []
        self._missing: list[Missing] = []
        self._names: set[str] = set()
        self._spool: Path | None = None
        self._closed = False
        self._raw, self._gzip, self._tar = self._open()

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()  # nothing left to do after finish()

    def add_bytes(self, name: str, data: bytes) -> None:
        self._claim(name)
        self._put(name, len(data), io.BytesIO(data))
        self._members.append(Member(name, len(data), hashlib.sha256(data).hexdigest()))

    def add_json(self, name: str, obj: Any) -> None:
        self.add_bytes(name, _check_json(obj, name).encode())

    def add_stream(self, name: str, chunks: Iterable[bytes]) -> None:
        """Spool ``chunks`` beside the bundle, then copy the spool in. A source that raises
        keeps what it gave and is recorded missing too; a spool that fails (a full disk) loses
        the member only, recorded missing with the reason."""
        self._claim(name)
        try:
            with self._spool_file() as spool:
                size, digest, broke = _fill(spool, chunks)
                spool.flush()
                spool.seek(0)
                if size or broke is None:
                    self._put(name, size, spool)
                    self._members.append(Member(name, size, digest))
        except OSError as exc:  # the spool's: _put raises ForensicsError
            self._missing.append(Missing(name, f"could not be written: {_why(exc)}"))
            return
        if broke is not None:
            self._missing.append(Missing(name, broke))

    def missing(self, name: str, why: str) -> None:
        self._claim(name)
        self._missing.append(Missing(name, why))

    def finish(self) -> Manifest:
        """Write the manifest last, close, sync and rename; raises ForensicsError (the
        bundle discarded) when the disk refuses."""
        manifest = self._manifest()
        data = _check_json(manifest.to_json(), MANIFEST).encode()
        self._put(MANIFEST, len(data), io.BytesIO(data))
        try:
            self._close_synced()
            self._publish()
        except OSError as exc:
            self._fail(MANIFEST, exc)
        self._closed = True
        return manifest

    def abort(self) -> None:
        """Close, and remove the partial file and any spool; idempotent, a no-op after finish."""
        if self._closed:
            return
        self._closed = True
        for close in (self._tar.close, self._gzip.close, self._raw.close):
            with contextlib.suppress(Exception):  # the stream may be why we abort
                close()
        self._drop_spool()
        with contextlib.suppress(OSError):
            self._partial.unlink()

    def _open(self) -> tuple[IO[bytes], gzip.GzipFile, tarfile.TarFile]:
        try:
            fd = open_private(self._partial, os.O_WRONLY | os.O_TRUNC)
        except OSError as exc:
            raise ForensicsError(f"cannot create {self._partial}: {_why(exc)}") from exc
        raw = os.fdopen(fd, "wb")
        level, mtime = COMPRESS_LEVEL, int(self.created)
        zipped = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=mtime)
        tar = tarfile.TarFile(
            fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        )
        return raw, zipped, tar

    def _claim(self, name: str) -> None:
        if self._closed:
            raise ForensicsError(f"bundle {self.bundle_id} is already finished or aborted")
        if why := bad_member_name(name) or _taken(name, self._names):
            raise InvalidInput(f"member name {escape_unsafe(clip(name))!r}: {why}")
        self._names.add(name)

    def _put(self, name: str, size: int, source: IO[bytes]) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(self.created), 0o600
        try:
            self._tar.addfile(info, source)
        except OSError as exc:
            self._fail(name, exc)

    def _fail(self, name: str, exc: OSError) -> NoReturn:
        self.abort()
        raise ForensicsError(
            f"bundle {self.bundle_id}: could not write {name} ({_why(exc)}); bundle discarded"
        ) from exc

    @contextlib.contextmanager
    def _spool_file(self) -> Iterator[IO[bytes]]:
        folder, prefix = self.path.parent, f".{self.path.name}."
        fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".partial")  # 0600
        self._spool = Path(name)
        try:
            with os.fdopen(fd, "w+b") as spool:
                yield spool
        finally:
            self._drop_spool()

    def _drop_spool(self) -> None:
        if self._spool is not None:
            with contextlib.suppress(OSError):
                self._spool.unlink()
            self._spool = None

    def _manifest(self) -> Manifest:
        if self._closed:
            raise ForensicsError(f"bundle {self.bundle_id} is already finished or aborted")
        members, missing = tuple(self._members), tuple(self._missing)
        return Manifest(self.bundle_id, self.created, self.subject, members, missing, not missing)

    def _close_synced(self) -> None:
        self._tar.close()  # the end-of-archive blocks
        self._gzip.close()  # the gzip trailer; the file itself stays open
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()

    def _publish(self) -> None:
        os.replace(self._partial, self.path)
        try:
            fsync_dir(self.path.parent)  # the rename itself, or a crash may undo it
        except OSError:
            self.path.unlink(missing_ok=True)  # the caller is told it failed: nothing left
            raise


def check_bundle_id(bundle_id: str) -> str:
    """``bundle_id`` when it is a safe file name; raises InvalidInput otherwise."""
    if not _ID.fullmatch(bundle_id):
        shown = escape_unsafe(clip(bundle_id))
        raise InvalidInput(
            f"bad bundle id {shown!r}: up to {MAX_ID} of A-Z a-z 0-9 . _ -, not starting with a dot"
        )
    return bundle_id


def bad_member_name(name: str) -> str | None:
    """Why ``name`` is not a plain relative path, or None. Unsafe characters are refused
    because names are printed by ``verify`` and the CLI."""
    if not name:
        return "empty"
    if name.startswith("/"):
        return "absolute"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "not a plain relative path (an empty, . or .. part)"
    if first_unsafe(name):
        return "holds a control or format character"
    return None


def iso_utc(when: float) -> str:
    return dt.datetime.fromtimestamp(when, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str, where: str) -> float:
    """Epoch seconds of an ISO 8601 time with its zone; raises InvalidInput naming ``where``."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{where}: {clip(text)!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{where}: {clip(text)!r} has no time zone")
    return moment.timestamp()


def json_field(doc: Mapping[str, Any], key: str, kind: type[T], where: str = "manifest: ") -> T:
    """``doc[key]`` when it is a ``kind``; raises InvalidInput naming it otherwise."""
    value = doc.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"{where}{key} is missing or not {kind.__name__}")
    return value


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fill(spool: IO[bytes], chunks: Iterable[bytes]) -> tuple[int, str, str | None]:
    """Copy ``chunks`` into ``spool``: the size, the SHA-256 and, when the source raised,
    why. Only ``next()`` is guarded, so the spool's own OSError propagates to the caller."""
    digest, size = hashlib.sha256(), 0
    with contextlib.closing(_iterate(chunks)) as source:  # closing lets go of a connection
        while True:
            try:
                chunk = next(source)
            except StopIteration:
                return size, digest.hexdigest(), None
            except Exception as exc:  # whatever the source raises: the export broke off
                return size, digest.hexdigest(), f"broke off after {size} bytes: {_why(exc)}"
            spool.write(chunk)
            digest.update(chunk)
            size += len(chunk)


def _taken(name: str, names: set[str]) -> str | None:
    if name == MANIFEST:
        return "reserved for the manifest"
    return "already in the bundle" if name in names else None


def _iterate(chunks: Iterable[bytes]) -> Generator[bytes, None, None]:
    yield from chunks  # so that even iter() raising is a next() raising


def _check_json(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{escape_unsafe(clip(what))}: not JSON: {exc}") from exc


def _member(doc: Any, index: int) -> Member:
    where = f"manifest: members[{index}]."
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"manifest: members[{index}] is not an object")
    name, size = json_field(doc, "name", str, where), json_field(doc, "size", int, where)
    sha256 = json_field(doc, "sha256", str, where)
    if why := bad_member_name(name):
        raise InvalidInput(f"{where}name {escape_unsafe(clip(name))!r}: {why}")
    if size < 0:
        raise InvalidInput(f"{where}size is negative")
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise InvalidInput(f"{where}sha256 is not 64 lowercase hex digits")
    return Member(name, size, sha256)


def _missing(doc: Any, index: int) -> Missing:
    where = f"manifest: missing[{index}]."
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"manifest: missing[{index}] is not an object")
    return Missing(json_field(doc, "name", str, where), json_field(doc, "why", str, where))


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
