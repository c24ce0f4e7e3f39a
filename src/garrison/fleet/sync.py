"""A host's long-polled sync: one request that waits at the console until there is something
new for the host — policies, model commands, models other hosts saved — or ``wait`` seconds
passed, instead of two requests a second from every host.

The host says what it holds (``SyncAsk``: the tag of its policies, its models cursor, the ids
of the commands it was given); the console answers at once when any differs from the store,
else it holds the request. ``ChangeWatch`` reads the store's ``sync_marks`` every
``WATCH_EVERY`` seconds (one cheap query for all hosts; a change made through another console
replica is seen alike) and wakes the held requests when they move. A woken request whose news
is only the policies costs no query: the policies are read once per change for all hosts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool

from garrison.errors import InvalidInput, StoreError
from garrison.store.base import Doc, SyncMarks

log = logging.getLogger(__name__)

WATCH_EVERY = 0.5  # seconds between reads of the store's sync marks
MAX_WAIT = 30.0  # seconds a sync request is held at most (the host asks for 25)
MAX_COMMANDS = 1000  # command ids (and blocked containers) a host may name
CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,75}")  # Docker's hex, containerd's names


@dataclasses.dataclass(frozen=True, slots=True)
class SyncAsk:
    """What a host holds: the tag of its policies ('' for none), the console time its models
    stand at (None: it does not pull models on this request), the ids of the model commands it
    was given, how long it will wait for news, and the containers it keeps blocked that the
    console has a record of (one the console no longer has was unblocked there)."""

    policies: str = ""
    models: float | None = None
    commands: frozenset[int] = frozenset()
    wait: float = 0.0
    blocked: frozenset[str] = frozenset()  # its blocks the console has: one gone, unblocked

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> SyncAsk:
        """From the request's query; InvalidInput for a malformed one."""
        try:
            wait = float(query.get("wait", "0"))
            models = None if "models" not in query else float(query["models"])
            ids = [int(i) for i in query.get("commands", "").split(",") if i]
        except ValueError as exc:
            raise InvalidInput("wait and models are numbers, commands whole numbers") from exc
        blocked = frozenset(b for b in query.get("blocked", "").split(",") if b)
        if not 0.0 <= wait <= MAX_WAIT or max(len(ids), len(blocked)) > MAX_COMMANDS:
            raise InvalidInput(f"wait is 0 to {MAX_WAIT:g} s, and at most {MAX_COMMANDS} ids")
        if models is not None and not models >= 0.0:
            raise InvalidInput("models is a time of at least 0")
        if not all(CONTAINER_ID.fullmatch(b) for b in blocked):
            raise InvalidInput("blocked holds container ids")
        return cls(query.get("policies", "")[:64], models, frozenset(ids), wait, blocked)

    def query(self) -> dict[str, str]:
        """The request's query (what a host sends)."""
        query = {"wait": f"{self.wait:g}", "policies": self.policies}
        if self.models is not None:
            query["models"] = repr(self.models)
        if self.commands:
            query["commands"] = ",".join(str(i) for i in sorted(self.commands))
        if self.blocked:
            query["blocked"] = ",".join(sorted(self.blocked))
        return query


def policies_tag(policies: Doc) -> str:
    """A short digest of the policies: a host sends it back, the console compares."""
    text = json.dumps(policies, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ChangeWatch:
    """The store's sync marks, read every ``every`` seconds on the console's event loop, and
    the held requests waiting for them to move. ``generation`` counts the moves."""

    def __init__(self, read: Callable[[], SyncMarks], every: float = WATCH_EVERY) -> None:
        self.read, self.every = read, every
        self.marks: SyncMarks | None = None
        self.generation = 0
        self._moved = asyncio.Event()
        self._failing = False

    async def run(self) -> None:
        """Until cancelled: read the marks, and wake the waiters when they moved."""
        while True:
            await self.check()
            await asyncio.sleep(self.every)

    async def check(self) -> None:
        try:
            marks = await run_in_threadpool(self.read)
        except StoreError as exc:  # the database away: held requests end at their time
            if not self._failing:
                log.warning("sync marks: %s", exc)
            self._failing = True
            return
        self._failing = False
        if marks != self.marks:
            self.marks = marks
            self.generation += 1
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    async def wait_past(self, generation: int, timeout: float) -> None:
        """Return once the marks moved past ``generation``, or after ``timeout`` seconds."""
        if self.generation != generation or timeout <= 0:
            return
        moved = self._moved
        try:
            await asyncio.wait_for(moved.wait(), timeout)
        except TimeoutError:
            return


@dataclasses.dataclass
class HeldSync:
    """One host's sync request while it is held: what it asked, until when, and the commands
    and blocked containers found for it (read again only when their marks moved)."""

    ask: SyncAsk
    deadline: float
    commands: list[Doc] | None = None
    commands_mark: int | None = None
    blocked: list[str] | None = None  # the host's blocked containers at the console
    blocked_mark: tuple[int, float] | None = None

    @classmethod
    def of(cls, ask: SyncAsk) -> HeldSync:
        return cls(ask, time.monotonic() + ask.wait)

    def left(self) -> float:
        return self.deadline - time.monotonic()
