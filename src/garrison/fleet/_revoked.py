"""The serials a console CA kept in a folder has revoked (``ConsoleCA.load``): a JSON file in
the CA's folder, read again whenever it changes. A console's CA in its store keeps them in the
store instead (``garrison.fleet.castore``).

Python's ``ssl`` loads a CRL into a context once and never again, so a live console asks this
file after each handshake instead (``ConsoleCA.check_peer``). ``garrison`` revoking a host may
be another process than the console: the file is replaced atomically, and a stat per check
(its inode changes with each replacement) tells the console when to read it again.

The file must exist: a CA folder whose list went missing would otherwise let every revoked
host back in without a word, so a missing or unreadable list is an error, not an empty list.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from garrison.errors import InvalidInput, StoreError
from garrison.fleet._files import read, write_private


@dataclass(frozen=True)
class Revoked:
    """One revoked certificate: its serial and when it was revoked."""

    serial: int
    when: datetime


class RevokedSerials:
    """The list in ``path``; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime) last read
        self._entries: dict[int, Revoked] = {}

    @classmethod
    def create(cls, path: Path) -> RevokedSerials:
        """An empty list in a new file (StoreError when one exists)."""
        write_private(path, _dump([]), overwrite=False)
        return cls(path)

    def entries(self) -> list[Revoked]:
        """Every revoked serial, oldest first; StoreError or InvalidInput when the file is
        missing or corrupt."""
        with self._lock:
            self._refresh()
            return sorted(self._entries.values(), key=lambda r: (r.when, r.serial))

    def is_revoked(self, serial: int) -> bool:
        with self._lock:
            self._refresh()
            return serial in self._entries

    def revoke(self, serial: int, when: datetime, host: str = "") -> bool:
        """Add ``serial`` (the file keeps no ``host``); False when it was revoked already.
        Two processes revoking at the same instant may lose one of the two (last rename
        wins): revocation is an operator's command, and its effect shows at once in
        ``entries``."""
        with self._lock:
            self._refresh()
            if serial in self._entries:
                return False
            entries = [*self._entries.values(), Revoked(serial, when)]
            write_private(self.path, _dump(entries))
            self._seen = None  # read back what was written, with its new inode
            self._refresh()
            return True

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StoreError(f"revoked serials list {self.path} is missing or unreadable") from exc
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            loaded = _parse(read(self.path, "the revoked serials list"), self.path)
            self._entries = {r.serial: r for r in loaded}
            self._seen = seen


def _dump(entries: list[Revoked]) -> bytes:
    rows = [{"serial": f"{r.serial:x}", "revoked": r.when.isoformat()} for r in entries]
    return json.dumps({"revoked": rows}, indent=1).encode() + b"\n"


def _parse(data: bytes, path: Path) -> list[Revoked]:
    try:
        rows = json.loads(data)["revoked"]
        return [_row(row) for row in rows]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"{path}: not a list of revoked serials ({exc})") from exc


def _row(row: dict[str, str]) -> Revoked:
    when = datetime.fromisoformat(row["revoked"])
    if when.tzinfo is None:
        raise ValueError(f"revocation time {row['revoked']!r} has no time zone")
    return Revoked(int(row["serial"], 16), when.astimezone(UTC))
