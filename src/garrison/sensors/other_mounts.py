"""A container's other file systems: volumes, bind mounts, tmpfs, and the files Docker manages.

The overlay's filesystem mark covers the root file system only. A binary on a volume or a
tmpfs, or ``/etc/hosts`` (a bind mount of a file Docker writes), lives elsewhere. Those
mounts get a fanotify *mount* mark each — on the container's own copy of the mount, reached
through ``/proc/PID/root`` (the host's copy, under MergedDir, sees nothing of what the
container does) — so that their execs are judged while they wait, and their writes seen and
refused, like the root file system's.

A mount is marked only once it is proven to be the one the container's mountinfo lists at
that point: the path is opened (O_PATH) and its mount id compared with the container's
``/proc/PID/mountinfo``, so no symlink inside the container can lead the mark elsewhere.
Events name their mount by the mount id of their fd (``/proc/self/fdinfo``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from garrison.sensors.mountinfo import parse_mountinfo

PROC = "/proc"


@dataclass(frozen=True, slots=True)
class ContainerMount:
    point: str  # where the container sees it
    mount_id: int  # the container's mount there (mountinfo's first field)


def container_mounts(
    pid: int, points: Iterable[str], proc: str = PROC
) -> tuple[ContainerMount, ...]:
    """The container's mounts at ``points`` (the top one at each), as its mountinfo lists
    them; points with no mount of their own are left out. () when the process is gone."""
    try:
        with open(f"{proc}/{pid}/mountinfo", encoding="utf-8", errors="replace") as text:
            mounts = parse_mountinfo(text.read())
    except OSError:
        return ()
    top = {m.point: m.id for m in mounts}  # a later line is mounted over an earlier one
    wanted = dict.fromkeys(points)
    return tuple(ContainerMount(p, top[p]) for p in wanted if p in top)


def open_mount(pid: int, mount: ContainerMount, proc: str = PROC) -> int | None:
    """An O_PATH descriptor of the container's mount at ``mount.point``; None when the path
    no longer leads to that very mount (gone, or led elsewhere)."""
    try:
        fd = os.open(f"{proc}/{pid}/root{mount.point}", os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    if mount_id(fd) == mount.mount_id:
        return fd
    os.close(fd)
    return None


def mount_id(fd: int) -> int | None:
    """The mount id of an open file (``mnt_id`` of ``/proc/self/fdinfo/FD``)."""
    try:
        with open(f"{PROC}/self/fdinfo/{fd}", encoding="ascii", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key == "mnt_id":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None
