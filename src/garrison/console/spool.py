"""The audit spool: an audit is appended to a file in the data directory the moment the
defender makes it, before it waits in memory for the link's writer, so that one made just
before a SIGKILL is not lost (a ``write(2)`` reaches the page cache, which outlives the
process; a power loss is the store's ``synchronous`` setting's business).

Each line is ``{"seq": N, "audit": {...}}``. The writer stores a batch together with the
highest ``seq`` it holds (the store's *spool mark*, in the same transaction); a link that opens
the spool again stores the lines past the mark — each once, whatever was stored before the
crash — and the file is emptied whenever everything in it is stored. A line cut short by a
crash mid-write is skipped. When the disk is full, appends fail and audits wait in memory
only (bounded by the link, which counts what it drops).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from pathlib import Path

from garrison.audit.record import Audit
from garrison.store.base import audit_from_doc
from garrison.store.datadir import open_private

log = logging.getLogger(__name__)

SPOOL_NAME = "audits.spool"


class AuditSpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_private(path, os.O_RDWR | os.O_APPEND)  # audits: the owner's alone
        self.errors = 0  # appends that failed (a full disk): those audits wait in memory only
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """A line a crash cut short would swallow the next one: end it first."""
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            with contextlib.suppress(OSError):
                os.write(self._fd, b"\n")

    @classmethod
    def in_dir(cls, data_dir: Path) -> AuditSpool:
        return cls(Path(data_dir) / SPOOL_NAME)

    def append(self, seq: int, audit: Audit) -> bool:
        """Append one audit; False when it could not be written (it then waits in memory)."""
        doc = {"seq": seq, "audit": dataclasses.asdict(audit)}
        try:
            line = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode() + b"\n"
            os.write(self._fd, line)
        except (OSError, ValueError):  # ValueError: a NaN, which the store refuses anyway
            self.errors += 1
            return False
        return True

    def read(self, after: int) -> list[tuple[int, Audit]]:
        """The spooled audits numbered above ``after``, in order."""
        found = []
        with open(self.path, "rb") as f:
            for line in f:
                entry = _parse(line)
                if entry is not None and entry[0] > after:
                    found.append(entry)
        return found

    def empty(self) -> None:
        """Everything spooled is stored: start the file over."""
        try:
            os.ftruncate(self._fd, 0)
        except OSError as exc:
            log.warning("audit spool %s not emptied: %s", self.path, exc)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _parse(line: bytes) -> tuple[int, Audit] | None:
    try:
        doc = json.loads(line)
        return int(doc["seq"]), audit_from_doc(doc["audit"], id=None)
    except (ValueError, KeyError, TypeError):
        return None  # cut short by a crash mid-write, or not ours
