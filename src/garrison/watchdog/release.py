"""Let a stalled defender's waiting events through, whatever its fanotify groups are.

Killing the defender is not enough on its own. A process that waits for a permission answer
pins the marks of *every* fanotify group that has a mark on the file it touches (the exec
sensor's, the file sensor's, the directory marks…: ``fsnotify_prepare_user_wait``), and
destroying a group waits, uninterruptibly, until no process pins its marks
(``fsnotify_destroy_group``). A dying process releases its files one after the other: when a
notification group goes before the permission group, its destruction waits for the exec that
waits for the permission group, which is never released — the defender never finishes dying
and the exec never runs. (Seen here: `runc init` in ``fanotify_handle_event`` and the
defender's last thread in ``fsnotify_destroy_group`` for minutes.) The defender gives its
permission groups the highest fds, which a dying process releases first
(``sensors/fanotify.py``), but two permission groups on one file system can still hold each
other that way.

So the watchdog first takes a copy of each of the defender's fanotify fds (``pidfd_getfd``,
Linux 5.6; the defender is its child), kills it — its exit then only drops references, the
groups live on in the copies — and closes the copies all at once, one thread each: every
group's release answers its waiting events (FAN_ALLOW) at the same time, so no destruction
waits on another.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SYS_PIDFD_GETFD = 438  # the same number on every architecture (the generic syscall table)
CLOSE_SECONDS = 5.0
_libc = ctypes.CDLL(None, use_errno=True)


def fanotify_fds(pid: int) -> list[int]:
    """The fd numbers of ``pid``'s fanotify groups."""
    found = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(entry) == "anon_inode:[fanotify]":
                found.append(int(entry.name))
    return sorted(found)


def take_fanotify_fds(pid: int) -> list[int]:
    """Copies, in this process, of ``pid``'s fanotify fds; none when the kernel refuses."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        log.warning("watchdog: cannot open pid %d: %s", pid, exc)
        return []
    copies = []
    try:
        for target in fanotify_fds(pid):
            fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, target, 0)
            if fd < 0:
                err = ctypes.get_errno()
                log.warning("watchdog: pidfd_getfd(%d) failed: %s", target, os.strerror(err))
                continue
            copies.append(fd)
    except OSError as exc:
        log.warning("watchdog: fds of pid %d unreadable: %s", pid, exc)
    finally:
        os.close(pidfd)
    return copies


def close_together(fds: list[int], timeout: float = CLOSE_SECONDS) -> bool:
    """Close each fd on a thread of its own, at once; False if one is still closing after
    ``timeout`` (its thread is left to finish)."""
    threads = [threading.Thread(target=_close, args=(fd,), daemon=True) for fd in fds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return not any(thread.is_alive() for thread in threads)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
