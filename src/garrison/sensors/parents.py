"""Parents' executables, read from /proc once a second rather than once per child.

An exec storm's children share one parent (the shell running the loop): both the fanotify exec
sensor and the process tracker name it for every child. An entry lives ``PARENT_TTL``; it goes
at once when that pid execs itself (it runs another program from then on).
"""

from __future__ import annotations

import time
from collections.abc import Callable

PARENT_TTL = 1.0
MAX_PARENTS = 4096


class ParentPaths:
    """ppid → (when read, container id, its executable as the container sees it, or "")."""

    def __init__(self, ttl: float = PARENT_TTL, limit: int = MAX_PARENTS) -> None:
        self.ttl, self.limit = ttl, limit
        self._known: dict[int, tuple[float, str, str]] = {}

    def get(self, ppid: int, container_id: str, read: Callable[[], str]) -> str:
        """The parent's executable: from memory when read less than ``ttl`` ago for the same
        container, else ``read()`` (which must not raise) and remembered."""
        known = self.peek(ppid, container_id)
        if known is not None:
            return known
        path = read()
        self.put(ppid, container_id, path)
        return path

    def peek(self, pid: int, container_id: str) -> str | None:
        """The executable remembered for ``pid`` less than ``ttl`` ago, else None."""
        known = self._known.get(pid)
        if known is None or time.monotonic() - known[0] >= self.ttl or known[1] != container_id:
            return None
        return known[2]

    def put(self, pid: int, container_id: str, path: str) -> None:
        """``pid`` is known to run ``path`` from now on (its exec was just seen)."""
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[pid] = (time.monotonic(), container_id, path)

    def forget(self, pid: int) -> None:
        """``pid`` executed another program: its entry is stale."""
        self._known.pop(pid, None)
