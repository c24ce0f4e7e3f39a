"""Where a container runtime puts its containers' cgroups, as a value the runtime hands out.

A :class:`CgroupLayout` answers the two questions the sensors ask of cgroups: which container
a ``/proc/PID/cgroup`` names (:meth:`CgroupLayout.container_id`), and where under a cgroup
hierarchy a container's cgroup may be (:attr:`CgroupLayout.dirs`). The runtime knows its
layout (``ContainerRuntime.cgroup_layout``); :data:`DOCKER_LAYOUT` is the default everywhere.

The forms, as their owners write them:

- Docker: ``/docker/<64 hex>`` (cgroupfs driver) or ``/system.slice/docker-<64 hex>.scope``
  (systemd driver).
- containerd through ``ctr`` (its default OCI spec, ``populateDefaultUnixSpec`` in
  containerd's oci/spec.go): ``/<namespace>/<container id>``, the id chosen by the user.
  Seen on this machine: tests/sensors/data/procfs_cgroup_containerd_*.
- containerd's CRI plugin under Kubernetes: kubelet names the pod's cgroup and the CRI plugin
  puts the container in it (``getCgroupsPath`` in containerd's pkg/cri/server/helpers_linux.go:
  ``<parent>/<id>`` for cgroupfs, ``<slice>:cri-containerd:<id>`` for systemd, which runc
  expands to ``cri-containerd-<id>.scope``). kubelet's pod cgroup
  (pkg/kubelet/cm/cgroup_manager_linux.go, qos_container_manager_linux.go,
  pod_container_manager_linux.go) is ``/kubepods[/<qos>]/pod<uid>`` for cgroupfs and
  ``/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid>.slice`` for systemd,
  where ``-`` of the uid becomes ``_`` (a dash is a level in a systemd slice name) and the
  QoS level is absent for Guaranteed pods. CRI-O names its container ``crio-<id>`` (cgroupfs)
  or ``crio-<id>.scope`` (systemd) in the same pod cgroups; its ``crio-conmon-<id>.scope`` is
  the monitor, on the host side.

A layout whose ids a user chooses is strict: the id must be a valid containerd identifier,
directly under one of its namespaces at the root of the hierarchy, so that ordinary host
cgroups (``/user.slice/…``, ``/system.slice/foo.service``, ``/init.scope``, ``/``) are never
taken for a container.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# containerd's identifiers (identifiers/validate.go): alphanumeric runs joined by one of
# ``._-``, at most 76 characters. Namespaces are validated by the same rule.
CONTAINERD_ID = rb"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*"
CONTAINERD_ID_MAX = 76
_CONTAINERD_ID_TEXT = re.compile(CONTAINERD_ID.decode())
_HEX64 = rb"[0-9a-f]{64}"
_QOS = ("besteffort", "burstable")


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """How one runtime names its containers' cgroups.

    ``patterns`` find the container id (their first group) in ``/proc/PID/cgroup``, tried in
    order over the whole file. ``dirs`` are the container's cgroup under a hierarchy, with
    ``{id}`` for the container id; a ``*`` stands for what the id does not tell (a pod's
    uid, its QoS class), so such dirs are globbed. ``valid_id`` is what an id must look like
    before it is put into a path (required when a dir globs); None takes any id.
    """

    name: str
    patterns: tuple[re.Pattern[bytes], ...]
    dirs: tuple[str, ...]
    valid_id: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.valid_id is None and any("*" in d for d in self.dirs):
            raise ValueError(f"cgroup layout {self.name}: globbed dirs need valid_id")

    def container_id(self, raw: bytes) -> str | None:
        """The container id that ``raw`` (a ``/proc/PID/cgroup``) names, else None."""
        for pattern in self.patterns:
            match = pattern.search(raw)
            if match:
                return match.group(1).decode()
        return None

    def accepts(self, container_id: str) -> bool:
        """Whether ``container_id`` may be put into this layout's dirs."""
        return self.valid_id is None or self.valid_id.fullmatch(container_id) is not None


DOCKER_LAYOUT = CgroupLayout(
    name="docker",
    patterns=(re.compile(rb"(?:/docker/|/docker-)([0-9a-f]{64})(?:\.scope)?(?:/|$)", re.M),),
    dirs=("docker/{id}", "system.slice/docker-{id}.scope"),
)


