"""``tarfile`` in stream mode, with what it lets a malformed archive do bounded and mapped.

The standard library's reader trusts an archive more than a scanner can (CPython 3.11):

- it reads an extended header (pax, GNU long name) whole into memory, whatever size the
  header claims: one is refused here past ``MAX_HEADER``;
- a pax header's GNU sparse fields and ``hdrcharset`` are parsed unguarded, so bad ones end
  in ``ValueError`` (``int()``, ``UnicodeDecodeError``) rather than ``tarfile.ReadError``;
- each extended header reads the next one recursively, so a chain of a thousand ends in
  ``RecursionError``;
- a gzip stream cut inside its header ends in ``TypeError`` (``ord()`` of nothing, in
  ``_Stream._init_read_gz``);
- names that are not UTF-8 come out with lone surrogates (``surrogateescape``), which cannot
  be written out again: they are read with U+FFFD instead.

All but the last end here as ``tarfile.ReadError``, the error of a corrupt archive.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import IO, Literal

from garrison.scan.inventory.limits import MAX_HEADER

_EXTENDED = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


class _Header(tarfile.TarInfo):
    """A member header that refuses an oversized extended header before it is read, and
    reports a malformed one as a corrupt archive."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        # tarfile's own hook for each header read (private, stable since Python 2.7).
        if self.type in _EXTENDED and self.size > MAX_HEADER:
            raise tarfile.ReadError(f"extended header of {self.size} bytes")
        try:
            return super()._proc_member(tar)  # type: ignore[misc,no-any-return]
        except ValueError as exc:
            raise tarfile.ReadError(f"malformed extended header ({exc})") from exc


def open_stream(fileobj: IO[bytes], mode: Literal["r|", "r|*"]) -> tarfile.TarFile:
    """``tarfile.open(fileobj=…, mode=mode)`` for a stream (``"r|"``, ``"r|*"``), which reads
    the first header at once."""
    try:
        return tarfile.open(fileobj=fileobj, mode=mode, tarinfo=_Header, errors="replace")
    except RecursionError as exc:
        raise _too_deep() from exc
    except TypeError as exc:  # only from the gzip header, which open() reads first
        raise tarfile.ReadError("gzip header cut short") from exc


def headers(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a streamed tar, without the list of every header tarfile keeps (a
    layer can hold a hundred thousand files)."""
    member = _next(tar)
    while member is not None:
        yield member
        tar.members.clear()  # type: ignore[attr-defined]  # private list, not in typeshed
        member = _next(tar)


def _next(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except RecursionError as exc:
        raise _too_deep() from exc


def _too_deep() -> tarfile.ReadError:
    return tarfile.ReadError("extended headers chained too deep")
