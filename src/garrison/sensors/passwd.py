"""User names from a container's own ``/etc/passwd``, read through its MergedDir.

The file is opened with ``openat2(RESOLVE_IN_ROOT)`` (openat2(2)): a container whose
``/etc/passwd`` is a symlink to ``/etc/shadow`` or ``../../..`` stays inside its own root
instead of making Garrison read the host's files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time

from garrison.errors import SensorError

SYS_OPENAT2 = 437  # x86_64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
MAX_PASSWD = 4 * 1024 * 1024
RELOAD_INTERVAL = 1.0  # re-read at most this often when an unknown uid shows up

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def parse_passwd(raw: bytes) -> dict[int, str]:
    """uid → name of a passwd(5) file; the first line of a uid wins, as getpwuid() does."""
    names: dict[int, str] = {}
    for line in raw.splitlines():
        fields = line.split(b":")
        if len(fields) < 3 or not fields[2].isdigit() or line.startswith(b"#"):
            continue
        names.setdefault(int(fields[2]), os.fsdecode(fields[0]))
    return names


def open_in_root(root: str, path: str) -> int:
    """An O_RDONLY fd of ``path`` resolved as if ``root`` were ``/`` (symlinks included)."""
    how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    dirfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = _libc.syscall(SYS_OPENAT2, dirfd, os.fsencode(path), ctypes.byref(how), 24)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), os.path.join(root, path.lstrip("/")))
        return int(fd)
    finally:
        os.close(dirfd)


def read_in_root(root: str, path: str, limit: int = MAX_PASSWD) -> bytes:
    fd = open_in_root(root, path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit)
    finally:
        os.close(fd)


class UserNames:
    """uid → name for one container root, cached; an unknown uid triggers a (rate-limited)
    re-read, so a user added at run time is named once the file shows it."""

    def __init__(self, root: str, reload_interval: float = RELOAD_INTERVAL) -> None:
        self.root = root
        self.reload_interval = reload_interval
        self._names: dict[int, str] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def load(self) -> dict[int, str]:
        """Read the file now; an unreadable file (none in the image) gives no names."""
        try:
            names = parse_passwd(read_in_root(self.root, "/etc/passwd"))
        except OSError:
            names = {}
        with self._lock:
            self._names, self._loaded_at = names, time.monotonic()
        return names

    def name(self, uid: int) -> str:
        """The user's name, or ``str(uid)`` when the container's passwd has no such uid."""
        found = self._names.get(uid)
        if found is not None:
            return found
        if time.monotonic() - self._loaded_at >= self.reload_interval:
            found = self.load().get(uid)
        return found if found is not None else str(uid)


def check_root(root: str | None) -> str:
    """A container root that exists, or SensorError naming it."""
    if not root or not os.path.isdir(root):
        raise SensorError(f"container root file system {root!r} is not a directory")
    return root
