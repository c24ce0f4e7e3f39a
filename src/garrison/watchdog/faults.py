"""Faults injected on purpose, for the tests of what the watchdog and the enforcer promise.

Off unless the defender's environment has ``GARRISON_TEST_HOOKS=1`` (``install`` is called by
``garrison run``; nothing here runs otherwise):

- ``SIGUSR2`` makes the permission readers spin instead of answering (``HOLD``), as a defender
  caught in a GIL-bound loop would;
- ``GARRISON_TEST_CRASH_AT=STEP`` kills the defender with SIGKILL at that step of a block
  (``audit``: the intent and audit stored; ``kill``: the container killed; ``update``: its
  restart policy changed) — only the first defender a watchdog starts, so that the next one
  can show it finishes the block.
"""

from __future__ import annotations

import os
import signal
import threading

HOLD = threading.Event()
_crash_at: str | None = None


def install(restarts: int = 0) -> None:
    global _crash_at  # noqa: PLW0603 - process-wide test switches, set once at start
    if os.environ.get("GARRISON_TEST_HOOKS") != "1":
        return
    signal.signal(signal.SIGUSR2, lambda _sig, _frame: HOLD.set())
    if restarts == 0:
        _crash_at = os.environ.get("GARRISON_TEST_CRASH_AT") or None


def crash_point(step: str) -> None:
    """Die here, as a SIGKILL from outside would kill the defender, if a test asked."""
    if _crash_at == step:
        os.kill(os.getpid(), signal.SIGKILL)
