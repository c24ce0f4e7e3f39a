"""A small typed wrapper of the fanotify API (fanotify(7)) through libc and ctypes.

Only what Garrison's sensors use: create a group, add and remove marks, read events in
batches (one ``read()`` returns as many events as fit the buffer) and answer permission
events. Constant values are those of ``include/uapi/linux/fanotify.h``.

Errors from the kernel become :class:`garrison.errors.SensorError`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import resource
import struct
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass

from garrison.errors import SensorError
from garrison.sensors.latency import LatencyHistogram

# fanotify_init() flags: notification class and behaviour of the group.
FAN_CLOEXEC = 0x0000_0001
FAN_NONBLOCK = 0x0000_0002
FAN_CLASS_NOTIF = 0x0000_0000  # notification events only
FAN_CLASS_CONTENT = 0x0000_0004  # permission events, after the file's content is final
FAN_CLASS_PRE_CONTENT = 0x0000_0008
FAN_UNLIMITED_QUEUE = 0x0000_0010
FAN_UNLIMITED_MARKS = 0x0000_0020
FAN_REPORT_TID = 0x0000_0100  # event.pid is the thread id, not the thread group id
# fid reporting: events carry file handles (info records) instead of an event fd.
FAN_REPORT_FID = 0x0000_0200
FAN_REPORT_DIR_FID = 0x0000_0400
FAN_REPORT_NAME = 0x0000_0800
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME  # the parent's handle + the name

# Event mask bits.
FAN_ACCESS = 0x0000_0001
FAN_MODIFY = 0x0000_0002  # a write() on the file (one per write, merged while queued)
FAN_CLOSE_WRITE = 0x0000_0008  # a file opened for writing was closed
FAN_CLOSE_NOWRITE = 0x0000_0010
FAN_OPEN = 0x0000_0020
FAN_MOVED_FROM = 0x0000_0040
FAN_MOVED_TO = 0x0000_0080
FAN_CREATE = 0x0000_0100  # an entry appeared in a directory (file, mkdir, link, symlink, mknod)
FAN_DELETE = 0x0000_0200  # an entry was removed (unlink, rmdir)
FAN_OPEN_EXEC = 0x0000_1000
FAN_Q_OVERFLOW = 0x0000_4000  # the queue was full: events were lost
FAN_OPEN_PERM = 0x0001_0000  # every open, while the opener waits for our answer
FAN_ACCESS_PERM = 0x0002_0000
FAN_OPEN_EXEC_PERM = 0x0004_0000  # every exec (and ELF interpreter load), the caller waiting
FAN_EVENT_ON_CHILD = 0x0800_0000
FAN_RENAME = 0x1000_0000  # one event with the old and the new parent + name (kernel 5.17)
FAN_ONDIR = 0x4000_0000
PERMISSION_EVENTS = FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM

# fanotify_mark() flags.
FAN_MARK_ADD = 0x0000_0001
FAN_MARK_REMOVE = 0x0000_0002
FAN_MARK_DONT_FOLLOW = 0x0000_0004
FAN_MARK_ONLYDIR = 0x0000_0008
FAN_MARK_MOUNT = 0x0000_0010  # sees nothing in a container: it has its own copy of the mount
FAN_MARK_IGNORED_MASK = 0x0000_0020  # the mask is what to ignore on this object
# Keep an ignore mark when the file is modified. Garrison never sets it: a modified binary
# must be judged again (fanotify_mark(2), FAN_MARK_IGNORED_SURV_MODIFY).
FAN_MARK_IGNORED_SURV_MODIFY = 0x0000_0040
FAN_MARK_FLUSH = 0x0000_0080
FAN_MARK_FILESYSTEM = 0x0000_0100  # the whole super block: every mount of an overlay

# Answers to permission events.
FAN_ALLOW = 0x01
FAN_DENY = 0x02  # the caller's open() or execve() fails with EPERM
FAN_AUDIT = 0x10

# Info record types following the metadata of a fid-reporting group's event.
FAN_EVENT_INFO_TYPE_FID = 1
FAN_EVENT_INFO_TYPE_DFID_NAME = 2
FAN_EVENT_INFO_TYPE_DFID = 3
FAN_EVENT_INFO_TYPE_OLD_DFID_NAME = 10
FAN_EVENT_INFO_TYPE_NEW_DFID_NAME = 12

# name_to_handle_at(2) flags. AT_HANDLE_FID (kernel 6.5) asks for a handle that only needs to
# identify the inode, as fanotify reports it: overlayfs without nfs_export encodes those.
AT_EMPTY_PATH = 0x1000
AT_HANDLE_FID = 0x200
MAX_HANDLE_SZ = 128

FAN_NOFD = -1
FANOTIFY_METADATA_VERSION = 3
AT_FDCWD = -100

# struct fanotify_event_metadata {u32 event_len; u8 vers; u8 reserved; u16 metadata_len;
#                                 u64 mask; s32 fd; s32 pid;}
_METADATA = struct.Struct("=IBBHQii")
# struct fanotify_event_info_fid {u8 info_type; u8 pad; u16 len; __kernel_fsid_t fsid;
#                                 struct file_handle {u32 handle_bytes; s32 handle_type; ...}}
_INFO_HEADER = struct.Struct("=BBH")
_FID_HEADER = struct.Struct("=BBH8sIi")
_RESPONSE = struct.Struct("=iI")  # struct fanotify_response {s32 fd; u32 response;}
DEFAULT_READ_SIZE = 64 * 1024
HIGH_FD_BASE = 4096  # where permission groups' fds go (at most half the fd limit)

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_fanotify_init = _libc.fanotify_init
_fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_fanotify_init.restype = ctypes.c_int
_fanotify_mark = _libc.fanotify_mark
_fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int]
_fanotify_mark.argtypes += [ctypes.c_char_p]
_fanotify_mark.restype = ctypes.c_int
_name_to_handle_at = _libc.name_to_handle_at
_name_to_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
_name_to_handle_at.argtypes += [ctypes.c_int]
_name_to_handle_at.restype = ctypes.c_int


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One ``struct fanotify_event_metadata``: the caller must close ``fd`` (when >= 0)."""

    mask: int
    fd: int
    pid: int
    info: bytes = b""  # the info records after the metadata (fid-reporting groups only)

    @property
    def is_permission(self) -> bool:
        return bool(self.mask & PERMISSION_EVENTS)