def kubepods_patterns(scope: str, leaf: str = "") -> tuple[re.Pattern[bytes], ...]:
    """kubelet's pod cgroups holding a CRI runtime's container: ``<scope>-<id>.scope`` in the
    systemd form, ``<leaf><id>`` in the cgroupfs form. A parent above ``kubepods`` (kubelet's
    ``--cgroup-root``, ``kubelet-`` in kind) is allowed: the pod and the 64-hex leaf are
    specific enough."""
    qos = b"(?:" + b"|".join(q.encode() for q in _QOS) + b")"
    pod_slice = rb"[/-]kubepods(?:-" + qos + rb")?-pod[0-9a-f_]+\.slice/"
    pod_dir = rb"/kubepods(?:/" + qos + rb")?/pod[0-9a-f-]+/"
    systemd = pod_slice + re.escape(scope.encode()) + b"-(" + _HEX64 + rb")\.scope(?:/|$)"
    cgroupfs = pod_dir + re.escape(leaf.encode()) + b"(" + _HEX64 + b")(?:/|$)"
    return re.compile(systemd, re.M), re.compile(cgroupfs, re.M)


def kubepods_dirs(scope: str, leaf: str = "") -> tuple[str, ...]:
    """Those pod cgroups under kubelet's default root, Burstable/BestEffort then Guaranteed."""
    return (
        f"kubepods/*/pod*/{leaf}{{id}}",
        f"kubepods/pod*/{leaf}{{id}}",
        f"kubepods.slice/kubepods-*.slice/kubepods-*-pod*.slice/{scope}-{{id}}.scope",
        f"kubepods.slice/kubepods-pod*.slice/{scope}-{{id}}.scope",
    )


def containerd_layout(*namespaces: str) -> CgroupLayout:
    """containerd's containers in ``namespaces`` (``default`` when none): ``/<namespace>/<id>``,
    and for ``k8s.io`` (the CRI plugin's) also kubelet's pod cgroups. One value per set of
    names (a runtime asks on every access).

    Raises ValueError for a name that is not a containerd namespace.
    """
    return _containerd_layout(namespaces or ("default",))


@functools.cache
def _containerd_layout(names: tuple[str, ...]) -> CgroupLayout:
    for name in names:
        if not _is_containerd_id(name):
            raise ValueError(f"{name!r} is not a containerd namespace")
    alternatives = b"|".join(re.escape(n.encode()) for n in names)
    # The line's path is /<namespace>/<id>: anchored at the root of the hierarchy, so that no
    # deeper host cgroup is taken for a container. The lookahead bounds the id's length.
    bounded = b"(?=[A-Za-z0-9._-]{1,%d}(?:/|$))" % CONTAINERD_ID_MAX
    line = rb"^[0-9]+:[^:\n]*:/(?:" + alternatives + rb")/" + bounded
    named = re.compile(line + b"(" + CONTAINERD_ID + rb")(?:/|$)", re.M)
    patterns: tuple[re.Pattern[bytes], ...] = (named,)
    dirs = tuple(f"{name}/{{id}}" for name in names)
    if "k8s.io" in names:
        patterns += kubepods_patterns("cri-containerd")
        dirs += kubepods_dirs("cri-containerd")
    valid = re.compile(f"(?=.{{1,{CONTAINERD_ID_MAX}}}$){_CONTAINERD_ID_TEXT.pattern}")
    return CgroupLayout(f"containerd({','.join(names)})", patterns, dirs, valid)


# CRI-O under Kubernetes: no runtime of Garrison's speaks to it yet; the layout is here so that
# its processes are told from the host's when one does.
CRIO_LAYOUT = CgroupLayout(
    name="cri-o",
    patterns=kubepods_patterns("crio", "crio-"),
    dirs=kubepods_dirs("crio", "crio-"),
    valid_id=re.compile("[0-9a-f]{64}"),
)


def _is_containerd_id(name: str) -> bool:
    return len(name) <= CONTAINERD_ID_MAX and _CONTAINERD_ID_TEXT.fullmatch(name) is not None
