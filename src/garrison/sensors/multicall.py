"""Multi-call binaries (busybox): the program a process runs is the name it was called by.

/proc only knows ``/bin/busybox``, and busybox's own shell runs its applets by executing
``/proc/self/exe`` with the applet's name as argv[0]. The name to record — the one rules and
models speak of — is argv[0], found on the usual PATH of the container when it has no slash.
"""

from __future__ import annotations

import os
import posixpath
import re

MULTICALL = frozenset({"busybox", "toybox"})
SEARCH_PATH = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
_SELF_EXE = re.compile(r"^/proc/(self|thread-self|\d+)/exe$")


def is_multicall(path: str) -> bool:
    return posixpath.basename(path) in MULTICALL


def is_self_exe(path: str) -> bool:
    """``/proc/self/exe`` and the like: a process running its own binary again."""
    return _SELF_EXE.match(path) is not None


def applet_path(root: str, argv0: str) -> str | None:
    """The container path argv[0] names, looked up under ``root`` (a path to the container's
    root seen from here: MergedDir, or /proc/PID/root); None when it is nowhere."""
    if not argv0:
        return None
    if argv0.startswith("/"):
        return argv0
    for folder in SEARCH_PATH:
        candidate = posixpath.join(folder, posixpath.basename(argv0))
        if os.path.lexists(root + candidate):
            return candidate
    return None