def parse_events(buf: bytes) -> Iterator[RawEvent]:
    """The events packed in one ``read()`` of a fanotify fd, in order."""
    offset, end = 0, len(buf)
    while offset + _METADATA.size <= end:
        event_len, vers, _, meta_len, mask, fd, pid = _METADATA.unpack_from(buf, offset)
        if vers != FANOTIFY_METADATA_VERSION or event_len < _METADATA.size:
            raise SensorError(f"fanotify: unexpected event metadata version {vers}")
        info = buf[offset + meta_len : offset + event_len] if event_len > meta_len else b""
        yield RawEvent(mask, fd, pid, info)
        offset += event_len


@dataclass(frozen=True, slots=True)
class FidRecord:
    """One ``struct fanotify_event_info_fid``: an object's file system and handle, and for the
    DFID_NAME types the name of the entry in that directory."""

    info_type: int
    fsid: bytes  # __kernel_fsid_t as the kernel packs it (see fsid_of)
    handle: bytes  # handle_type (native s32) + f_handle: compare with encode_fid()
    name: str = ""


def parse_fid_records(info: bytes) -> list[FidRecord]:
    """The fid info records of one event (other record types are skipped)."""
    records, offset = [], 0
    while offset + _INFO_HEADER.size <= len(info):
        info_type, _, length = _INFO_HEADER.unpack_from(info, offset)
        if length < _INFO_HEADER.size or offset + length > len(info):
            raise SensorError(f"fanotify: malformed info record of {length} bytes")
        if length >= _FID_HEADER.size and info_type in _FID_TYPES:
            records.append(_fid_record(info[offset : offset + length]))
        offset += length
    return records


_FID_TYPES = frozenset(
    {
        FAN_EVENT_INFO_TYPE_FID,
        FAN_EVENT_INFO_TYPE_DFID_NAME,
        FAN_EVENT_INFO_TYPE_DFID,
        FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
        FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
    }
)


def _fid_record(raw: bytes) -> FidRecord:
    info_type, _, _, fsid, size, handle_type = _FID_HEADER.unpack_from(raw)
    end = _FID_HEADER.size + size
    handle = struct.pack("=i", handle_type) + raw[_FID_HEADER.size : end]
    name = os.fsdecode(raw[end:].split(b"\0", 1)[0]) if info_type in _NAMED else ""
    return FidRecord(info_type, fsid, handle, name)


_NAMED = frozenset(
    {
        FAN_EVENT_INFO_TYPE_DFID_NAME,
        FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
        FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
    }
)


class _FileHandle(ctypes.Structure):
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ),
    ]


