"""The watchdog: a supervisor process that keeps the defender from ever holding a container.

``heartbeat`` is what the defender's threads write; ``supervisor`` is what reads it, kills a
stalled defender (the kernel then lets its waiting events through) and starts another.
"""

from garrison.watchdog.heartbeat import Beat, Board, Stall, claim, defender_board
from garrison.watchdog.supervisor import Incident, Supervisor, WatchdogState, die_with_supervisor

__all__ = [
    "Beat",
    "Board",
    "Incident",
    "Stall",
    "Supervisor",
    "WatchdogState",
    "claim",
    "defender_board",
    "die_with_supervisor",
]
