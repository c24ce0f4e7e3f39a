"""The ``loader_ok`` map of proc_events.bpf.c: per container, the files a dynamic loader run
by hand may load there (see garrison.policy.loader for which). A container that has such a
set is *armed*: its flags hold KILL_LOADER, and the kernel kills a loader run of any other
file at its exec.

Names are written before the flag is set and deleted after it is cleared, so that a
container is never armed with fewer names than it was given.
"""

from __future__ import annotations

import ctypes
import logging

from garrison.errors import SensorError
from garrison.sensors.bpf.libbpf import map_delete, map_update

log = logging.getLogger(__name__)

LOADER_PATH = 256  # struct loader_key's path: a name of at most 255 bytes


class _Key(ctypes.Structure):
    """struct loader_key: the cgroup v2 id and the name, NUL-padded."""

    _fields_ = (("cgroup", ctypes.c_uint64), ("path", ctypes.c_char * LOADER_PATH))


class LoaderNames:
    """What each container's ``loader_ok`` entries should be, and what the map holds."""

    def __init__(self) -> None:
        self.fd = -1  # the map, while the programs are loaded
        self._wanted: dict[str, frozenset[bytes]] = {}  # container → names (armed)
        self._written: dict[int, frozenset[bytes]] = {}  # cgroup → names in the map

    def armed(self, container_id: str) -> bool:
        return container_id in self._wanted

    @property
    def armed_count(self) -> int:
        return len(self._wanted)

    def want(self, container_id: str, names: frozenset[str] | None) -> None:
        """Arm the container with these names, or disarm it (None)."""
        if names is None:
            self._wanted.pop(container_id, None)
            return
        encoded = (n.encode() for n in names)
        self._wanted[container_id] = frozenset(n for n in encoded if len(n) < LOADER_PATH)

    def sync(self, container_id: str, cgroup: int) -> None:
        """Make the map hold what the container wants: new names first, then the stale
        ones deleted (a disarmed container wants none). A container whose names do not all
        fit is disarmed: the loader runs there are judged just after they start."""
        if self.fd < 0:
            return
        wanted = self._wanted.get(container_id, frozenset())
        written = set(self._written.get(cgroup, frozenset()))
        one = ctypes.c_uint8(1)
        try:
            for name in wanted - written:
                map_update(self.fd, _Key(cgroup, name), one)
                written.add(name)
        except SensorError as exc:  # the map is full: armed with fewer names kills wrongly
            log.warning("the loader check of %s is off: %s", container_id[:12], exc)
            self._wanted.pop(container_id, None)
            wanted = frozenset()
        for name in written - wanted:
            map_delete(self.fd, _Key(cgroup, name))
        self._written[cgroup] = wanted

    def drop(self, container_id: str, cgroup: int | None) -> None:
        """The container is no longer watched: its names leave the map."""
        self._wanted.pop(container_id, None)
        if cgroup is not None:
            self.sync(container_id, cgroup)
            self._written.pop(cgroup, None)

    def closed(self) -> None:
        """The map is gone (the programs were unloaded): nothing is written any more."""
        self.fd = -1
        self._written = {}
