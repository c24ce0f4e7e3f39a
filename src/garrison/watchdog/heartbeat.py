"""Heartbeats: how the defender's threads show the watchdog, another process, that they answer.

The watchdog makes a page of shared memory (a memfd) and hands it to the defender by fd number
(``GARRISON_WATCHDOG_FD``). It holds a header and ``SLOTS`` slots; each slot is claimed by one
thread that must keep answering — a fanotify permission reader (containers wait on it) or the
defender's loop — and holds its last beat (``CLOCK_MONOTONIC`` nanoseconds, one clock for every
process of the host), the silence it may keep before it counts as stalled (0: the watchdog's
stall timeout; the defender's loop, which waits on the store now and then, asks for more), and
its name. A slot whose
beat is 0 is free. Beats are aligned 8-byte stores: the watchdog may read a beat a moment old,
never a torn one. The header's ``acknowledged`` counts the watchdog's reports the defender has
stored (see :mod:`garrison.watchdog.supervisor`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass

ENV_FD = "GARRISON_WATCHDOG_FD"
_HEADER = struct.Struct("=QQ")  # acknowledged reports, reserved
_SLOT = struct.Struct("=QQ32s")  # last beat (ns), bound (ns), name
SLOTS = 64
SIZE = _HEADER.size + SLOTS * _SLOT.size


@dataclass(frozen=True, slots=True)
class Stall:
    """A slot whose holder has not beaten within its bound."""

    name: str
    silent: float  # seconds since its last beat
    bound: float


class Board:
    """The shared page, seen from either side."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, SIZE)
        self._lock = threading.Lock()  # claims, within one process

    @classmethod
    def create(cls) -> Board:
        """A new, empty page (the watchdog's side); its fd is inheritable only when passed."""
        fd = os.memfd_create("garrison-heartbeats", os.MFD_CLOEXEC)
        os.ftruncate(fd, SIZE)
        return cls(fd)

    def close(self) -> None:
        self._map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)

    # -- the defender's side --------------------------------------------------------------------

    def claim(self, name: str, bound: float = 0.0) -> Beat:
        """A free slot for a thread that promises never to be silent longer than ``bound``
        seconds (0: than the watchdog's stall timeout)."""
        with self._lock:
            for index in range(SLOTS):
                offset = _HEADER.size + index * _SLOT.size
                if _SLOT.unpack_from(self._map, offset)[0] == 0:
                    encoded = name.encode()[: _SLOT.size - 16]
                    # One store of the beat, bound and name: a slot seen claimed is never
                    # seen without a beat of now.
                    now = time.monotonic_ns()
                    _SLOT.pack_into(self._map, offset, now, int(bound * 1e9), encoded)
                    return Beat(self._map, offset)
        return Beat(None, 0)  # a full board: this thread goes unwatched

    def acknowledge(self, count: int) -> None:
        """The watchdog's first ``count`` reports are stored."""
        _HEADER.pack_into(self._map, 0, count, 0)

    # -- the watchdog's side --------------------------------------------------------------------

    def acknowledged(self) -> int:
        return int(_HEADER.unpack_from(self._map, 0)[0])

    def stalled(self, timeout: float, now_ns: int | None = None) -> list[Stall]:
        """The claimed slots silent for longer than their bound, and at least ``timeout``."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        found = []
        for index in range(SLOTS):
            last, bound, name = _SLOT.unpack_from(self._map, _HEADER.size + index * _SLOT.size)
            bound = max(bound, int(timeout * 1e9))
            if last and now - last > bound:
                label = name.rstrip(b"\0").decode(errors="replace")
                found.append(Stall(label, (now - last) / 1e9, bound / 1e9))
        return found

    def beating(self) -> bool:
        """Has any slot been claimed (the defender's readers have started)?"""
        return any(
            _SLOT.unpack_from(self._map, _HEADER.size + i * _SLOT.size)[0] for i in range(SLOTS)
        )


class Beat:
    """One claimed slot. ``beat()`` costs a clock read and a store."""

    def __init__(self, page: mmap.mmap | None, offset: int) -> None:
        self._page = page
        self._offset = offset

    def beat(self) -> None:
        if self._page is not None:
            struct.pack_into("=Q", self._page, self._offset, time.monotonic_ns())

    def release(self) -> None:
        """The thread ends: nothing to watch in this slot any more."""
        if self._page is not None:
            struct.pack_into("=Q", self._page, self._offset, 0)
            self._page = None


_board: Board | None = None
_board_lock = threading.Lock()


def defender_board() -> Board | None:
    """The page the watchdog handed to this process, if it runs under one (read once; the fd
    is then closed on exec, so that helpers the defender runs do not hold it)."""
    global _board  # noqa: PLW0603 - one page per process, handed down by the watchdog
    with _board_lock:
        if _board is None and os.environ.get(ENV_FD, "").isdigit():
            fd = int(os.environ[ENV_FD])
            os.set_inheritable(fd, False)
            _board = Board(fd)
        return _board


def claim(name: str, bound: float = 0.0) -> Beat:
    """A slot on this process's board, or a beat that goes nowhere when no watchdog runs."""
    board = defender_board()
    return board.claim(name, bound) if board is not None else Beat(None, 0)
