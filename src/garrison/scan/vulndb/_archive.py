"""Where OSV records come from: a zip (OSV's per-ecosystem ``all.zip``), one ``.json`` file or
a folder of them, read one record at a time within the limits below (docs/scanning.md).

A source is checked whole before its first record is read, from the sizes the zip's central
directory declares (``zipfile`` never inflates a member past its declared size: it stops
there and fails the CRC) or the files' sizes; a source over a limit is refused whole, so a
zip bomb costs a look at its directory. Each record is then read with a bound of its own.

For scale, OSV's largest per-ecosystem archives (npm, PyPI, Debian) inflate to a few hundred
MB to about 1 GB in all, of records from 1 KB to a few hundred KB each.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from garrison.errors import InvalidInput
from garrison.text import clip

MIB = 1 << 20
GIB = 1 << 30

MAX_RECORD_BYTES = 16 * MIB  # one record: a file, or a zip member once inflated
MAX_SOURCE_BYTES = 8 * GIB  # every record of one zip or folder together, inflated
# Members compressed otherwise are refused: zipfile inflates bzip2 and LZMA data a whole
# read at a time, without the bound it keeps for deflate.
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

Document = tuple[str, bytes | Exception]


def iter_documents(path: Path) -> Iterator[Document]:
    """(name, bytes) for each JSON document; an unreadable one gives its error instead.

    Raises ``InvalidInput`` before returning when the source is over a limit."""
    if path.is_dir():
        files = _json_files(path)
        _check_sizes(path, ((str(f.relative_to(path)), _size(f)) for f in files), "")
        return _file_documents(path, files)
    if path.is_file() and zipfile.is_zipfile(path):
        archive, members = _open_checked(path)
        return _zip_documents(archive, members)
    if path.is_file() and path.suffix == ".json":
        _check_sizes(path, [(path.name, _size(path))], "")
        return _file_documents(path.parent, [path])
    raise InvalidInput(f"{path} is not an OSV zip, a .json file or a folder of them")


def _json_files(folder: Path) -> list[Path]:
    try:
        return sorted(folder.rglob("*.json"))
    except OSError as exc:
        raise InvalidInput(f"{folder} cannot be read: {exc.strerror or exc}") from exc


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0  # read as one unreadable record


def _check_sizes(source: Path, sizes: Iterable[tuple[str, int]], how: str) -> None:
    total = 0
    for name, size in sizes:
        if size > MAX_RECORD_BYTES:
            raise InvalidInput(
                f"{source}: {clip(name, 100)!r} is {_amount(size)}{how}; "
                f"an OSV record is at most {MAX_RECORD_BYTES // MIB} MiB"
            )
        total += size
        if total > MAX_SOURCE_BYTES:
            raise InvalidInput(
                f"{source}: its records come to more than {MAX_SOURCE_BYTES // GIB} GiB{how}, "
                "the limit for one archive or folder"
            )


def _amount(size: int) -> str:
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size / MIB:.1f} MiB"


def _file_documents(root: Path, files: list[Path]) -> Iterator[Document]:
    for file in files:
        yield str(file.relative_to(root)), _read_file(file)


def _read_file(file: Path) -> bytes | Exception:
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:  # one unreadable file is one invalid record
        return exc
    return _bounded(data)


def _bounded(data: bytes) -> bytes | Exception:
    if len(data) > MAX_RECORD_BYTES:  # grew since it was checked, or lied about its size
        return InvalidInput(f"larger than {MAX_RECORD_BYTES // MIB} MiB")
    return data


def _open_checked(path: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{path} is not a readable zip: {exc}") from exc
    members = [i for i in archive.infolist() if not i.is_dir() and i.filename.endswith(".json")]
    try:
        _check_members(path, members)
    except InvalidInput:
        archive.close()
        raise
    return archive, members


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    for info in members:
        if info.compress_type not in METHODS:
            raise InvalidInput(
                f"{path}: {clip(info.filename, 100)!r} is compressed with zip method "
                f"{info.compress_type}; an OSV archive is stored or deflated"
            )
        if info.flag_bits & 0x1:
            raise InvalidInput(f"{path}: {clip(info.filename, 100)!r} is encrypted")
    _check_sizes(path, ((i.filename, i.file_size) for i in members), " inflated")


def _zip_documents(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> Iterator[Document]:
    with archive:
        for info in members:
            yield info.filename, _read_member(archive, info)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | Exception:
    try:
        with archive.open(info) as member:
            data = member.read(MAX_RECORD_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        return exc
    return _bounded(data)
