"""``Defender``: one per host. It follows containers, feeds their sensor events to the models,
and reports audits, models and its status through the console link.

Threads: sensors run on their own threads and judge execs there, from memory (``Judge``);
their events reach this object's asyncio loop through the ``Inbox``. Models, the container
table and the console link are touched only from the loop. The lifecycle follows uvicorn's
server: ``startup()``, ``main_loop()``, ``shutdown()``; ``serve()`` runs the three.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import asdict
from typing import Any

from garrison import __version__
from garrison.audit.record import Audit
from garrison.config import Settings
from garrison.console.link import ConsoleLink, sync_models
from garrison.defender.inbox import Inbox
from garrison.defender.judge import Judge
from garrison.defender.sensorset import Event, SensorSet
from garrison.errors import GarrisonError
from garrison.model.book import ModelBook
from garrison.model.clock import Clock, system_clock
from garrison.model.lifecycle import LearningConfig
from garrison.runtime.base import ContainerInfo, ContainerRuntime
from garrison.runtime.tracker import ContainerTracker, ListenerBase
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
WAIT_SECONDS = 0.05


class Defender(ListenerBase):
    def __init__(
        self,
        settings: Settings,
        runtime: ContainerRuntime,
        link: ConsoleLink,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.link = link
        self.book = ModelBook(
            clock=clock,
            config=LearningConfig(
                settings.learning_period, settings.archive_after, settings.retention
            ),
        )
        self.judge = Judge(self.book)
        self.inbox: Inbox[Event] = Inbox()
        self.sensors = SensorSet(
            self.judge, self.inbox.put, self.judge.already_seen, settings.network_interval
        )
        self.tracker = ContainerTracker(runtime, [self])
        self.handled = 0
        self.unmatched = 0  # events of containers no longer (or not yet) tracked
        self.audits = 0
        self.started_at = time.time()
        self._stopping = asyncio.Event()
        self._next_status = 0.0

    # -- container listener (called on the loop by the tracker) -------------------------------

    def on_start(self, info: ContainerInfo) -> None:
        self.book.container_started(info)
        self.sensors.watch(info)
        self.handle_events(list(self.sensors.processes.snapshot(info.id)))
        log.info("watching %s (%s)", info.name, info.image_name)

    def on_stop(self, container_id: str) -> None:
        self.sensors.unwatch(container_id)
        self.book.container_stopped(container_id)

    # -- lifecycle ---------------------------------------------------------------------------

    async def serve(self) -> None:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        self.inbox.bind(asyncio.get_running_loop())
        for error in self.book.load(await asyncio.to_thread(self.link.load_models)):
            log.warning("stored model skipped: %s", error)
        self.sensors.start()
        await self.tracker.start(wait_for_runtime=True)

    def request_stop(self) -> None:
        self._stopping.set()

    async def main_loop(self) -> None:
        next_tick = 0.0
        while not self._stopping.is_set():
            await self.inbox.wait(WAIT_SECONDS)
            self.handle_events(self.inbox.drain())
            now = time.monotonic()
            if now >= next_tick:
                self.tick()
                next_tick = now + TICK_SECONDS

    async def shutdown(self) -> None:
        """Stop following, release the kernel (waiting execs go on), store what is left."""
        await self.tracker.stop()
        self.sensors.stop()
        self.handle_events(self.inbox.drain(limit=len(self.inbox) + 1))
        self.tick(force_status=True)
        await asyncio.to_thread(self.link.flush, 10.0)

    # -- work ----------------------------------------------------------------------------------

    def handle_events(self, events: list[Event]) -> None:
        for event in events:
            try:
                audit = self._observe(event)
            except GarrisonError as exc:  # a bad event never stops the defender
                log.warning("event of %s dropped: %s", event.container_id[:12], exc)
                continue
            if audit is not None:
                self.link.report_audit(audit)
                self.audits += 1

    def _observe(self, event: Event) -> Audit | None:
        model = self.book.for_container(event.container_id)
        container = self.tracker.get(event.container_id)
        if model is None or container is None:
            self.unmatched += 1
            return None
        self.handled += 1
        host = self.settings.hostname
        if isinstance(event, ProcessEvent):
            return model.observe_process(event, container, host)
        if isinstance(event, FileEvent):
            return model.observe_file(event, container, host)
        if isinstance(event, NetEvent):
            return model.observe_net(event, container, host)
        return None

    def tick(self, force_status: bool = False) -> None:
        """Each second: user commands, learning time, model saves; the status now and then."""
        try:
            sync_models(self.book, self.link)
        except GarrisonError as exc:
            log.error("model sync failed (will retry): %s", exc)
        now = time.monotonic()
        if force_status or now >= self._next_status:
            self.link.report_status(self.status())
            self._next_status = now + self.settings.status_interval

    def status(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for model in self.book:
            states[str(model.state)] = states.get(str(model.state), 0) + 1
        return {
            "hostname": self.settings.hostname,
            "pid": os.getpid(),
            "version": __version__,
            "startedAt": self.started_at,
            "updatedAt": time.time(),
            "dockerHost": self.settings.docker_host or "",
            "containers": len(self.tracker.containers()),
            "models": states,
            "events": {
                "received": self.inbox.received,
                "dropped": self.inbox.dropped,
                "handled": self.handled,
                "unmatched": self.unmatched,
                "verdicts": self.judge.verdicts,
            },
            "audits": self.audits,
            "sensors": self.sensors.counters(),
            "tracker": asdict(self.tracker.stats),
        }
