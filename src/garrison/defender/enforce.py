"""Acting on findings: kill a process seen only after its exec, block a container.

Blocking stops the container at once (SIGKILL, no grace period; killed through the API it
counts as stopped by hand, so Docker does not restart it). On a Docker-only host its restart
policy is then set to ``unless-stopped``, so that a dockerd restart does not start it either,
and the original policy is recorded for ``garrison containers unblock`` to restore. Under an
orchestrator (Kubernetes, Swarm labels) the policy is left alone: the orchestrator replaces
the container with a fresh one. Docker calls block, so they run in threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

from garrison.audit.record import Audit
from garrison.console.link import ConsoleLink
from garrison.errors import ContainerGone, RuntimeRefused, RuntimeUnavailable
from garrison.runtime.base import ContainerInfo, ContainerRuntime, RestartPolicy
from garrison.store.base import BlockedContainer

log = logging.getLogger(__name__)

BLOCKED_POLICY = RestartPolicy("unless-stopped")
RETRIES = (0.1, 0.3, 1.0)
REMOVED_MAX = 4096


class Enforcer:
    def __init__(self, runtime: ContainerRuntime, link: ConsoleLink) -> None:
        self.runtime = runtime
        self.link = link
        self.blocked: set[str] = set()  # containers Garrison keeps stopped
        self.blocks = 0
        self.kills = 0
        self.failures = 0
        self._busy: set[str] = set()
        self._removed: set[str] = set()

    async def load(self) -> None:
        """The blocked containers; records of containers removed meanwhile are dropped."""
        records = await asyncio.to_thread(self.link.list_blocked)
        self.blocked = set()
        for record in records:
            if await self._exists(record.container_id):
                self.blocked.add(record.container_id)
            else:
                await asyncio.to_thread(self.link.remove_blocked, record.container_id)

    def refresh(self) -> None:
        """The blocked containers as the store has them now (``unblock`` is another
        process); a synchronous read: call it off the verdict path."""
        self.blocked = {r.container_id for r in self.link.list_blocked()}

    async def _exists(self, container_id: str) -> bool:
        try:
            await asyncio.to_thread(self.runtime.inspect, container_id)
        except ContainerGone:
            return False
        except RuntimeUnavailable:
            return True  # unknown: keep the block
        return True

    def kill_process(self, pid: int) -> bool:
        """Kill a process that ran before it could be refused (off the root file system)."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills += 1
        return True

    async def block(self, container: ContainerInfo, audit: Audit) -> None:
        """Stop ``container`` and keep it stopped; the audit says why. Once at a time."""
        if container.id in self._busy:
            return
        self._busy.add(container.id)
        try:
            original = await self._stop(container)
            stored = await asyncio.to_thread(self.link.store_audit, audit)
            if original is not None and container.id not in self.blocked | self._removed:
                record = BlockedContainer(
                    container.id, container.name, container.image_name, original,
                    stored.id, time.time(),
                )  # fmt: skip
                await asyncio.to_thread(self.link.add_blocked, record)
                if container.id in self._removed:  # removed while the record was written
                    await asyncio.to_thread(self.link.remove_blocked, container.id)
                else:
                    self.blocked.add(container.id)
            self.blocks += 1
        finally:
            self._busy.discard(container.id)

    async def _stop(self, container: ContainerInfo) -> RestartPolicy | None:
        """SIGKILL first — through the API it counts as a stop by hand, so even ``always``
        does not restart it now — then the restart policy, which keeps a dockerd restart
        from starting it again. Returns the policy to restore on unblock; None when the
        container was gone already."""
        original = container.restart_policy
        try:
            await self._retry(self.runtime.kill, container.id)
            if container.orchestrator is None:
                await self._retry(self.runtime.set_restart_policy, container.id, BLOCKED_POLICY)
        except ContainerGone:
            log.info("container %s was gone before it could be blocked", container.id[:12])
            return None
        except (RuntimeUnavailable, RuntimeRefused) as exc:
            self.failures += 1
            log.error("blocking %s failed: %s", container.id[:12], exc)
        return original

    async def _retry(self, call: Callable[..., None], *args: object) -> None:
        """Docker unreachable: try again a few times. Refused: done when the refusal means
        the goal holds (not running; an --rm container whose policy cannot change)."""
        for delay in (*RETRIES, None):
            try:
                await asyncio.to_thread(call, *args)
                return
            except RuntimeRefused as exc:
                text = str(exc).lower()
                if "not running" in text or "autoremove" in text:
                    return
                if "marked for removal" in text or "removal of container" in text:
                    raise ContainerGone(str(args[0]), str(exc)) from exc
                raise
            except RuntimeUnavailable:
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    def forget(self, container_id: str) -> None:
        """The container was removed: no block to keep (nor to record, if one is under way)."""
        if len(self._removed) >= REMOVED_MAX:
            self._removed.clear()
        self._removed.add(container_id)
        self.blocked.discard(container_id)
        with contextlib.suppress(KeyError):
            self._busy.remove(container_id)
