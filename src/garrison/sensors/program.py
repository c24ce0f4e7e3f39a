"""Which program an exec really runs, when the file executed does not say it alone.

- A **multi-call binary** (busybox, toybox) runs the applet its ``argv[0]`` names, whatever
  name the caller executed: ``exec -a nc /bin/ls`` runs busybox's ``nc``, and so does
  ``busybox nc`` (the binary called by its own name takes the applet from ``argv[1]``).
- A **dynamic loader run by hand** (``/lib64/ld-linux-x86-64.so.2 /tmp/x``) maps and runs the
  file named among its arguments; no exec ever opens that file.
- A **fileless** exec runs a file with no link left on any file system: a memfd
  (``/memfd:name``) or a deleted file.

Both process-event sources name the program the same way through these functions, so that a
rule or a model speaks of ``/bin/nc`` and ``/tmp/x``, not of busybox or the loader.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Sequence

from garrison.sensors.multicall import MULTICALL, applet_path, is_multicall

# ELF interpreters (PT_INTERP) of glibc and musl: ld-linux-x86-64.so.2, ld-musl-x86_64.so.1.
_LOADER = re.compile(r"^ld(?:-linux[-\w.]*|-musl-[-\w]+)?\.so(?:\.\d+)*$")
# Options of glibc's and musl's loader that take the next argument as their value.
_LOADER_VALUED = frozenset(
    {
        "--library-path", "--inhibit-rpath", "--audit", "--preload", "--argv0",
        "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask",
    }
)  # fmt: skip
DELETED = " (deleted)"
HASH_LIMIT = 256 * 1024 * 1024  # a fileless program larger than this is not hashed
_CHUNK = 1024 * 1024


def is_loader(path: str) -> bool:
    """True for the file name of a dynamic loader."""
    return bool(_LOADER.match(posixpath.basename(path)))


def applet_name(argv: Sequence[str]) -> str | None:
    """The applet a multi-call binary runs for this argv; None when it runs none (no argv,
    ``busybox --list``)."""
    if not argv:
        return None
    name = posixpath.basename(argv[0])
    if name in MULTICALL:
        if len(argv) < 2 or argv[1].startswith("-"):
            return None
        name = posixpath.basename(argv[1])
    return name or None


def applet_program(root: str, asked: str, resolved: str, argv: Sequence[str]) -> str:
    """The program a multi-call binary (``resolved``) runs, as a container path: ``asked``
    when argv[0] agrees with it (``/usr/bin/env`` as ``env``), else the applet's own name on
    the container's PATH (``/bin/nc``), else beside the binary. ``root``: the container's
    root seen from here. Not a multi-call binary: ``asked``."""
    if not is_multicall(resolved):
        return asked
    applet = applet_name(argv)
    if applet is None or applet == posixpath.basename(asked):
        return asked
    return applet_path(root, applet) or posixpath.join(posixpath.dirname(resolved), applet)


def loader_target(argv: Sequence[str]) -> str | None:
    """The file a loader run by hand loads: its first argument that is not one of its
    options; None when it loads nothing (``--help``, ``--list-tunables``)."""
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "--":
            return args[0] if args else None
        if arg in _LOADER_VALUED:
            if args:
                args.pop(0)
            continue
        if arg.startswith("--"):
            continue
        return arg
    return None


def absolute(path: str, cwd: str) -> str:
    """``path`` made absolute against ``cwd`` (both container paths) and normalised."""
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(cwd, path))


def fileless_name(exe: str, exe_name: str, asked: str) -> str:
    """The name of a fileless program: the file it was (``/tmp/x`` of ``/tmp/x (deleted)``),
    a memfd's own (``/memfd:payload``), else what the caller asked for."""
    if exe:
        return exe.removesuffix(DELETED)
    if exe_name.startswith("memfd:"):
        return "/" + exe_name
    return asked


def sha256_of(fd: int) -> str:
    """The SHA-256 of an open file's bytes (read from its start); "" when it is larger than
    HASH_LIMIT or cannot be read."""
    digest = hashlib.sha256()
    offset = 0
    try:
        while chunk := os.pread(fd, _CHUNK, offset):
            offset += len(chunk)
            if offset > HASH_LIMIT:
                return ""
            digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def sha256_of_path(path: str) -> str:
    """The SHA-256 of a file (``/proc/PID/exe`` reaches even a memfd); "" if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return sha256_of(fd)
    finally:
        os.close(fd)
