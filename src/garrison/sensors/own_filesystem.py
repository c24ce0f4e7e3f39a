"""Is a container's root a file system of its own, safe to give a filesystem mark?

A fanotify FAN_MARK_FILESYSTEM mark covers a whole super block (fanotify_mark(2)). On Docker's
overlay2 each container's MergedDir is an overlay of its own; but with the vfs storage driver
the "root" is a plain directory of the host's file system, and a MergedDir that is not mounted
in the defender's mount namespace is an empty directory of the host's. A mark there would make
every exec or open on the host wait for the defender, and a stalled defender freeze the host.
So a root is marked only when it is a mount point here, of a per-container type, on a device
of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from garrison.errors import NotOwnFilesystem, SensorError
from garrison.sensors.mountinfo import Mount
from garrison.sensors.mountns import mountinfo, top_mount
from garrison.sensors.passwd import check_root

# File system types that hold one container's root and nothing else: overlay2's overlay.
PER_CONTAINER_TYPES = frozenset({"overlay"})


@dataclass(frozen=True, slots=True)
class Devices:
    """st_dev of a container's root, of the directory holding it, and of the host's ``/``."""

    root: int
    parent: int
    host: int


def device_name(dev: int) -> str:
    return f"{os.major(dev)}:{os.minor(dev)}"


def why_not_own(path: str, mounts: list[Mount], devs: Devices) -> str | None:
    """Why ``path`` (a real path) is not a file system of its own; None when it is."""
    dev = device_name(devs.root)
    mount = top_mount(mounts, path)
    if mount is None:
        return f"{path} {_what_directory(path, devs)}, not a file system of its own"
    if mount.fstype not in PER_CONTAINER_TYPES:
        known = ", ".join(sorted(PER_CONTAINER_TYPES))
        return f"{path} is a mount of {mount.fstype}, not of a container's own type ({known})"
    if mount.dev != dev:  # the table changed between the stat and the read
        return f"{path} is device {dev}, not the {mount.fstype} mount there ({mount.dev})"
    for other, name in ((devs.host, "/"), (devs.parent, os.path.dirname(path))):
        if devs.root == other:
            return f"{path} is on device {dev}, like {name}: not a file system of its own"
    return None


def _what_directory(path: str, devs: Devices) -> str:
    dev = device_name(devs.root)
    if devs.root == devs.host:
        return f"is a directory on the host's file system (device {dev}, like /)"
    if devs.root == devs.parent:
        return f"is a directory on the file system of {os.path.dirname(path)} (device {dev})"
    return f"is not a mount point in the defender's mount namespace (device {dev})"


def own_root(container_id: str, root: str | None) -> tuple[str, int]:
    """``root`` and its device, once checked to be the container's own file system:
    NotOwnFilesystem if it is not, SensorError if it cannot be read (a container gone)."""
    if not root:
        why = "the runtime names no root file system for it (no MergedDir: not overlay2)"
        raise NotOwnFilesystem(container_id, root, why)
    real = os.path.realpath(check_root(root))  # mountinfo names mount points by real path
    try:
        devs = Devices(_dev(real), _dev(os.path.dirname(real)), _dev("/"))
        mounts = mountinfo(os.getpid())  # the defender's own mount namespace
    except OSError as exc:
        raise SensorError(f"cannot check {root}: {exc.strerror}") from exc
    refused = why_not_own(real, mounts, devs)
    if refused is not None:
        raise NotOwnFilesystem(container_id, root, refused)
    return root, devs.root


def _dev(path: str) -> int:
    return os.stat(path).st_dev
