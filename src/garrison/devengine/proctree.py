"""Small /proc walks the development engine needs to stop exactly what it started."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

PROC = Path("/proc")


def comm(pid: int) -> str | None:
    """The process's command name, or None when it is gone."""
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """True while the pid exists and is not a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised comm, which may itself hold spaces or ')'.
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def alive_of(pids: Iterable[int]) -> set[int]:
    return {pid for pid in pids if alive(pid)}


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait until none of ``pids`` is alive; False if some still are at the timeout."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending:
        pending = alive_of(pending)
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _all_pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _ppid(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def descendants(roots: Iterable[int]) -> set[int]:
    """All living descendants of ``roots`` (not the roots themselves)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        parent = _ppid(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def pids_mentioning(text: str) -> set[int]:
    """Processes whose command line contains ``text`` (containerd shims name their socket)."""
    needle = text.encode()
    found = set()
    for pid in _all_pids():
        try:
            cmdline = (PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.add(pid)
    return found
