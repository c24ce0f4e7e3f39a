"""The correlator: reads the audits the store took since its mark, in stored order, and files
each into the incidents ``correlate.links`` finds for it.

It runs in ``garrison run`` on a thread of its own, after the store (never on the path of a
verdict), and reads every audit whichever process stored it (the defender, the gate). Its mark
moves in the transaction of the audit's last incident, so a restart neither skips an audit
nor files one twice (a join is idempotent: an incident holds an audit once).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import GarrisonError
from garrison.incidents.correlate import PROGRAM_KINDS, WINDOW, Link, links
from garrison.incidents.record import Incident
from garrison.store.base import Store

log = logging.getLogger(__name__)

BATCH = 200
RECENT = 500  # the most audits of one container looked at as partners
CONTAINERS = 1000  # containers whose recent audits are kept in memory


class Correlator:
    """Keeps the last ``RECENT`` audits of each container it saw in memory (read from the store
    the first time a container comes up), so that an audit costs no query for its partners."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.correlated = 0  # audits read
        self.joined = 0  # audits filed into an incident
        self._recent_by_container: OrderedDict[str, deque[Audit]] = OrderedDict()

    def step(self, batch: int = BATCH) -> int:
        """Correlate the audits stored since the mark; how many were read."""
        audits = self.store.audits_after(self.store.incident_mark(), batch)
        for audit in audits:
            self._correlate(audit)
        return len(audits)

    def _correlate(self, audit: Audit) -> None:
        assert audit.id is not None  # read from the store
        found = links(audit, self._recent(audit)) if audit.containerId else []
        for number, link in enumerate(found, start=1):
            self._join(link, mark=audit.id if number == len(found) else None)
        if not found:
            self.store.set_incident_mark(audit.id)
        self.correlated += 1

    def _recent(self, audit: Audit) -> list[Audit]:
        """The container's audits before this one (the window is checked by ``links``); this
        one is added for the audits after it."""
        cache = self._recent_by_container
        found = cache.get(audit.containerId)
        if found is None:
            found = deque(self._stored_before(audit), maxlen=RECENT)
            cache[audit.containerId] = found
            while len(cache) > CONTAINERS:
                cache.popitem(last=False)
        cache.move_to_end(audit.containerId)
        before = list(found)
        found.append(audit)
        return before

    def _stored_before(self, audit: Audit) -> list[Audit]:
        query = AuditFilter(container=audit.containerId, since=audit.time - WINDOW, limit=RECENT)
        older = [a for a in self.store.list_audits(query) if (a.id or 0) < (audit.id or 0)]
        return older[::-1]  # oldest first, as the deque grows

    def _join(self, link: Link, mark: int | None) -> Incident:
        first = link.audits[0]
        old = self.store.open_incident(first.containerId, link.anchor)
        times = link.times
        if old is None:
            incident = Incident(
                kind=link.kind, anchor=link.anchor, containerId=first.containerId,
                containerName=first.containerName, imageName=first.imageName,
                hostname=first.hostname, firstTime=min(times), lastTime=max(times),
            )  # fmt: skip
        else:
            incident = _grown(old, link, times)
        known = old.auditIds if old else ()
        new = [(a.id or 0, t) for a, t in zip(link.audits, link.times, strict=True)
               if a.id not in known]  # fmt: skip
        self.joined += len(new)
        return self.store.save_incident(incident, new, mark)


def _grown(old: Incident, link: Link, times: Sequence[float]) -> Incident:
    kind = min(old.kind, link.kind, key=_strength)
    return Incident(
        kind=kind, anchor=old.anchor, containerId=old.containerId,
        containerName=old.containerName, imageName=old.imageName, hostname=old.hostname,
        firstTime=min(old.firstTime, *times), lastTime=max(old.lastTime, *times),
        state=old.state, auditIds=old.auditIds, id=old.id,
    )  # fmt: skip


def _strength(kind: str) -> int:
    return PROGRAM_KINDS.index(kind) if kind in PROGRAM_KINDS else len(PROGRAM_KINDS)


class CorrelatorThread:
    """``Correlator.step`` every ``interval`` seconds (at once again while audits wait)."""

    def __init__(self, store: Store, interval: float = 1.0) -> None:
        self.correlator = Correlator(store)
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="garrison-incidents", daemon=True)

    def start(self) -> CorrelatorThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.correlator.step() == BATCH
            except GarrisonError as exc:  # the store is down or full: try again later
                log.error("incidents: %s", exc)
                busy = False
            if not busy:
                self._stopping.wait(self.interval)
