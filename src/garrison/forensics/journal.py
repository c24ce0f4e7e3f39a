"""The journal: what Garrison saw each container do, kept on disk in a bounded ring.

Process spawns (pid, parent, path, command line, user), files written (and by which program),
listening ports and connections, audits, starts and stops: one JSON line each, in segment
files under ``<data dir>/forensics/journal``. The ring holds ``max_bytes`` in all (100 MB by
default, as Prisma keeps per host); the oldest segment goes first. It lives on disk, so a
bundle made after a defender restart still holds what the container did before it.

``record`` is called on the defender's loop and only appends to a bounded buffer; a thread
writes the buffer out twice a second. When the writer cannot keep up (a disk far slower than
the events) the oldest buffered entries are dropped and counted, never the caller delayed.
A slice for one container is read back by scanning the segments with a substring test per
line (a JSON decode only for the container's own lines).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from garrison.store.datadir import open_private, secure_data_dir

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
SEGMENTS = 8  # the ring is this many segments: dropping one frees an eighth
BUFFER = 50_000  # entries waiting for the writer; beyond that the oldest are dropped
FLUSH_SECONDS = 0.5
SLICE_MAX = 20_000  # entries of one container a slice keeps (its newest)

Entry = dict[str, Any]


class Journal:
    """The ring of segments in ``folder``; ``start()`` runs its writer thread."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.enabled = max_bytes > 0
        self.max_bytes = max(max_bytes, SEGMENTS * 4096)
        self.segment_bytes = self.max_bytes // SEGMENTS
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._buffer: collections.deque[Entry] = collections.deque(maxlen=BUFFER)
        self._wake = threading.Condition()
        self._write_lock = threading.Lock()  # one writer at a time: the thread or a flush
        self._stopping = False
        self._thread: threading.Thread | None = None
        secure_data_dir(folder)

    def start(self) -> Journal:
        self._thread = threading.Thread(target=self._run, name="journal", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(10.0)
        self.flush()

    def record(self, container_id: str, kind: str, when: float, **fields: Any) -> None:
        """Keep one thing a container did (never blocks on the disk)."""
        if not self.enabled:
            return
        if len(self._buffer) == BUFFER:
            self.dropped += 1
        self._buffer.append({"time": when, "containerId": container_id, "kind": kind, **fields})

    def flush(self) -> None:
        """Write out what is buffered now (a slice then holds everything recorded before)."""
        with self._write_lock:
            self._write_buffered()

    def slice(self, container_id: str, limit: int = SLICE_MAX) -> list[Entry]:
        """The container's entries, oldest first (its newest ``limit`` when there are more)."""
        self.flush()
        kept: collections.deque[Entry] = collections.deque(maxlen=limit)
        needle = f'"containerId": "{container_id}"'
        for path in self._segments():
            with contextlib.suppress(FileNotFoundError):  # dropped by the ring meanwhile
                kept.extend(e for e in _entries(path, needle) if e["containerId"] == container_id)
        return list(kept)

    def counters(self) -> dict[str, int]:
        return {"written": self.written, "dropped": self.dropped, "errors": self.errors}

    # -- the writer ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                self._wake.wait(FLUSH_SECONDS)
            self.flush()

    def _write_buffered(self) -> None:
        lines = []
        while self._buffer:
            lines.append(json.dumps(self._buffer.popleft(), separators=(", ", ": ")))
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
        try:
            self._append(data)
        except OSError as exc:
            self.errors += 1
            self.dropped += len(lines)
            if self.errors == 1 or self.errors % 100 == 0:
                log.error("journal: cannot write %s (%s); entries dropped", self.folder, exc)
            return
        self.written += len(lines)

    def _append(self, data: bytes) -> None:
        segments = self._segments()
        current = segments[-1] if segments else None
        if current is None or current.stat().st_size >= self.segment_bytes:
            current = self.folder / f"{_number(current) + 1:09d}.jsonl"
        fd = open_private(current, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest segments while the ring holds more than ``max_bytes``."""
        segments = self._segments()
        sizes = {p: p.stat().st_size for p in segments}
        total = sum(sizes.values())
        for path in segments[:-1]:
            if total <= self.max_bytes:
                return
            path.unlink(missing_ok=True)
            total -= sizes[path]

    def _segments(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("*.jsonl") if p.stem.isdigit())


def _number(path: Path | None) -> int:
    return 0 if path is None else int(path.stem)


def _entries(path: Path, needle: str) -> Iterator[Entry]:
    with path.open("r", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if needle not in line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash mid-write
                continue
            if isinstance(entry, Mapping) and "containerId" in entry:
                yield dict(entry)
