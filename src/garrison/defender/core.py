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
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from garrison import __version__
from garrison.audit.record import Audit
from garrison.config import Settings
from garrison.console.link import ConsoleLink, sync_models
from garrison.defender.actions import Actions
from garrison.defender.enforce import Enforcer
from garrison.defender.facts import exec_facts, file_facts
from garrison.defender.inbox import Inbox
from garrison.defender.judge import Judge, Judged
from garrison.defender.policies import Policies
from garrison.defender.sensorset import Event, SensorSet
from garrison.errors import GarrisonError, InvalidInput
from garrison.forensics.host import HostForensics
from garrison.k8s.pods import PodDeleter, Pods
from garrison.model.book import ModelBook
from garrison.model.clock import Clock, system_clock
from garrison.model.lifecycle import LearningConfig
from garrison.model.runtime_model import RuntimeModel
from garrison.policy import (
    Decision,
    EffectivePolicy,
    evaluate_file,
    evaluate_network,
    evaluate_process,
)
from garrison.policy.loader import killed_at_exec, loader_names, refuses
from garrison.policy.stored import RUNTIME_KIND, rules_from_doc
from garrison.runtime.base import ContainerInfo, ContainerRuntime
from garrison.runtime.tracker import ContainerTracker, ListenerBase
from garrison.sensors.events import FileEvent, ProcessEvent
from garrison.watchdog import Incident, WatchdogState, claim, defender_board

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
WAIT_SECONDS = 0.05
# How long a block's capture waits for the sensors' queued events to reach the journal.
SETTLE_SECONDS = 2.0
PRUNE_SECONDS = 30.0
GIL_SWITCH_SECONDS = 0.0005
# The loop waits on the store now and then (a busy database): the watchdog gives it this long
# before it counts as stalled. Execs never wait on the loop, only on the sensor threads.
LOOP_BOUND_SECONDS = 60.0
_NOT_READ = object()


