"""Which containers run, kept current from the runtime's event stream, across daemon restarts.

The tracker adopts every running container at start, then follows the runtime's events.
When the stream breaks (dockerd restarted, socket gone) it reconnects with a capped backoff,
lists the running containers again and reconciles its table with them, so listeners see an
``on_stop`` for each container that went away and an ``on_start`` for each new one.

Blocking runtime calls run on a small dedicated executor; the event stream is read by its own
thread, which feeds an asyncio queue. Listeners are called on the event loop, one event at a
time in the order Docker sent them; they must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from garrison.errors import ContainerGone, RuntimeUnavailable
from garrison.runtime.base import ContainerInfo, ContainerRuntime, EventStream, RuntimeEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

# Actions after which the container may have started running (or changed while running).
_REFRESH_ACTIONS = frozenset({"start", "restart", "unpause", "update", "rename"})
_GONE_ACTIONS = frozenset({"die", "destroy"})


class ContainerListener(Protocol):
    """What the tracker tells: called on the event loop, so each must return quickly.

    An exception raised by a listener is logged and counted; the others are still called.
    """

    def on_start(self, info: ContainerInfo) -> None:
        """A container runs: adopted at start or after a reconnect, or just started.
        A container whose first process changed (restarted) gets on_stop, then on_start."""
        ...

    def on_stop(self, container_id: str) -> None:
        """It stopped running (die, destroy, gone on inspect, or absent after a reconnect)."""
        ...

    def on_update(self, info: ContainerInfo) -> None:
        """Still running with the same pid, but something changed: name, restart policy…"""
        ...

    def on_exec(self, container_id: str, command: str) -> None:
        """Docker's ``exec_start`` (the command now runs); health checks are execs too."""
        ...

    def on_remove(self, container_id: str) -> None:
        """The container was removed (``destroy``): after its on_stop, it is gone for good."""
        ...


