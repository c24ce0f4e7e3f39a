"""The fleet's few files (the CA's key and certificate, its revoked serials, a host's key and
certificate), written whole or not at all and owner-only, like every file Garrison keeps.

A file is written to a fresh 0600 temporary name beside it, synced, then moved into place:
a reader (the console checking a peer while ``garrison`` revokes one) sees the old file or
the new one, never half of either. A key that must not be overwritten is moved with
``link`` instead of ``rename``: ``link`` fails when the name exists, so two ``create`` racing
in one folder cannot both believe they made the CA.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from garrison.errors import StoreError
from garrison.store.datadir import open_private


def write_private(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """``data`` as the whole of ``path`` (0600), atomically; StoreError when it cannot, and
    when ``overwrite`` is False and ``path`` exists."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_synced(temporary, data)
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError as exc:
        raise StoreError(f"{path} exists already: not overwritten") from exc
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # after a link, or a failure; a rename left nothing to remove


def read(path: Path, what: str) -> bytes:
    """The bytes of ``path``; StoreError naming ``what`` the file is when it is missing or
    cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise StoreError(f"{what} is missing: no {path}") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _write_synced(path: Path, data: bytes) -> None:
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
