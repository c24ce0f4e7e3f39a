"""``Dispatcher``: sends the outbox's deliveries, each channel on a thread of its own.

The outbox is in the store: a delivery is made in the transaction that stores its audit, so
what is sent was stored, and what is stored and not yet sent survives a restart (the next
dispatcher sends it). A delivery is marked sent right after the channel took it; only a crash
between the two sends it again — the payloads carry the audit's id so a receiver can tell.
A channel that fails is retried with backoff, on its own thread: a slow or dead channel delays
neither the others nor any verdict (the defender never waits on this). Each channel's health
(``alerts/health.py``) is written to the store's ``alerts`` status when it changes and every
STATUS_SECONDS: ``garrison status`` and the metrics show a failing channel.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from garrison.alerts.channel import Channel
from garrison.alerts.health import STATUS_SOURCE, Health
from garrison.alerts.profiles import DEFAULT, KIND, Profiles, profiles_from_doc
from garrison.alerts.render import Message, render
from garrison.alerts.send import DeliveryFailed, deliver
from garrison.errors import GarrisonError
from garrison.store.base import ChannelRecord, Delivery, Store

log = logging.getLogger(__name__)

BACKOFF = (2.0, 5.0, 15.0, 60.0, 300.0)  # seconds before the next attempt; then the last
BATCH = 20
STATUS_SECONDS = 10.0  # the report is written at least this often (its updatedAt shows life)

Send = Callable[[Channel, Message], None]


def backoff(attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt (1-based)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


@dataclass(slots=True)
class DispatchStats:
    sent: int = 0
    failures: int = 0  # attempts that failed (each is retried)
    store_errors: int = 0


class Dispatcher:
    def __init__(
        self, store: Store, hostname: str, *, send: Send | None = None, poll: float = 0.5
    ) -> None:
        self.store = store
        self.hostname = hostname
        self.poll = poll
        self.stats = DispatchStats()
        self.health = Health()
        self._reported = (-1, 0.0)  # (health.changes, monotonic time) of the last report
        self._send = send or self._deliver
        self._stopping = threading.Event()
        self._workers: dict[str, _Worker] = {}
        self.profiles: Profiles = DEFAULT
        self._profiles_doc: object = None
        self._thread: threading.Thread | None = None

    def _deliver(self, channel: Channel, message: Message) -> None:
        deliver(channel, message, hostname=self.hostname)

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self._run, name="garrison-alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; a send under way is left to finish or time out on its own (it
        is sent again by the next dispatcher unless it was marked sent)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self._workers.values()):
            worker.thread.join(max(0.1, timeout / max(1, len(self._workers))))

    def counters(self) -> dict[str, int]:
        return {
            "channels": len(self._workers),
            "sent": self.stats.sent,
            "failures": self.stats.failures,
            "storeErrors": self.stats.store_errors,
        }

    def _run(self) -> None:
        """Keep one worker per channel the store holds (channels come and go by the CLI)."""
        while not self._stopping.is_set():
            try:
                channels = {c.name: c for c in self.store.list_channels()}
            except GarrisonError as exc:  # the workers run on as they are
                self._store_failed(exc)
                self._stopping.wait(self.poll)
                continue
            self._load_profiles()
            self._follow(channels)
            self._report()
            self._stopping.wait(self.poll)
        for worker in self._workers.values():
            worker.stopping.set()
        self._report(final=True)

    def _follow(self, channels: dict[str, ChannelRecord]) -> None:
        for name in set(self._workers) - set(channels):
            self._workers.pop(name).stopping.set()
            self.health.drop(name)
        for name, record in channels.items():
            known = self._workers.get(name)
            if known is None or known.channel.url != record.url:
                if known is not None:
                    known.stopping.set()
                self.health.track(name, record.url)
                self._workers[name] = _Worker(self, Channel(name, record.url))

    def status(self, state: str = "running") -> dict[str, Any]:
        """The ``alerts`` status document: the dispatcher's totals and each channel's health."""
        return {
            "hostname": self.hostname,
            "pid": os.getpid(),
            "state": state,
            "updatedAt": time.time(),
            **self.counters(),
            "channels": self.health.to_json(),
        }

    def _report(self, final: bool = False) -> None:
        """Write the status when the health changed, or STATUS_SECONDS after the last."""
        changes, now = self.health.changes, time.monotonic()
        last_changes, last_time = self._reported
        if not final and changes == last_changes and now - last_time < STATUS_SECONDS:
            return
        doc = self.status("stopped" if final else "running")
        self._record(lambda: self.store.set_status(doc, source=STATUS_SOURCE))
        self._reported = (changes, now)

    def _load_profiles(self) -> None:
        """The alert profiles as stored (``garrison alerts profiles apply``); a document that
        does not parse keeps the ones in force (it was checked when applied)."""
        try:
            doc = self.store.get_policy(KIND)
            if doc != self._profiles_doc:
                self._profiles_doc = doc
                self.profiles = profiles_from_doc(doc)
        except GarrisonError as exc:
            log.error("alerts: the alert profiles are unreadable (%s); keeping the last", exc)

    def _store_failed(self, exc: GarrisonError) -> None:
        self.stats.store_errors += 1
        log.error("alerts: the outbox is unreadable (%s); trying again", exc)

    def work(self, worker: _Worker) -> bool:
        """One pass of a channel's worker: send what is due, oldest first. True when a
        whole batch was due and sent: more may be, and the worker goes on without a pause
        (a channel that failed in the pass waits, as before, and so does a store that could
        not record a delivery: the same ones would come back at once)."""
        try:
            self.store.make_summaries(worker.channel.name, time.time())
            due = self.store.due_deliveries(worker.channel.name, time.time(), BATCH)
        except GarrisonError as exc:
            self._store_failed(exc)
            return False
        store_errors = self.stats.store_errors
        for delivery in due:
            if worker.stopping.is_set() or self._stopping.is_set():
                return False
            self._attempt(worker.channel, delivery)
        full = len(due) >= BATCH and self.stats.store_errors == store_errors
        return full and self.health.up(worker.channel.name)

    def _attempt(self, channel: Channel, delivery: Delivery) -> None:
        period = self.profiles.route(delivery.audit, channel.name)
        if period is None:
            reason = "no alert profile sends it to this channel"
            self._record(lambda: self.store.skip(delivery.id, reason))
            return
        try:
            self._send(channel, render(delivery.audit, folded=delivery.folded))
        except DeliveryFailed as exc:
            self._failed(channel, delivery, str(exc))
            return
        self.stats.sent += 1
        self.health.succeeded(channel.name, time.time())
        self._record(lambda: self.store.delivered(delivery.id, time.time(), period))

    def _failed(self, channel: Channel, delivery: Delivery, reason: str) -> None:
        self.stats.failures += 1
        self.health.failed(channel.name, time.time(), reason)
        wait = backoff(delivery.attempts + 1)
        log.warning("alerts: %s refused audit %s (%s); again in %.0f s",
                    channel.name, delivery.audit.id, reason, wait)  # fmt: skip
        self._record(lambda: self.store.retry_later(delivery.id, time.time() + wait, reason))

    def _record(self, write: Callable[[], None]) -> None:
        try:
            write()
        except GarrisonError as exc:
            self._store_failed(exc)


class _Worker:
    def __init__(self, dispatcher: Dispatcher, channel: Channel) -> None:
        self.channel = channel
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(dispatcher,), name=f"garrison-alerts-{channel.name}",
            daemon=True,
        )  # fmt: skip
        self.thread.start()

    def _run(self, dispatcher: Dispatcher) -> None:
        while not self.stopping.is_set():
            if not dispatcher.work(self):
                self.stopping.wait(dispatcher.poll)
