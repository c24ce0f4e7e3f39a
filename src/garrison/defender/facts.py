"""Facts about an event that rules need and the event does not carry.

Both are cheap reads of the kernel's own state, never of a slow disk or the network:
- a shell whose standard input or output is a socket (a reverse shell): two readlinks; or
  whose terminal is a pty relayed to a network socket by an ancestor (``terminals.py``);
- drift: the file executed lives in the container's overlay upper layer, i.e. it was
  created or changed after the container started (an image file is in a lower layer);
- for a written file, whether it is an executable (ELF), read after the write.
"""

from __future__ import annotations

import os
import stat

from garrison.policy import ExecFacts, FileFacts
from garrison.policy.detections import is_shell
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, ProcessEvent
from garrison.sensors.passwd import open_in_root
from garrison.sensors.terminals import pty_driver

PROC = "/proc"
ELF_MAGIC = b"\x7fELF"


def exec_facts(event: ProcessEvent, upper_dir: str | None) -> ExecFacts:
    shell = is_shell(event.path)
    socket = shell and _stdio_is_socket(event.pid)
    return ExecFacts(
        stdio_socket=socket,
        file_mode=event.file_mode,
        drifted=_in_upper(upper_dir, event.resolved_path or event.path),
        pty_driver=pty_driver(event.pid, event.ppid) if shell and not socket else 0,
    )


def _stdio_is_socket(pid: int) -> bool:
    for fd in (0, 1):
        try:
            if os.readlink(f"{PROC}/{pid}/fd/{fd}").startswith("socket:"):
                return True
        except OSError:
            continue
    return False


def _in_upper(upper_dir: str | None, path: str) -> bool:
    if not upper_dir or not path.startswith("/"):
        return False
    # The resolved path has no symlinks left, so lstat cannot be led out of the layer.
    try:
        return stat.S_ISREG(os.lstat(upper_dir + path).st_mode)
    except OSError:
        return False


def file_facts(event: FileEvent, container: ContainerInfo) -> FileFacts:
    """Is the written file an executable (ELF)? Read once the write is closed."""
    return FileFacts(is_elf=_starts_with_elf(container.merged_dir, event.path))


def _starts_with_elf(root: str | None, path: str) -> bool:
    if not root:
        return False
    try:
        fd = open_in_root(root, path)  # resolved inside the container's root, never the host's
    except OSError:
        return False
    try:
        return os.read(fd, 4) == ELF_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)
