"""Acting on findings: kill a process seen only after its exec, block a container.

Blocking stops the container at once (SIGKILL, no grace period; killed through the API it
counts as stopped by hand, so Docker does not restart it). On a Docker-only host its restart
policy is then set to ``unless-stopped``, so that a dockerd restart does not start it either,
and the original policy is recorded for ``garrison containers unblock`` to restore. Under an
orchestrator (Kubernetes, Swarm labels) the policy is left alone: the orchestrator replaces
the container with a fresh one. Docker calls block, so they run in threads, off the event loop.

A block is crash-safe: its intent — the container, its original restart policy, the audit — is
stored in one transaction, as a *pending* record, before the kill; the record turns *done*
once the container is stopped and its policy changed. A defender that dies in between finds
the pending record when it starts and finishes the block (``resume``). A kill or an update that
Docker refuses, or that cannot reach Docker, is tried again with a growing backoff; until it
succeeds the record stays pending with the reason (``garrison containers blocked``), and a
container seen starting meanwhile is killed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, KeysView

from garrison.audit.record import Audit
from garrison.console.link import ConsoleLink
from garrison.errors import (
    ConfigError,
    ContainerGone,
    InvalidInput,
    KubernetesError,
    RuntimeRefused,
    RuntimeUnavailable,
)
from garrison.forensics.capture import CaptureStopped, Request
from garrison.forensics.host import HostForensics
from garrison.k8s.pods import Pods, pod_of
from garrison.runtime.base import ContainerInfo, ContainerRuntime, RestartPolicy
from garrison.store.base import BlockedContainer, CaptureState
from garrison.watchdog.faults import crash_point

log = logging.getLogger(__name__)

BLOCKED_POLICY = RestartPolicy("unless-stopped")
RETRIES = (0.1, 0.3, 1.0)  # within one attempt, while Docker cannot be reached
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # between attempts of a pending block
REMOVED_MAX = 4096


class Enforcer:
    def __init__(
        self,
        runtime: ContainerRuntime,
        link: ConsoleLink,
        forensics: HostForensics | None = None,
        pods: Pods | None = None,
        settle: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settle = settle  # waits for the sensors' queued events: a capture's journal
        self.link = link
        self.forensics = forensics
        self.pods = pods  # deletes a blocked Kubernetes container's pod (block_deletes_pod)
        self.pod_deletions: dict[str, int] = {}  # outcome → count, for the status
        self._captures: set[asyncio.Task[None]] = set()  # not waited for at shutdown
        self._capture_slot = asyncio.Semaphore(1)
        self._orphans: list[BlockedContainer] = []  # removed before their capture was done
        self.records: dict[str, BlockedContainer] = {}  # containers Garrison keeps stopped
        self.blocks = 0
        self.kills = 0
        self.failures = 0
        self._busy: set[str] = set()
        self._removed: set[str] = set()
        self._restoring: list[BlockedContainer] = []  # unblocked at the console

    @property
    def blocked(self) -> KeysView[str]:
        """The containers Garrison keeps stopped, or is stopping (pending)."""
        return self.records.keys()

    def pending(self) -> list[BlockedContainer]:
        return [r for r in self.records.values() if r.state == "pending"]

    async def load(self) -> None:
        """The blocked containers; records of containers removed meanwhile are dropped."""
        records = await asyncio.to_thread(self.link.list_blocked)
        self.records = {}
        for record in records:
            if await self._exists(record.container_id):
                self.records[record.container_id] = record
            else:
                if record.capture == "pending":  # its bundle still gets what Garrison saw
                    self._orphans.append(record)
                await asyncio.to_thread(self.link.remove_blocked, record.container_id)

    def restore_unblocked(self) -> None:
        """Give the containers a user unblocked at the console (many hosts) their restart
        policies back; kept to try again while the engine does not answer. Synchronous: call
        it off the verdict path."""
        self._restoring.extend(self.link.unblocked_at_console())
        waiting = []
        for record in self._restoring:
            try:
                self.runtime.set_restart_policy(record.container_id, record.restart_policy)
            except ContainerGone:
                continue
            except (RuntimeUnavailable, RuntimeRefused) as exc:
                log.warning("restart policy of %s not restored yet: %s", record.name, exc)
                waiting.append(record)
                continue
            log.info("container %s unblocked: restart policy %s restored",
                     record.name, record.restart_policy.name)  # fmt: skip
        self._restoring = waiting

    def refresh(self) -> None:
        """The blocked containers as the store has them now (``unblock`` is another
        process); a synchronous read: call it off the verdict path."""
        self.records = {r.container_id: r for r in self.link.list_blocked()}

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
        """Stop ``container`` and keep it stopped; the audit says why. Once at a time. Then,
        the container stopped, its forensics bundle is captured (never before the kill)."""
        if container.id in self._busy:
            return
        self._busy.add(container.id)
        try:
            forensics = self.forensics
            bundle = forensics.new_bundle_id(container.id, audit.time) if forensics else ""
            record = await self._intend(container, dataclasses.replace(audit, bundle=bundle))
            request = await self._request(container, bundle, audit)  # the processes, still alive
            crash_point("audit")
            await self._enforce(record, set_policy=container.orchestrator is None)
            self.blocks += 1
            await self._delete_pod(container)
            if request is not None:
                subject = {**request.subject, "auditId": record.audit_id}
                self._capture_later(dataclasses.replace(request, subject=subject))
        finally:
            self._busy.discard(container.id)

    async def resume(self, record: BlockedContainer) -> None:
        """Finish a block a defender before this one left pending."""
        if record.container_id in self._busy:
            return
        self._busy.add(record.container_id)
        try:
            try:
                info = await asyncio.to_thread(self.runtime.inspect, record.container_id)
            except ContainerGone:
                await self._drop(record.container_id)
                self._resume_capture(record)  # what Garrison saw of it, at least
                return
            except RuntimeUnavailable:
                info = None  # the attempts below wait for Docker
            log.info("finishing the block of %s left pending", record.container_id[:12])
            orchestrated = info is not None and info.orchestrator is not None
            await self._enforce(record, set_policy=not orchestrated)
            if info is not None:
                await self._delete_pod(info)
            self._resume_capture(record)  # after the kill, as for any block
        finally:
            self._busy.discard(record.container_id)

    async def _delete_pod(self, container: ContainerInfo) -> None:
        """With ``block_deletes_pod``: the stopped container's pod deleted, so that its
        controller makes a new pod (elsewhere, maybe) rather than kubelet restarting the
        container in place. A failure leaves the block as it is: the container is stopped,
        and a restarted one is watched and judged like any other."""
        pods, pod = self.pods, pod_of(container.labels)
        if pods is None or pod is None:
            return
        try:
            outcome = (await asyncio.to_thread(pods.delete, pod)).value
        except (KubernetesError, InvalidInput, ConfigError) as exc:
            log.error("pod %s of blocked container %s not deleted: %s", pod, container.name, exc)
            outcome = "failed"
        else:
            log.info("pod %s of blocked container %s: %s", pod, container.name, outcome)
        self.pod_deletions[outcome] = self.pod_deletions.get(outcome, 0) + 1

    async def _intend(self, container: ContainerInfo, audit: Audit) -> BlockedContainer:
        """Store the audit and the pending record at once. A container blocked before keeps
        the policy it had then; one removed meanwhile keeps no record (the kill that follows
        finds it gone, or stops what is left of it)."""
        known = self.records.get(container.id)
        original = known.restart_policy if known else container.restart_policy
        record = BlockedContainer(
            container.id, container.name, container.image_name, original, None, time.time(),
            state="pending", reason="stopping", bundle=audit.bundle,
            capture="pending" if audit.bundle else "",
        )  # fmt: skip
        stored = await asyncio.to_thread(self.link.begin_block, record, audit)
        if container.id in self._removed:  # removed while the record was written
            await self._drop(container.id)
        else:
            self.records[container.id] = stored
        return stored

    # -- forensics -----------------------------------------------------------------------------

    async def _request(self, container: ContainerInfo, bundle: str, audit: Audit) -> Request | None:
        if self.forensics is None or not bundle:
            return None
        return await asyncio.to_thread(self.forensics.request, container, bundle, audit)

    def resume_captures(self) -> None:
        """Captures a defender before this one left undone (it stopped or died midway) of
        containers it had stopped (a pending block captures once ``resume`` has stopped it),
        and of containers removed since (their bundle holds what Garrison saw)."""
        done = [r for r in self.records.values() if r.state == "done"]
        for record in [*done, *self._orphans]:
            self._resume_capture(record)
        self._orphans = []

    def _resume_capture(self, r: BlockedContainer) -> None:
        if self.forensics is not None and r.capture == "pending" and r.bundle:
            self._capture_later(self.forensics.resumed(r.container_id, r.name, r.image, r.bundle))

    def _capture_later(self, request: Request) -> None:
        task = asyncio.get_running_loop().create_task(self._capture(request))
        self._captures.add(task)
        task.add_done_callback(self._captures.discard)

    async def _capture(self, request: Request) -> None:
        """One capture at a time (the default executor's threads stay free for Docker)."""
        assert self.forensics is not None
        async with self._capture_slot:
            if self.settle is not None and not await self.settle():
                log.warning("forensics: %s captured with sensor events still queued",
                            request.container_id[:12])  # fmt: skip
            try:
                await asyncio.to_thread(self.forensics.capture, request)
                state: CaptureState = "done"
            except CaptureStopped:
                return  # still pending: the next defender captures it
            except Exception:  # a capture never takes the defender down
                log.exception("forensics: capture of %s failed", request.container_id[:12])
                self.forensics.failed += 1
                state = "failed"
        record = self.records.get(request.container_id)
        if record is not None and record.bundle == request.bundle_id:
            await self._set(dataclasses.replace(record, capture=state))

    async def _enforce(self, record: BlockedContainer, set_policy: bool) -> None:
        """Kill, change the policy, record it done; again and again while Docker refuses."""
        short = record.container_id[:12]
        # A block is never given up while its container exists and is not unblocked.
        for delay in itertools.chain(BACKOFF, itertools.repeat(BACKOFF[-1])):
            try:
                await self._stop(record.container_id, set_policy)
            except ContainerGone:
                log.info("container %s was gone before it could be blocked", short)
                await self._drop(record.container_id)
                return
            except (RuntimeUnavailable, RuntimeRefused) as exc:
                self.failures += 1
                if not await self._still_pending(record, f"Docker: {exc}"):
                    return
                log.error("blocking %s failed (%s); again in %.0f s", short, exc, delay)
                await asyncio.sleep(delay)
                continue
            await self._set(dataclasses.replace(record, state="done", reason=""))
            return

    async def _stop(self, container_id: str, set_policy: bool) -> None:
        """SIGKILL first — through the API it counts as a stop by hand, so even ``always``
        does not restart it now — then the restart policy, which keeps a dockerd restart
        from starting it again."""
        await self._retry(self.runtime.kill, container_id)
        crash_point("kill")
        if set_policy:
            await self._retry(self.runtime.set_restart_policy, container_id, BLOCKED_POLICY)
            crash_point("update")

    async def _still_pending(self, record: BlockedContainer, reason: str) -> bool:
        """Record why the block is not done yet; False when it is no longer wanted (the
        container was removed or unblocked meanwhile)."""
        if record.container_id in self._removed or record.container_id not in self.records:
            return False
        if self.records[record.container_id].reason != reason:
            await self._set(dataclasses.replace(record, state="pending", reason=reason))
        return True

    async def _set(self, record: BlockedContainer) -> None:
        if record.container_id in self._removed or record.container_id not in self.records:
            return  # removed, or unblocked by the user meanwhile: no record to bring back
        await asyncio.to_thread(self.link.add_blocked, record)
        self.records[record.container_id] = record

    async def _drop(self, container_id: str) -> None:
        self.records.pop(container_id, None)
        await asyncio.to_thread(self.link.remove_blocked, container_id)

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
        self.records.pop(container_id, None)
        with contextlib.suppress(KeyError):
            self._busy.remove(container_id)
