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
        now = time.monotonic()
        known = self._known.get(ppid)
        if known is not None and now - known[0] < self.ttl and known[1] == container_id:
            return known[2]
        path = read()
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[ppid] = (now, container_id, path)
        return path

    def forget(self, pid: int) -> None:
        """``pid`` executed another program: its entry is stale."""
        self._known.pop(pid, None)
