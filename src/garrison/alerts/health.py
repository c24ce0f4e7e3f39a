"""Each channel's health as the dispatcher sees it: alerts sent, failed attempts, the last
error, the last success, failures in a row. Reported in the store's ``alerts`` status
(``garrison status``, the ``garrison_alert_*`` metrics) so that a channel that refuses or never
answers is seen, not only retried.

Each channel's worker thread writes its own entry; the dispatcher's thread adds and drops
entries (publishing a new dict each time) and writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from garrison.alerts._redact import Piece, redacted, secrets_in

STATUS_SOURCE = "alerts"  # the store's status document the dispatcher writes
ERROR_MAX = 300


@dataclass(slots=True)
class ChannelHealth:
    url: str  # redacted
    sent: int = 0
    failures: int = 0  # failed attempts, each retried with backoff
    consecutive_failures: int = 0  # since the last success
    last_error: str = ""
    last_success: float | None = None
    last_failure: float | None = None
    secrets: list[Piece] = field(default_factory=list, repr=False)  # scrubbed from errors

    @property
    def up(self) -> bool:
        """False after a failed attempt, until one succeeds."""
        return self.consecutive_failures == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "up": self.up,
            "sent": self.sent,
            "failures": self.failures,
            "consecutiveFailures": self.consecutive_failures,
            "lastError": self.last_error,
            "lastSuccessAt": self.last_success,
            "lastFailureAt": self.last_failure,
        }


class Health:
    def __init__(self) -> None:
        self.channels: dict[str, ChannelHealth] = {}
        self.changes = 0  # grows at each change: the report is written again when it did

    def track(self, name: str, url: str) -> None:
        """A channel (again, when its URL changed: a new channel, a fresh record)."""
        health = ChannelHealth(redacted(url), secrets=secrets_in(url))
        self.channels = {**self.channels, name: health}
        self.changes += 1

    def drop(self, name: str) -> None:
        self.channels = {k: v for k, v in self.channels.items() if k != name}
        self.changes += 1

    def succeeded(self, name: str, now: float) -> None:
        health = self.channels.get(name)
        if health is not None:
            health.sent += 1
            health.consecutive_failures = 0
            health.last_success = now
        self.changes += 1

    def failed(self, name: str, now: float, reason: str) -> None:
        """A failed attempt. ``reason`` should name the channel by its redacted URL only
        (``DeliveryFailed`` does); the URL's secrets are scrubbed all the same, and the
        reason kept one line and short."""
        health = self.channels.get(name)
        if health is not None:
            for text, shown in health.secrets:
                reason = reason.replace(text, shown)
            health.failures += 1
            health.consecutive_failures += 1
            health.last_failure = now
            health.last_error = " ".join(reason.split())[:ERROR_MAX]
        self.changes += 1

    def up(self, name: str) -> bool:
        health = self.channels.get(name)
        return health is None or health.up

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {name: health.to_json() for name, health in sorted(self.channels.items())}