class Defender(ListenerBase):
    def __init__(
        self,
        settings: Settings,
        runtime: ContainerRuntime,
        link: ConsoleLink,
        *,
        clock: Clock = system_clock,
        watchdog: WatchdogState | None = None,
    ) -> None:
        self.settings = settings
        self.watchdog = watchdog
        self.link = link
        self.book = ModelBook(
            clock=clock,
            config=LearningConfig(
                settings.learning_period, settings.archive_after, settings.retention
            ),
        )
        self.inbox: Inbox[Event | Judged] = Inbox()
        self.policies = Policies(settings.hostname)
        self.judge = Judge(self.book, self.policies, self.inbox.put_urgent)
        self.sensors = SensorSet(
            self.judge,
            self.inbox.put,
            settings.network_interval,
            settings.process_events,
            settings.write_prevention,
            layout=runtime.cgroup_layout,
        )
        self.tracker = ContainerTracker(runtime, [self])
        self.forensics = HostForensics(settings, runtime, link.audits_of)
        self.enforcer = Enforcer(runtime, link, self.forensics, _pods(settings), self.settled)
        self.actions = Actions(self.enforcer, link, settings.hostname)
        self._model_states: dict[str, str] = {}
        self._rules_doc: object = _NOT_READ  # the stored rules last parsed
        self.handled = 0
        self.unmatched = 0  # events of containers no longer (or not yet) tracked
        self.started_at = time.time()
        self.stopped_at: float | None = None  # a clean stop, in the last status
        self._stopping = asyncio.Event()
        self._next_status = 0.0
        self._next_prune = 0.0

    # -- container listener (called on the loop by the tracker) -------------------------------

    def on_start(self, info: ContainerInfo) -> None:
        if info.id in self.enforcer.blocked and self._still_blocked(info.id):
            self.actions.restarted_while_blocked(info)
            return
        self.forensics.lifecycle(info, "start")
        self.book.container_started(info)
        policy = self.policies.add(info)
        readonly = policy.filesystem.readonly_paths
        self._arm_kernel(info.id, policy)
        self.sensors.watch(info, policy.needs_open_perm, self._learning(info.id), readonly)
        self.handle_events(list(self.sensors.processes.snapshot(info.id)))
        log.info("watching %s (%s) under rule %r", info.name, info.image_name, policy.rule_name)

    def _still_blocked(self, container_id: str) -> bool:
        """Ask the store, not the copy of a second ago: ``unblock`` then ``docker start``
        may come quicker than that (a rare read, on a blocked container's start only)."""
        try:
            self.enforcer.refresh()
        except GarrisonError as exc:
            log.error("blocked containers unreadable (%s); keeping the last known", exc)
        return container_id in self.enforcer.blocked

    def on_remove(self, container_id: str) -> None:
        """A removed container cannot be started again: its block, if any, is over."""
        was_blocked = container_id in self.enforcer.blocked
        self.enforcer.forget(container_id)
        if was_blocked:
            self.actions.forget_block(container_id)

    def on_stop(self, container_id: str) -> None:
        self.forensics.stopped(container_id)
        self.sensors.unwatch(container_id)
        self.policies.remove(container_id)
        self.book.container_stopped(container_id)

    # -- lifecycle ---------------------------------------------------------------------------

    async def serve(self) -> None:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        # Verdicts wait on the GIL: with Python's default 5 ms switch interval, a sensor thread
        # answering the kernel could wait that long behind the loop or the proc connector.
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self.inbox.bind(asyncio.get_running_loop())
        for error in self.book.load(await asyncio.to_thread(self.link.load_models)):
            log.warning("stored model skipped: %s", error)
        await self.enforcer.load()
        self.forensics.start()
        self.actions.resume_blocks()
        self.enforcer.resume_captures()
        await self._report_incidents()
        self._sync_rules()
        self.sensors.start()
        await self.tracker.start(wait_for_runtime=True)

    def request_stop(self) -> None:
        self._stopping.set()

    async def main_loop(self) -> None:
        beat = claim("defender-loop", LOOP_BOUND_SECONDS)
        try:
            await self._loop(beat.beat)
        finally:
            beat.release()

    async def _loop(self, beat: Callable[[], None]) -> None:
        next_tick = 0.0
        while not self._stopping.is_set():
            beat()
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
        await self.actions.drain()
        self.handle_events(self.inbox.drain(limit=len(self.inbox) + 1))
        self.forensics.stop()  # a capture under way is given up: the next defender redoes it
        self.stopped_at = time.time()
        self.tick(force_status=True)
        await asyncio.to_thread(self.link.flush, 10.0)

    async def _report_incidents(self) -> None:
        """Store the watchdog's reports of the defenders before this one (a stall it ended, a
        crash), then tell it they are stored: until then it hands them to the next one."""
        if self.watchdog is None or not self.watchdog.pending:
            return
        for incident in self.watchdog.pending:
            await asyncio.to_thread(self.link.store_audit, self._incident_audit(incident))
        board = defender_board()
        if board is not None:
            board.acknowledge(len(self.watchdog.pending))

    def _incident_audit(self, incident: Incident) -> Audit:
        attack = "defender_stalled" if incident.kind == "stall" else "defender_crashed"
        return Audit(
            time=incident.time,
            hostname=self.settings.hostname,
            type="defender",
            attackType=attack,
            effect="allow",
            msg=f"defender pid {incident.pid} {incident.detail}; restarted by the watchdog",
            pid=incident.pid,
        )

    async def settled(self, timeout: float = SETTLE_SECONDS) -> bool:
        """Until the events the file sensors had queued when called are handled (in the
        journal's buffer): a block's bundle then holds the write that preceded the exec it
        stopped, however far behind the write's reader ran. False after ``timeout``."""
        deadline = time.monotonic() + timeout
        if not await _until(self.sensors.caught_up, deadline):
            return False
        target = self.inbox.received
        return await _until(lambda: self.inbox.taken >= target, deadline)  # the loop's round

    # -- work ----------------------------------------------------------------------------------

    def handle_events(self, items: list[Event | Judged]) -> None:
        for item in items:
            try:
                self._handle(item)
            except GarrisonError as exc:  # a bad event never stops the defender
                log.warning("event of %s dropped: %s", item.container_id[:12], exc)

    def _handle(self, item: Event | Judged) -> None:
        container = self.tracker.get(item.container_id)
        model = self.book.for_container(item.container_id)
        policy = self.policies.for_container(item.container_id)
        if container is None or model is None or policy is None:
            self.unmatched += 1
            return
        self.handled += 1
        self.forensics.saw(item.event if isinstance(item, Judged) else item)
        if isinstance(item, Judged):
            self.actions.act(container, model, item.event, item.decisions, refused=item.refused)
            return
        found = self._evaluate(item, container, model, policy)
        killed = isinstance(item, ProcessEvent) and item.killed  # at its exec, in the kernel
        if isinstance(item, ProcessEvent) and item.killed and not refuses(found):
            found = [killed_at_exec(policy, item), *found]  # the kernel knew less than here
        if found:
            self.actions.act(container, model, item, found, refused=killed)

    def _evaluate(
        self, event: Event, container: ContainerInfo, model: RuntimeModel, policy: EffectivePolicy
    ) -> list[Decision]:
        """Learn from the event; find what is wrong with it unless that was judged already
        in the permission path (execs seen by fanotify, writes refused at open)."""
        host = self.settings.hostname
        if isinstance(event, ProcessEvent):
            if not event.killed:  # a program killed before it ran teaches the model nothing
                model.observe_process(event, container, host)
            if event.source == "fanotify":
                return []
            return evaluate_process(policy, model, event, exec_facts(event, container.upper_dir))
        if isinstance(event, FileEvent):
            model.observe_file(event, container, host)
            return evaluate_file(policy, model, event, file_facts(event, container))
        model.observe_net(event, container, host)
        return evaluate_network(policy, model, event)

    def tick(self, force_status: bool = False) -> None:
        """Each second: user commands, learning time, model saves; the status now and then."""
        try:
            sync_models(self.book, self.link)
            self._sync_rules()
            self.enforcer.restore_unblocked()
            self.enforcer.refresh()
        except GarrisonError as exc:
            log.error("sync with the store failed (will retry): %s", exc)
        self._check_model_states()
        now = time.monotonic()
        if now >= self._next_prune:  # exits the proc connector lost leave stale entries
            self.sensors.processes.prune()
            self._next_prune = now + PRUNE_SECONDS
        if force_status or now >= self._next_status:
            self.link.report_status(self.status())
            self._next_status = now + self.settings.status_interval

    def _sync_rules(self) -> None:
        """Runtime rules from the store: swapped in when they changed (within a second).
        The stored document is compared first: parsing it (pydantic, every expression
        compiled) each second would cost a large rule set a core's tenth."""
        doc = self.link.get_policy(RUNTIME_KIND)
        if doc == self._rules_doc:
            return
        self._rules_doc = doc  # a document refused once is not parsed (and logged) again
        try:
            rules = rules_from_doc(doc)
        except InvalidInput as exc:
            log.error("%s; the rules in force stay", exc)
            return
        if self.policies.swap(rules):
            self.sensors.forget_ignores()
            for container_id in self.tracker.containers():
                policy = self.policies.for_container(container_id)
                if policy is not None:
                    self._arm_kernel(container_id, policy)
                    self.sensors.guard_writes(
                        container_id, policy.needs_open_perm, policy.filesystem.readonly_paths
                    )

    def _arm_kernel(self, container_id: str, policy: EffectivePolicy) -> None:
        """What the kernel kills at exec in this container, before the program runs: its
        fileless execs, and loader runs of files the model and rules do not allow."""
        self.sensors.kill_fileless(container_id, policy.processes.kills_fileless)
        model = self.book.for_container(container_id)
        names = loader_names(policy, model, model.process_names()) if model else None
        self.sensors.kill_loaders(container_id, names)

    def _learning(self, container_id: str) -> bool:
        model = self.book.for_container(container_id)
        return model is not None and str(model.state) != "active"

    def _check_model_states(self) -> None:
        """A model that changed state changes what the kernel may skip, whether the
        skipped execs are recorded (while it learns), and what a loader may load."""
        states = {m.profile_id: str(m.state) for m in self.book}
        if any(self._model_states.get(k, v) != v for k, v in states.items()):
            for container_id in self.tracker.containers():
                self.sensors.set_learning(container_id, self._learning(container_id))
                policy = self.policies.for_container(container_id)
                if policy is not None:
                    self._arm_kernel(container_id, policy)
            self.sensors.forget_ignores()
        self._model_states = states

    def status(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for model in self.book:
            states[str(model.state)] = states.get(str(model.state), 0) + 1
        watching = sorted(self.tracker.containers())
        return {
            "hostname": self.settings.hostname,
            "pid": os.getpid(),
            "version": __version__,
            "startedAt": self.started_at,
            "updatedAt": time.time(),
            "state": "running" if self.stopped_at is None else "stopped",
            "stoppedAt": self.stopped_at,
            "dockerHost": self.settings.docker_host or "",
            "statusInterval": self.settings.status_interval,
            "containers": len(watching),
            "watching": watching,
            "models": states,
            "events": {
                "received": self.inbox.received,
                "dropped": self.inbox.dropped,
                "handled": self.handled,
                "unmatched": self.unmatched,
                "verdicts": self.judge.verdicts,
            },
            "audits": self.actions.audits,
            "rules": self.policies.engine.version[:12],
            "enforcement": {
                "blocks": self.enforcer.blocks,
                "kills": self.enforcer.kills,
                "podDeletions": dict(self.enforcer.pod_deletions),
                "failures": self.enforcer.failures,
                "blocked": len(self.enforcer.blocked),
                "pending": len(self.enforcer.pending()),
            },
            "forensics": self.forensics.counters(),
            "sensors": self.sensors.counters(),
            "verdictLatency": self.sensors.verdict_latency(),
            "tracker": asdict(self.tracker.stats),
            "watchdog": self.watchdog.status() if self.watchdog else None,
            "link": self.link.counters(),
        }


def _pods(settings: Settings) -> Pods | None:
    """The pod deleter of ``block_deletes_pod``: the pod's service account, read at start so
    that a defender outside a cluster says so at once (ConfigError), not at its first block."""
    if not settings.block_deletes_pod:
        return None
    return PodDeleter.in_cluster()


async def _until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` on the loop until it holds (True) or ``deadline`` passes (False)."""
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(WAIT_SECONDS / 5)
    return True
