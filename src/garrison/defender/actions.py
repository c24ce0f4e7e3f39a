"""From findings to audits and effects.

Each event is audited by its strongest findings (block, then prevent, then alert): a
``prevent`` on ``nc`` is one audit, not also the alerts the same exec raised.
- block: the enforcer stops the container and stores the audit;
- prevent, refused in the kernel: the audit says prevent;
- prevent, not refused (a process seen only after its exec, off the root file system): the
  process is killed and the audit says so; a write seen only after it happened is audited as
  an alert that says it could not be refused;
- alert: the audit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from garrison.audit.record import Audit
from garrison.console.link import ConsoleLink
from garrison.defender.enforce import Enforcer
from garrison.model.runtime_model import RuntimeModel
from garrison.policy import Decision
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent

log = logging.getLogger(__name__)

BLOCKED_RESTART = "blockedContainerStarted"
DRAIN_SECONDS = 5.0


def make_audit(
    container: ContainerInfo,
    profile_id: str,
    event: ProcessEvent | FileEvent | NetEvent,
    decision: Decision,
    host: str,
) -> Audit:
    fields: dict[str, Any] = {"pid": event.pid or 0}
    if isinstance(event, ProcessEvent):
        fields |= {"processPath": event.path, "command": event.command, "user": event.user}
        fields["parentPath"] = event.parent_path
    else:
        fields["processPath"] = event.process_path
    if isinstance(event, FileEvent):
        fields["filePath"] = event.path
    if isinstance(event, NetEvent):
        fields |= _net_fields(event)
    return Audit(
        time=time.time(),
        hostname=host,
        containerId=container.id,
        containerName=container.name,
        imageName=container.image_name,
        imageId=container.image_id,
        labels=dict(container.labels),
        profileId=profile_id,
        **decision.audit_fields(),
        **fields,
    )


def _net_fields(event: NetEvent) -> dict[str, Any]:
    if event.kind == "listen":
        return {"port": event.local_port}
    return {"remoteIP": event.remote_ip, "port": event.remote_port}


class Actions:
    def __init__(self, enforcer: Enforcer, link: ConsoleLink, host: str) -> None:
        self.enforcer = enforcer
        self.forensics = enforcer.forensics  # the journal keeps every audit of a container
        self.link = link
        self.host = host
        self.audits = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def act(
        self,
        container: ContainerInfo,
        model: RuntimeModel,
        event: ProcessEvent | FileEvent | NetEvent,
        decisions: Sequence[Decision],
        *,
        refused: bool,
    ) -> None:
        strongest = [d for d in decisions if d.effect == decisions[0].effect]
        audits = [make_audit(container, model.profile_id, event, d, self.host) for d in strongest]
        self.audits += len(audits)
        if strongest[0].effect == "block":
            self._journal(audits[:1])
            self._spawn(self.enforcer.block(container, audits[0]))
            audits = audits[1:]
        elif strongest[0].effect == "prevent" and not refused:
            audits = [self._prevent_after_the_fact(event, a) for a in audits]
        for audit in audits:
            self.link.report_audit(audit)
        self._journal(audits)

    def _journal(self, audits: Sequence[Audit]) -> None:
        if self.forensics is not None:
            for audit in audits:
                self.forensics.audited(audit)

    def _prevent_after_the_fact(self, event: object, audit: Audit) -> Audit:
        if isinstance(event, ProcessEvent) and self.enforcer.kill_process(event.pid):
            return dataclasses.replace(audit, msg=f"{audit.msg}; seen after it started: killed")
        return dataclasses.replace(
            audit, effect="alert", msg=f"{audit.msg}; it happened before it could be refused"
        )

    def restarted_while_blocked(self, container: ContainerInfo) -> None:
        """A blocked container was started again (by hand, or by Docker): stop it again."""
        audit = Audit(
            time=time.time(),
            hostname=self.host,
            type="processes",
            attackType=BLOCKED_RESTART,
            effect="block",
            msg=f"container {container.name} is blocked by Garrison and was started again",
            containerId=container.id,
            containerName=container.name,
            imageName=container.image_name,
            imageId=container.image_id,
            labels=dict(container.labels),
        )
        self.audits += 1
        self._journal([audit])
        self._spawn(self.enforcer.block(container, audit))

    def resume_blocks(self) -> None:
        """Finish the blocks a defender before this one left pending (it died mid-block)."""
        for record in self.enforcer.pending():
            self._spawn(self.enforcer.resume(record))

    def forget_block(self, container_id: str) -> None:
        self._spawn(self._remove_blocked(container_id))

    async def _remove_blocked(self, container_id: str) -> None:
        await asyncio.to_thread(self.link.remove_blocked, container_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("enforcement failed: %s", task.exception())

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Wait for blocks under way (at shutdown); one Docker keeps refusing is left pending
        in the store, for the next defender to finish."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("%d block(s) left pending at shutdown", len(late))
            await asyncio.gather(*late, return_exceptions=True)
