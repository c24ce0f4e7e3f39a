"""A containerd container's file system seen from the host: export as tar, diff of overlay.

Both work on what the snapshotter says about the container's snapshot (its mounts). A
running task's root is already mounted (its bundle's ``rootfs``); a stopped container's
snapshot is mounted read-only in a temporary directory for as long as it is read.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

from garrison.errors import RuntimeRefused
from garrison.runtime._ctr import MountSpec

CHUNK = 1024 * 1024
# A snapshot's temporary mount point: the pid of the process that mounted it is in its name,
# so that one left by a process killed midway is known for stale and unmounted.
MOUNT_PREFIX = "garrison-rootfs."
_MOUNT_NAME = re.compile(re.escape(MOUNT_PREFIX) + r"(\d+)\.")
# Docker's change kinds (``docker diff``): C, A, D.
MODIFIED, ADDED, DELETED = 0, 1, 2
_OPAQUE = "trusted.overlay.opaque"


def read_only(mount: MountSpec) -> tuple[str, str, str]:
    """``(type, source, options)`` to mount the snapshot read-only: an overlay gets its upper
    dir as one more lower dir (no upper, no work dir: nothing is written or locked)."""
    if mount.type == "overlay":
        lowers = [d for d in (mount.option("upperdir"), mount.option("lowerdir")) if d]
        return "overlay", "overlay", "ro,lowerdir=" + ":".join(lowers)
    options = [o for o in mount.options if o not in {"rw", "ro"}]
    return mount.type, mount.source, ",".join(["ro", *options])


@contextlib.contextmanager
def mounted(mounts: list[MountSpec]) -> Iterator[str]:
    """The snapshot mounted read-only in a new temporary directory, unmounted at the end."""
    if len(mounts) != 1:
        raise RuntimeRefused(f"cannot mount a snapshot made of {len(mounts)} mounts")
    kind, source, options = read_only(mounts[0])
    unmount_stale()
    target = tempfile.mkdtemp(prefix=f"{MOUNT_PREFIX}{os.getpid()}.")
    try:
        argv = ["mount", "-t", kind, "-o", options, source, target]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeRefused(f"cannot mount the snapshot: {result.stderr.strip()}")
        try:
            yield target
        finally:
            subprocess.run(["umount", target], capture_output=True, timeout=30, check=False)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(target)


def unmount_stale(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Unmount (and remove) the snapshot mounts of processes that no longer run: a defender
    killed during an export leaves its mount behind. Returns the points unmounted."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            points = [line.split()[4] for line in f if len(line.split()) > 4]
    except OSError:
        return []
    stale = [p for p in points if _dead_owner(os.path.basename(p))]
    for point in stale:
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)
        with contextlib.suppress(OSError):
            os.rmdir(point)
    return stale


def _dead_owner(name: str) -> bool:
    match = _MOUNT_NAME.match(name)
    return match is not None and not os.path.exists(f"/proc/{match.group(1)}")


def tar_stream(root: str) -> Iterator[bytes]:
    """``root`` as an uncompressed tar (GNU tar, numeric owners, this file system only),
    with paths relative to it as ``docker export`` writes them."""
    names = sorted(os.listdir(root))
    argv = ["tar", "-C", root, "--numeric-owner", "--one-file-system", "-cf", "-", "--", *names]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        while chunk := process.stdout.read(CHUNK):
            yield chunk
        if process.wait() not in {0, 1}:  # 1: a file changed while it was read
            raise RuntimeRefused(f"tar of {root} failed: {process.stderr.read().decode()[-300:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def overlay_diff(upper: str, lowers: list[str]) -> list[dict[str, Any]]:
    """What the upper dir changes against the lower dirs, in ``docker diff``'s form.

    A whiteout (a 0/0 character device) is a deletion; an entry that exists below is a
    change, else an addition. Below an opaque directory, nothing below counts: all is added.
    """
    changes: list[dict[str, Any]] = []
    opaque: set[str] = set()  # directories (as container paths) hiding what is below
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        here = "/" + os.path.relpath(dirpath, upper) if dirpath != upper else ""
        if _opaque(dirpath) or (here and here.rsplit("/", 1)[0] in opaque):
            opaque.add(here)
        for name in sorted(dirnames + filenames):
            path = f"{here}/{name}"
            kind = _kind(os.path.join(dirpath, name), path, [] if here in opaque else lowers)
            changes.append({"Path": path, "Kind": kind})
    return changes


def _kind(full: str, path: str, lowers: list[str]) -> int:
    info = os.lstat(full)
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
        return DELETED
    return MODIFIED if any(os.path.lexists(d + path) for d in lowers) else ADDED


def _opaque(directory: str) -> bool:
    try:
        return os.getxattr(directory, _OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False