class ListenerBase:
    """A listener that ignores everything: subclass it and override what you need."""

    def on_start(self, info: ContainerInfo) -> None:
        pass

    def on_stop(self, container_id: str) -> None:
        pass

    def on_update(self, info: ContainerInfo) -> None:
        pass

    def on_exec(self, container_id: str, command: str) -> None:
        pass

    def on_remove(self, container_id: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial``, doubling, never above ``cap`` (seconds)."""

    initial: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.initial * 2 ** max(0, attempt)))


@dataclass(slots=True)
class TrackerStats:
    """Counters for ``garrison status``."""

    events: int = 0  # container events received
    reconnects: int = 0  # event streams opened after the first
    failed_connects: int = 0  # attempts to reach the runtime that failed
    gone_on_inspect: int = 0  # containers that vanished between their event and inspect
    listener_errors: int = 0  # exceptions raised by listeners (logged, then ignored)
    connected: bool = False


class _StreamEnd:
    """Put on the queue by the reader thread when its stream stops, with the reason."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ContainerTracker:
    """The table of running containers, followed from the runtime's events."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        listeners: Iterable[ContainerListener] = (),
        backoff: Backoff | None = None,
    ) -> None:
        self.runtime = runtime
        self.stats = TrackerStats()
        self._listeners = list(listeners)
        self._backoff = backoff or Backoff()
        self._table: dict[str, ContainerInfo] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="garrison-runtime")
        self._task: asyncio.Task[None] | None = None
        self._stream: EventStream | None = None
        self._stopping = False
        self._synced = asyncio.Event()

    def add_listener(self, listener: ContainerListener) -> None:
        self._listeners.append(listener)

    def containers(self) -> dict[str, ContainerInfo]:
        """A snapshot of the running containers, by id."""
        return dict(self._table)

    def get(self, container_id: str) -> ContainerInfo | None:
        return self._table.get(container_id)

    async def start(self, wait_for_runtime: bool = False) -> None:
        """Adopt the running containers, then follow events in a background task.

        Raises RuntimeUnavailable when the runtime cannot be reached, unless
        ``wait_for_runtime``: then it keeps trying (with backoff) in the background.
        """
        queue: asyncio.Queue[RuntimeEvent | _StreamEnd] = asyncio.Queue()
        try:
            await self._connect(queue)
        except RuntimeUnavailable:
            if not wait_for_runtime:
                self._executor.shutdown(wait=False)
                raise
            self.stats.failed_connects += 1
            queue = asyncio.Queue()
            queue.put_nowait(_StreamEnd(None))
        self._task = asyncio.create_task(self._follow(queue), name="garrison-container-tracker")

    async def wait_synced(self) -> None:
        """Return once the table has been reconciled with the runtime (after start or loss)."""
        await self._synced.wait()

    async def stop(self) -> None:
        """Stop following events; listeners get nothing more."""
        self._stopping = True
        self._close_stream()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.stats.connected = False

    async def _connect(self, queue: asyncio.Queue[RuntimeEvent | _StreamEnd]) -> None:
        """Open the event stream first, then list: nothing that happens in between is lost."""
        stream = await self._blocking(self.runtime.events)
        self._stream = stream
        _start_reader(stream, queue, asyncio.get_running_loop())
        try:
            running = await self._blocking(self.runtime.list_running)
        except BaseException:
            self._close_stream()
            raise
        self._reconcile(running)
        self.stats.connected = True
        self._synced.set()

    async def _follow(self, queue: asyncio.Queue[RuntimeEvent | _StreamEnd]) -> None:
        attempt = 0
        while not self._stopping:
            item = await queue.get()
            if isinstance(item, RuntimeEvent):
                attempt = 0
                await self._handle(item)
                continue
            queue = await self._reconnect(item, attempt)
            attempt += 1

    async def _reconnect(
        self, end: _StreamEnd, attempt: int
    ) -> asyncio.Queue[RuntimeEvent | _StreamEnd]:
        """Wait, then connect again; on failure the new queue holds only a stream end."""
        self.stats.connected = False
        self._synced.clear()
        self._close_stream()
        log.warning("container event stream lost (%s); reconnecting", end.error)
        await asyncio.sleep(self._backoff.delay(attempt))
        queue: asyncio.Queue[RuntimeEvent | _StreamEnd] = asyncio.Queue()
        try:
            await self._connect(queue)
        except RuntimeUnavailable as exc:
            self.stats.failed_connects += 1
            queue = asyncio.Queue()
            queue.put_nowait(_StreamEnd(exc))
        else:
            self.stats.reconnects += 1
        return queue

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    async def _handle(self, event: RuntimeEvent) -> None:
        self.stats.events += 1
        if event.action in _REFRESH_ACTIONS:
            await self._refresh(event.container_id)
        elif event.action in _GONE_ACTIONS:
            self._gone(event.container_id)
            if event.action == "destroy":
                self._notify(lambda listener: listener.on_remove(event.container_id))
        elif event.action == "exec_start":
            command = event.attributes.get("command", "")
            self._notify(lambda listener: listener.on_exec(event.container_id, command))

    async def _refresh(self, container_id: str) -> None:
        try:
            info = await self._blocking(self.runtime.inspect, container_id)
        except ContainerGone:
            self.stats.gone_on_inspect += 1
            self._gone(container_id)
            return
        except RuntimeUnavailable:
            return  # the stream breaks too, and the reconcile after it catches up
        if info.running:
            self._put(info)
        else:
            self._gone(container_id)

    def _reconcile(self, running: list[ContainerInfo]) -> None:
        """Make the table what the runtime says runs now, telling listeners the difference."""
        current = {info.id: info for info in running}
        for container_id in list(self._table):
            if container_id not in current:
                self._gone(container_id)
        for info in running:
            self._put(info)

    def _put(self, info: ContainerInfo) -> None:
        old = self._table.get(info.id)
        if old == info:
            return
        if old is not None and old.pid != info.pid:
            # A new first process (restarted while we were away): a new root mount too, so
            # listeners drop the old one and set up again.
            self._gone(info.id)
            old = None
        self._table[info.id] = info
        if old is None:
            self._notify(lambda listener: listener.on_start(info))
        else:
            self._notify(lambda listener: listener.on_update(info))

    def _gone(self, container_id: str) -> None:
        if self._table.pop(container_id, None) is not None:
            self._notify(lambda listener: listener.on_stop(container_id))

    def _notify(self, call: Callable[[ContainerListener], None]) -> None:
        for listener in self._listeners:
            try:
                call(listener)
            except Exception:
                self.stats.listener_errors += 1
                log.exception("container listener %r failed", listener)

    async def _blocking(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)


def _start_reader(
    stream: EventStream,
    queue: asyncio.Queue[RuntimeEvent | _StreamEnd],
    loop: asyncio.AbstractEventLoop,
) -> threading.Thread:
    """Read the blocking stream in a daemon thread, handing each event to the loop."""

    def put(item: RuntimeEvent | _StreamEnd) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed before the stream
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        error: BaseException | None = None
        try:
            for event in stream:
                put(event)
        except Exception as exc:
            error = exc
        put(_StreamEnd(error))

    thread = threading.Thread(target=read, name="garrison-runtime-events", daemon=True)
    thread.start()
    return thread
