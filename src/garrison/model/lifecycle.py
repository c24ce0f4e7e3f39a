"""A model's learning states and the clock-driven moves between them.

- *learning*: events widen the model. Learning time is counted only while at least one
  container of the image runs; when it reaches the target the model turns *active*. Manual
  learning (``learn_start``) has no target: it lasts until ``learn_stop``.
- *active*: events outside the model become audits.
- *archived*: no container of the image ran for ``archive_after`` seconds. A container
  starting again brings back the state the model had; after ``retention`` seconds archived the
  model is removed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from garrison.errors import ConfigError


class State(enum.StrEnum):
    LEARNING = "learning"
    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """Seconds. The defaults are Prisma-like: an hour of learning, a day, a month."""

    learning_period: float = 3600.0
    archive_after: float = 86400.0
    retention: float = 30 * 86400.0

    def __post_init__(self) -> None:
        for name in ("learning_period", "archive_after", "retention"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be a positive number of seconds")


class Lifecycle:
    """The state machine. Every method takes ``now``; nothing here reads a clock itself."""

    def __init__(self, now: float, config: LearningConfig) -> None:
        self.config = config
        self.state = State.LEARNING
        self.learned_seconds = 0.0
        self.learning_target: float | None = config.learning_period  # None: manual
        self.last_running_at = now
        self.archived_at: float | None = None
        self.resume_state = State.LEARNING
        self.running: set[str] = set()
        self._running_since: float | None = None
        self.deadline = math.inf  # when learning ends if containers keep running

    def is_learning(self, now: float) -> bool:
        """The hot-path question; finishes learning on time even between ticks."""
        if self.state is not State.LEARNING:
            return False
        if now >= self.deadline:
            self.tick(now)
        return self.state is State.LEARNING

    def learned(self, now: float) -> float:
        if self._running_since is None:
            return self.learned_seconds
        return self.learned_seconds + max(0.0, now - self._running_since)

    def container_started(self, container_id: str, now: float) -> None:
        if not self.running:
            self._running_since = now
        self.running.add(container_id)
        if self.state is State.ARCHIVED:
            self.state, self.archived_at = self.resume_state, None
        self._set_deadline(now)

    def container_stopped(self, container_id: str, now: float) -> None:
        if container_id not in self.running:
            return
        self.running.discard(container_id)
        if not self.running:
            self._accumulate(now)
            self._running_since = None
            self.last_running_at = now
        self._set_deadline(now)

    def tick(self, now: float) -> bool:
        """Move on with time; True when the state changed."""
        before = self.state
        self._accumulate(now)
        target = self.learning_target
        if self.state is State.LEARNING and target is not None and self.learned_seconds >= target:
            self.state = State.ACTIVE
        idle = not self.running and now - self.last_running_at >= self.config.archive_after
        if idle and self.state is not State.ARCHIVED:
            self.resume_state, self.state, self.archived_at = self.state, State.ARCHIVED, now
        self._set_deadline(now)
        return self.state is not before

    def expired(self, now: float) -> bool:
        """Archived longer than the retention period: the model should be removed."""
        archived_at = self.archived_at
        if self.state is not State.ARCHIVED or archived_at is None:
            return False
        return now - archived_at >= self.config.retention

    # -- user commands ------------------------------------------------------------------

    def relearn(self, now: float) -> None:
        self._accumulate(now)
        self.learned_seconds = 0.0
        self._start_learning(now, self.config.learning_period)

    def extend(self, now: float, seconds: float) -> None:
        self._accumulate(now)
        self._start_learning(now, self.learned_seconds + seconds)

    def learn_start(self, now: float) -> None:
        self._accumulate(now)
        self._start_learning(now, None)

    def learn_stop(self, now: float) -> None:
        self._accumulate(now)
        self.learning_target = self.learned_seconds
        self.state = State.ACTIVE
        self._touch(now)

    def _start_learning(self, now: float, target: float | None) -> None:
        self.learning_target = target
        self.state = State.LEARNING
        self._touch(now)

    def _touch(self, now: float) -> None:
        """A user command restarts the archive countdown of a model with no container."""
        self.archived_at = None
        if not self.running:
            self.last_running_at = now
        self._set_deadline(now)

    # -- internals ----------------------------------------------------------------------

    def _accumulate(self, now: float) -> None:
        if self._running_since is not None:
            self.learned_seconds += max(0.0, now - self._running_since)
            self._running_since = now

    def _set_deadline(self, now: float) -> None:
        target = self.learning_target
        if self.state is not State.LEARNING or target is None or not self.running:
            self.deadline = math.inf
        else:
            self.deadline = now + max(0.0, target - self.learned(now))

    # -- documents ----------------------------------------------------------------------

    def to_doc(self, now: float) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "learnedSeconds": self.learned(now),
            "learningTarget": self.learning_target,
            "lastRunningAt": now if self.running else self.last_running_at,
            "archivedAt": self.archived_at,
            "resumeState": self.resume_state.value,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any], now: float, config: LearningConfig) -> Lifecycle:
        life = cls(now, config)
        life.state = State(doc["state"])
        life.learned_seconds = float(doc["learnedSeconds"])
        target = doc["learningTarget"]
        life.learning_target = None if target is None else float(target)
        life.last_running_at = float(doc["lastRunningAt"])
        archived = doc["archivedAt"]
        life.archived_at = None if archived is None else float(archived)
        life.resume_state = State(doc["resumeState"])
        return life
