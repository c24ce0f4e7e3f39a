"""The process tree of a container at the moment of a violation, read from /proc.

Taken just before a block's kill (the processes are gone after it), so it must be quick: it
follows ``/proc/PID/task/TID/children`` from the container's first process down, never
scanning all of /proc — a millisecond for a few dozen processes — and stops at ``MAX``.
A process that exits while it is read is left out (races are expected, not errors).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

PROC = Path("/proc")
MAX = 2000  # processes; a fork bomb is not read whole
CMDLINE_MAX = 4096  # bytes of one command line


def snapshot(root_pid: int, proc: Path = PROC) -> list[dict[str, Any]]:
    """The processes under ``root_pid`` (it included), parents before children; [] when
    it is gone or 0."""
    if root_pid <= 0:
        return []
    found: list[dict[str, Any]] = []
    queue = [root_pid]
    seen: set[int] = set()
    while queue and len(found) < MAX:
        pid = queue.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        entry = _process(proc / str(pid), pid)
        if entry is None:
            continue
        found.append(entry)
        queue.extend(_children(proc / str(pid)))
    return found


def _process(folder: Path, pid: int) -> dict[str, Any] | None:
    try:
        status = _status(folder)
        cmdline = (folder / "cmdline").read_bytes()[:CMDLINE_MAX]
    except OSError:  # gone meanwhile
        return None
    exe = ""
    with contextlib.suppress(OSError):
        exe = os.readlink(folder / "exe")
    return {
        "pid": pid,
        "ppid": int(status.get("PPid", "0") or 0),
        "pidInContainer": _last_int(status.get("NSpid", "")),
        "uid": _first_int(status.get("Uid", "")),
        "name": status.get("Name", ""),
        "path": exe,
        "argv": [a.decode("utf-8", "backslashreplace") for a in cmdline.split(b"\0") if a],
        "state": status.get("State", ""),
    }


def _status(folder: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (folder / "status").read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _children(folder: Path) -> list[int]:
    """Children of every thread (CONFIG_PROC_CHILDREN: a child is listed under the thread
    that forked it)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in (folder / "task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def _first_int(text: str) -> int:
    parts = text.split()
    return int(parts[0]) if parts and parts[0].isdigit() else -1


def _last_int(text: str) -> int:
    parts = text.split()
    return int(parts[-1]) if parts and parts[-1].isdigit() else 0
