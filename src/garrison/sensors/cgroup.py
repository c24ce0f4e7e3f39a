"""Which host pids belong to a container, and which container a pid belongs to.

A runtime puts every process of a container in one cgroup named after the container id; the
runtime's :class:`CgroupLayout` says how (Docker's ``/docker/<id>`` or
``/system.slice/docker-<id>.scope``, containerd's ``/<namespace>/<id>``, kubelet's pod cgroups:
see ``cgroup_layout``). Docker's is the default. The hierarchy may be cgroup v2 mounted at the
root (``/sys/fs/cgroup``) or at ``/sys/fs/cgroup/unified`` beside v1 controllers (the hybrid
layout of this machine), or v1 alone; every hierarchy is tried, v2 first. ``cgroup.procs``
lists thread-group ids (cgroups(7)).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from garrison.errors import ProcessGone, SensorError
from garrison.sensors.cgroup_layout import (
    CRIO_LAYOUT,
    DOCKER_LAYOUT,
    CgroupLayout,
    containerd_layout,
)
from garrison.sensors.mountinfo import parse_mountinfo
from garrison.sensors.procfs import ProcFS

__all__ = [
    "CGROUP_ROOT",
    "CONTAINER_CGROUPS",
    "CRIO_LAYOUT",
    "DOCKER_LAYOUT",
    "HIERARCHIES",
    "CgroupLayout",
    "cgroup2_mounts",
    "container_cgroup2_id",
    "container_cgroup_dir",
    "container_of_pid",
    "container_pids",
    "containerd_layout",
]

CGROUP_ROOT = "/sys/fs/cgroup"
# Where a hierarchy may be mounted under the cgroup root: v2 alone, v2 of the hybrid layout,
# then v1 controllers that every Docker container is placed in.
HIERARCHIES = ("", "unified", "pids", "memory", "cpu", "systemd")
# A Docker container's cgroup inside a hierarchy, per cgroup driver (DOCKER_LAYOUT.dirs).
CONTAINER_CGROUPS = DOCKER_LAYOUT.dirs


def container_cgroup_dir(
    container_id: str, cgroup_root: str = CGROUP_ROOT, *, layout: CgroupLayout = DOCKER_LAYOUT
) -> str | None:
    """The container's cgroup directory in the first hierarchy that has it, else None."""
    for hierarchy in HIERARCHIES:
        for path in _candidates(os.path.join(cgroup_root, hierarchy), container_id, layout):
            if os.path.isfile(os.path.join(path, "cgroup.procs")):
                return path
    return None


def container_cgroup2_id(
    container_id: str,
    mountinfo: str = "/proc/self/mountinfo",
    *,
    layout: CgroupLayout = DOCKER_LAYOUT,
) -> int | None:
    """The id of the container's cgroup in the unified (v2) hierarchy — what the kernel's
    ``bpf_get_current_cgroup_id()`` returns for its processes — or None when no cgroup2 file
    system is mounted or the container has no cgroup there. The id is the directory's inode."""
    for mount in cgroup2_mounts(mountinfo):
        for path in _candidates(mount, container_id, layout):
            try:
                return os.stat(path).st_ino
            except OSError:
                continue
    return None


def _candidates(base: str, container_id: str, layout: CgroupLayout) -> Iterator[str]:
    """Where the container's cgroup may be under ``base``: each of the layout's dirs, the
    globbed ones (a pod's uid is not in the container id) as they exist, sorted."""
    if not layout.accepts(container_id):  # never a path made of an id the runtime refuses
        return
    for template in layout.dirs:
        relative = template.format(id=container_id)
        if "*" in template:
            yield from sorted(glob.glob(os.path.join(glob.escape(base), relative)))
        else:
            yield os.path.join(base, relative)


def cgroup2_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points of cgroup2 file systems."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    return [m.point for m in parse_mountinfo(text) if m.fstype == "cgroup2"]


def container_pids(
    container_id: str, cgroup_root: str = CGROUP_ROOT, *, layout: CgroupLayout = DOCKER_LAYOUT
) -> list[int]:
    """Host pids of every process of the container (child cgroups included), sorted.

    An empty list when the container has no cgroup (stopped, unknown or not in ``layout``).
    """
    top = container_cgroup_dir(container_id, cgroup_root, layout=layout)
    if top is None:
        return []
    pids: set[int] = set()
    for directory in _cgroup_tree(top):
        pids.update(_read_procs(os.path.join(directory, "cgroup.procs")))
    return sorted(pids)


def container_of_pid(
    pid: int, proc_root: str = "/proc", *, layout: CgroupLayout = DOCKER_LAYOUT
) -> str | None:
    """The id of the container (of ``layout``) a host pid is in; None on the host, in another
    runtime's container, or when the pid is gone."""
    try:
        return ProcFS(proc_root).container_id(pid, layout)
    except (ProcessGone, SensorError):
        return None


def _cgroup_tree(top: str) -> Iterator[str]:
    # A container may make child cgroups of its own (systemd inside, cgroup namespaces).
    yield top
    for directory, subdirs, _files in os.walk(top):
        for name in subdirs:
            yield os.path.join(directory, name)


def _read_procs(path: str) -> list[int]:
    try:
        with open(path, encoding="ascii") as f:
            return [int(line) for line in f if line.strip().isdigit()]
    except OSError:  # the cgroup was removed while we walked it: the container stopped
        return []
