"""Time, injectable: the models and the link read it from a clock so tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Returns epoch seconds, like ``time.time``."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    return time.time()


class FakeClock:
    """A clock that moves only when told: ``clock.advance(3600)``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