def encode_fid(fd: int) -> bytes:
    """The handle fanotify reports for the object ``fd`` refers to, as in ``FidRecord.handle``."""
    fh, mount_id = _FileHandle(handle_bytes=MAX_HANDLE_SZ), ctypes.c_int()
    flags = AT_EMPTY_PATH | AT_HANDLE_FID
    if _name_to_handle_at(fd, b"", ctypes.byref(fh), ctypes.byref(mount_id), flags) < 0:
        raise _error(f"name_to_handle_at fd {fd}", ctypes.get_errno())
    return struct.pack("=i", fh.handle_type) + bytes(fh.f_handle[: fh.handle_bytes])


def fsid_of(fd: int) -> bytes:
    """The file system id fanotify reports for ``fd``'s file system. glibc's statvfs packs
    ``__kernel_fsid_t {int val[2]}`` as ``val[0] | val[1] << 32``: native order gives the bytes."""
    try:
        return struct.pack("=Q", os.fstatvfs(fd).f_fsid)
    except OSError as exc:
        raise SensorError(f"statvfs fd {fd}: {exc.strerror}") from exc


def _released_first(fd: int) -> int:
    """A permission group's fd, moved high. A process that waits for a permission answer pins
    the marks of every group on the file, and destroying a group waits until none is pinned:
    when a defender dies, a notification group released before the permission group would
    wait forever for an exec that waits for the permission group (see
    garrison/watchdog/release.py). A dying process releases its files in the reverse order of
    their fds (do_exit queues each final fput as task work, which runs last in, first out):
    the highest fds go first. Checked in tests/defender/test_watchdog.py."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    base = min(soft // 2, HIGH_FD_BASE)
    if fd >= base:
        return fd
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base)
    except OSError:
        return fd  # no room up there: the order is left to chance
    os.close(fd)
    return high


class FanotifyGroup:
    """One fanotify group (one fd): marks, batched reads, answers.

    ``latency``, when given, gets the time from each batch's read to each answer written: how
    long the container waited on us (the kernel's own queueing before the read is not seen)."""

    def __init__(
        self,
        flags: int,
        event_flags: int = os.O_RDONLY | os.O_LARGEFILE,
        latency: LatencyHistogram | None = None,
    ) -> None:
        fd = _fanotify_init(flags | FAN_CLOEXEC, event_flags | os.O_CLOEXEC)
        if fd < 0:
            raise _error("fanotify_init", ctypes.get_errno())
        if flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT):
            fd = _released_first(fd)
        self.fd = fd
        self.latency = latency
        self._read_ns = 0  # when the batch being answered was read

    def mark(self, flags: int, mask: int, path: str | None, dirfd: int = AT_FDCWD) -> None:
        """fanotify_mark(2); ``path=None`` marks the object ``dirfd`` refers to."""
        raw = os.fsencode(path) if path is not None else None
        if _fanotify_mark(self.fd, flags, mask, dirfd, raw) < 0:
            raise _error(f"fanotify_mark {path or f'fd {dirfd}'}", ctypes.get_errno())

    def read(self, size: int = DEFAULT_READ_SIZE) -> list[RawEvent]:
        """One batch of events; blocks unless the group was made with FAN_NONBLOCK."""
        try:
            buf = os.read(self.fd, size)
            self._read_ns = time.monotonic_ns()
        except BlockingIOError:
            return []
        except OSError as exc:
            raise SensorError(f"fanotify read: {exc.strerror}") from exc
        return list(parse_events(buf))

    def pending(self) -> int:
        """Bytes of events the kernel holds for this group, not yet read (FIONREAD)."""
        if self.fd < 0:
            return 0
        try:
            return int.from_bytes(fcntl.ioctl(self.fd, termios.FIONREAD, bytes(4)), "little")
        except OSError:
            return 0  # closed meanwhile: nothing more will be read

    def respond(self, event_fd: int, response: int) -> None:
        """Answer one permission event (one write per answer: the kernel takes one a call)."""
        try:
            os.write(self.fd, _RESPONSE.pack(event_fd, response))
            if self.latency is not None:
                self.latency.observe(time.monotonic_ns() - self._read_ns)
        except OSError as exc:
            # ENOENT: the event was already answered or its group is closing.
            if exc.errno != errno.ENOENT:
                # An unanswered permission event keeps its process waiting: closing the group
                # is the one sure way to let it (and every other) go on.
                self.close()
                raise SensorError(f"fanotify response: {exc.strerror}; group closed") from exc

    def close(self) -> None:
        """Close the group; the kernel allows every permission event still pending."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def _error(what: str, err: int) -> SensorError:
    hint = " (needs CAP_SYS_ADMIN)" if err == errno.EPERM else ""
    return SensorError(f"{what}: {os.strerror(err)}{hint}")
