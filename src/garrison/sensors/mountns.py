"""Read-only mounts inside a container's mount namespace, made by a child process.

    python -m garrison.sensors.mountns PID [PATH ...]

makes each PATH read-only in the mount namespace of process PID — the path's subtree cloned
with its submounts and moved onto itself read-only (open_tree(2) with OPEN_TREE_CLONE |
AT_RECURSIVE, mount_setattr(2) MOUNT_ATTR_RDONLY with AT_RECURSIVE, move_mount(2)) — and
removes the read-only mounts it made before at paths not named. It prints one JSON object:
``{"mounted": {path: real path}, "kept": {...}, "removed": [...], "failed": {path: reason}}``.

A child process because setns(CLONE_NEWNS) refuses a caller with threads (the defender has
several); standard library only, so that it starts in a few tens of milliseconds.

It keeps the mount points it made in ``/run/garrison/mounts/NS.json`` (NS: the mount
namespace's inode; ``GARRISON_MOUNTS_STATE`` names another folder), so that a restarted
defender finds the mounts of the one before, and removes nothing else: Docker stacks
read-only mounts of its own (``/proc/sys`` and others) that must stay. A mount listed there
is removed only while it is still the read-only one stacked on its own path. A process in a
container without CAP_SYS_ADMIN cannot mount or unmount.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from dataclasses import asdict, dataclass, field

from garrison.sensors.mountinfo import Mount, parse_mountinfo

# x86_64 and the generic table agree on these numbers (include/uapi/asm-generic/unistd.h).
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_RECURSIVE = 1, 0o2000000, 0x8000
AT_EMPTY_PATH, AT_FDCWD, MOVE_MOUNT_F_EMPTY_PATH = 0x1000, -100, 0x4
MOUNT_ATTR_RDONLY, MNT_DETACH, CLONE_NEWNS = 0x1, 0x2, 0x00020000
# Not made read-only: "/" (the whole container), and the kernel's and devices' own file
# systems, where a read-only mount would not mean "writes refused" (a device node stays
# writable on a read-only mount).
UNSUPPORTED = ("/proc", "/sys", "/dev")


class MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def top_mount(mounts: list[Mount], point: str) -> Mount | None:
    """The mount visible at ``point``: the one at it that no other mount at it sits on."""
    at = [m for m in mounts if m.point == point]
    below = {m.parent for m in at}
    tops = [m for m in at if m.id not in below]
    return tops[-1] if tops else None


def stacked_on_itself(mounts: list[Mount], mount: Mount) -> bool:
    """A read-only mount stacked on its own path (see the module's docstring)."""
    if not mount.read_only or mount.point == "/":
        return False
    parent = next((m for m in mounts if m.id == mount.parent), None)
    if parent is None:
        return False
    if parent.point == mount.point:
        return True
    inside = os.path.relpath(mount.point, parent.point)
    return parent.dev == mount.dev and mount.root == os.path.normpath(
        os.path.join(parent.root, inside)
    )


def supported(path: str) -> bool:
    return path != "/" and not any(path == p or path.startswith(p + "/") for p in UNSUPPORTED)


class Syscalls:
    """The new mount API through libc's syscall(2) (Python has no wrapper for it)."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)

    def _check(self, result: int, what: str) -> int:
        if result < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return result

    def setns_mnt(self, pid: int) -> None:
        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._check(self.libc.setns(fd, CLONE_NEWNS), "setns")
        finally:
            os.close(fd)
        os.chdir("/")

    def make_read_only(self, path: str) -> None:
        flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE
        call = self.libc.syscall
        fd = self._check(call(SYS_OPEN_TREE, AT_FDCWD, path.encode(), flags), "open_tree")
        try:
            attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
            size = ctypes.sizeof(attr)
            at = AT_EMPTY_PATH | AT_RECURSIVE
            ref = ctypes.byref(attr)
            self._check(call(SYS_MOUNT_SETATTR, fd, b"", at, ref, size), "mount_setattr")
            to = path.encode()
            empty = MOVE_MOUNT_F_EMPTY_PATH
            self._check(call(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, to, empty), "move_mount")
        finally:
            os.close(fd)

    def detach(self, path: str) -> None:
        self._check(self.libc.umount2(path.encode(), MNT_DETACH), "umount")


def mountinfo(pid: int) -> list[Mount]:
    """Read from the host's /proc before entering: the container's own /proc, mounted in its
    namespace, belongs to its pid namespace, where this process has no /proc/self."""
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


@dataclass
class Report:
    mounted: dict[str, str] = field(default_factory=dict)  # path asked → path mounted
    kept: dict[str, str] = field(default_factory=dict)  # already read-only, by us
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path → why
    state: str = ""  # the host's file that lists the mounts made (gone when none are)


def reconcile(sys_: Syscalls, mounts: list[Mount], made: set[str], wanted: list[str]) -> Report:
    """Mount what is wanted and missing, unmount ours (``made`` before) no longer wanted, in
    our namespace, whose mount table was ``mounts`` on entering."""
    report, real = Report(), {}
    for path in wanted:
        try:
            real[path] = _real(path)
        except OSError as exc:
            report.failed[path] = exc.strerror or str(exc)
    ours = [m for m in mounts if m.point in made and stacked_on_itself(mounts, m)]
    for mount in ours:
        if mount.point not in real.values() and top_mount(mounts, mount.point) == mount:
            try:
                sys_.detach(mount.point)
                report.removed.append(mount.point)
            except OSError as exc:
                report.failed[mount.point] = exc.strerror or str(exc)
    for path, target in real.items():
        top = top_mount(mounts, target)
        if top is not None and top in ours:
            report.kept[path] = target
            continue
        try:
            sys_.make_read_only(target)
            report.mounted[path] = target
        except OSError as exc:
            report.failed[path] = exc.strerror or str(exc)
    return report


def state_folder() -> str:
    return os.environ.get("GARRISON_MOUNTS_STATE", "/run/garrison/mounts")


def state_name(pid: int) -> str:
    """The state file of the mount namespace of ``pid`` (OSError when the pid is gone)."""
    return f"{os.stat(f'/proc/{pid}/ns/mnt').st_ino}.json"


class State:
    """The mount points made in one namespace, kept on the host: its folder is opened before
    entering the container's namespace, whose file system is then all that paths reach."""

    def __init__(self, pid: int) -> None:
        folder = state_folder()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self.name = state_name(pid)
        self.path = os.path.join(os.path.abspath(folder), self.name)
        self.dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def load(self) -> set[str]:
        try:
            fd = os.open(self.name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
            with open(fd, encoding="utf-8") as f:
                return {p for p in json.load(f) if isinstance(p, str)}
        except (OSError, ValueError, TypeError):
            return set()

    def save(self, report: Report) -> None:
        points = sorted({*report.mounted.values(), *report.kept.values()})
        if not points:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.dir_fd)
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        fd = os.open(f"{self.name}.tmp", flags, 0o600, dir_fd=self.dir_fd)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(points, f)
        os.replace(f"{self.name}.tmp", self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)


def _real(path: str) -> str:
    """The path with the container's symbolic links resolved; it must exist."""
    target = os.path.realpath(path)
    if not supported(path) or not supported(target):
        raise OSError(0, f"{target} cannot be made read-only")
    os.lstat(target)
    return target


def main(argv: list[str]) -> int:
    if not argv or not argv[0].isdigit():
        print("usage: python -m garrison.sensors.mountns PID [PATH ...]", file=sys.stderr)
        return 2
    sys_, pid = Syscalls(), int(argv[0])
    try:
        state, mounts = State(pid), mountinfo(pid)
        made = state.load()
        sys_.setns_mnt(pid)
    except OSError as exc:
        print(json.dumps({"error": f"cannot enter the mount namespace: {exc.strerror}"}))
        return 1
    wanted = [os.path.normpath(p) for p in argv[1:] if p.startswith("/")]
    report = reconcile(sys_, mounts, made, wanted)
    report.state = state.path
    try:
        state.save(report)
    except OSError as exc:
        report.failed["(state)"] = f"{state.name}: {exc.strerror}"
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
