"""Check a bundle against its manifest, in one streaming pass over the ``.tar.gz``.

Each member is hashed in bounded chunks as it passes and only its size and hash are kept,
so a bundle of any size is checked in little memory. A damaged file is a verdict, never an
exception: the point of verifying is to say what is wrong with it.

Stream mode takes a tar cut at a member's boundary for a shorter whole one (``TarFile.next``
treats an empty or truncated header past the first as the end); the manifest being the last
member, and the gzip trailer being checked, are what reveal such a cut.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from garrison.errors import InvalidInput
from garrison.forensics.bundle import CHUNK, MANIFEST, Manifest, Member
from garrison.text import clip, escape_unsafe

MAX_MANIFEST = 64 << 20  # read whole: a manifest larger than this is not one we wrote


@dataclass(frozen=True, slots=True)
class Verdict:
    manifest: Manifest | None
    ok: bool
    problems: tuple[str, ...]  # sentences, each naming the member concerned


@dataclass(slots=True)
class _Contents:
    """What one pass over the tar found."""

    members: dict[str, Member] = field(default_factory=dict)
    manifest: bytes | None = None
    count: int = 0
    problems: list[str] = field(default_factory=list)


def verify(path: Path) -> Verdict:
    """Raises InvalidInput naming ``path`` only when the file cannot be opened."""
    try:
        file = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"cannot read bundle {path}: {exc.strerror or exc}") from exc
    with file:
        contents = _scan(file)
    manifest, problems = _check_manifest(contents.manifest)
    problems = contents.problems + problems
    if manifest is not None:
        problems += _compare(manifest, contents.members)
    return Verdict(manifest, not problems, tuple(problems))


def _scan(file: IO[bytes]) -> _Contents:
    """One pass; ``GzipFile`` rather than ``r|gz`` because it checks the gzip trailer (CRC and
    length), which ``tarfile``'s own stream never reads: a cut in the last bytes shows."""
    contents = _Contents()
    try:
        with gzip.GzipFile(fileobj=file, mode="rb") as unzipped:
            with tarfile.open(fileobj=unzipped, mode="r|") as tar:
                for info in tar:
                    _take(tar, info, contents)
            while unzipped.read(CHUNK):  # the tar's end, and the trailer after it
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        contents.problems.append(_broken(contents.count, exc))
    return contents


def _take(tar: tarfile.TarFile, info: tarfile.TarInfo, contents: _Contents) -> None:
    name = _shown(info.name)
    contents.count += 1
    if contents.manifest is not None:
        contents.problems.append(f"{MANIFEST}: not the last member ({name} follows it)")
    if info.name in contents.members or (info.name == MANIFEST and contents.manifest is not None):
        contents.problems.append(f"{name}: in the bundle twice")
    source = tar.extractfile(info) if info.isfile() else None
    if source is None:
        contents.problems.append(f"{name}: not a regular file")
    elif info.name != MANIFEST:
        contents.members[info.name] = _hash(info.name, source)
    elif info.size > MAX_MANIFEST:
        contents.problems.append(f"{MANIFEST}: {info.size} bytes, more than a manifest holds")
    else:
        contents.manifest = source.read()


def _hash(name: str, source: IO[bytes]) -> Member:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return Member(name, size, digest.hexdigest())


def _broken(count: int, exc: BaseException) -> str:
    why = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError):  # gzip's word for a stream that stops mid-way
        return f"truncated after {count} member(s): {why}"
    if count == 0:
        return f"not a gzip tar: {why}"
    return f"corrupt after {count} member(s): {why}"


def _check_manifest(data: bytes | None) -> tuple[Manifest | None, list[str]]:
    if data is None:
        return None, [f"no {MANIFEST}"]
    try:
        return Manifest.from_json(json.loads(data)), []
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        return None, [f"{MANIFEST}: not JSON: {exc}"]
    except InvalidInput as exc:
        return None, [f"{MANIFEST}: {exc}"]


def _compare(manifest: Manifest, found: dict[str, Member]) -> list[str]:
    listed = {member.name for member in manifest.members}
    problems = [p for member in manifest.members for p in _differences(member, found)]
    extra = [name for name in found if name not in listed]
    return problems + [f"{_shown(name)}: in the bundle, not in the manifest" for name in extra]


def _differences(expected: Member, found: dict[str, Member]) -> list[str]:
    name, got = _shown(expected.name), found.get(expected.name)
    if got is None:
        return [f"{name}: in the manifest, not in the bundle"]
    problems = []
    if got.size != expected.size:
        problems.append(f"{name}: size differs (manifest {expected.size}, file {got.size})")
    if got.sha256 != expected.sha256:
        problems.append(
            f"{name}: SHA-256 differs (manifest {expected.sha256[:12]}…, file {got.sha256[:12]}…)"
        )
    return problems


def _shown(name: str) -> str:
    """A member name from the file, safe to print: the tar is not necessarily ours."""
    return escape_unsafe(clip(name))
