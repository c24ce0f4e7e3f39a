"""Failed logins slow a password guesser down: after ``MAX_PER_NAME`` failures for one user
name, or ``MAX_PER_CLIENT`` from one address, within ``WINDOW`` seconds, logins for that name
or from that address are refused without a password check until the window has moved on.

The limit on a name is what stops a guesser spread over many addresses; it also lets anyone
who reaches the console keep that name out for a while, so the window is short. Memory is
bounded: at most ``MAX_KEYS`` names and addresses are followed, the oldest dropped first.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

WINDOW = 300.0
MAX_PER_NAME = 10
MAX_PER_CLIENT = 50
MAX_KEYS = 10_000


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def wait(self, name: str, client: str) -> float:
        """Seconds until a login for ``name`` from ``client`` may be tried; 0: now."""
        with self._lock:
            return max(
                self._wait(f"name:{name}", MAX_PER_NAME), self._wait(f"ip:{client}", MAX_PER_CLIENT)
            )

    def failed(self, name: str, client: str) -> None:
        with self._lock:
            for key in (f"name:{name}", f"ip:{client}"):
                self._recent(key).append(self.clock())
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"name:{name}", None)

    def _wait(self, key: str, limit: int) -> float:
        times = self._failures.get(key)
        if times is None:
            return 0.0
        self._drop_old(times)
        if len(times) < limit:
            return 0.0
        return max(0.0, times[-limit] + WINDOW - self.clock())

    def _recent(self, key: str) -> collections.deque[float]:
        times = self._failures.setdefault(key, collections.deque(maxlen=MAX_PER_CLIENT))
        self._drop_old(times)
        return times

    def _drop_old(self, times: collections.deque[float]) -> None:
        while times and times[0] <= self.clock() - WINDOW:
            times.popleft()
