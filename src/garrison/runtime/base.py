"""What Garrison needs of a container runtime, whichever it is (Docker, containerd)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from garrison.sensors.cgroup_layout import CgroupLayout

ORCHESTRATOR_LABELS = {
    "io.kubernetes.pod.name": "kubernetes",
    "io.kubernetes.container.name": "kubernetes",
    "com.docker.swarm.service.id": "swarm",
    "com.docker.swarm.task.id": "swarm",
}


def orchestrator_of(labels: Mapping[str, str]) -> str | None:
    """The orchestrator ("kubernetes", "swarm") owning a container with these labels."""
    for key, name in ORCHESTRATOR_LABELS.items():
        if key in labels:
            return name
    return None


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = "no"  # "no", "always", "unless-stopped", "on-failure"
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One container as the defender tracks it."""

    id: str
    name: str
    image_name: str
    image_id: str
    image_digest: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    pid: int = 0  # host pid of the container's first process; 0 when not running
    merged_dir: str | None = None  # overlay MergedDir: the root file system seen from the host
    upper_dir: str | None = None  # overlay UpperDir: what the container created or changed
    restart_policy: RestartPolicy = RestartPolicy()
    running: bool = False
    hostname: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # Where the container sees its other file systems: volumes, bind mounts, tmpfs, and the
    # files the engine mounts into it (/etc/hosts, /etc/resolv.conf, /etc/hostname).
    mounts: tuple[str, ...] = ()
    # The runtime's own description when it was inspected (Docker's inspect document): kept
    # for a forensics bundle, since an --rm container is gone once it is stopped.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def orchestrator(self) -> str | None:
        return orchestrator_of(self.labels)

    @property
    def namespace(self) -> str | None:
        return self.labels.get("io.kubernetes.pod.namespace")


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """A container lifecycle event: action is "start", "die", "destroy", "exec_create", …"""

    action: str
    container_id: str
    time: float
    attributes: Mapping[str, str] = field(default_factory=dict)


class EventStream(Iterator[RuntimeEvent], Protocol):
    """Container events as they happen; ``close()`` may be called from another thread to end it.

    Iterating raises RuntimeUnavailable when the runtime goes away (the stream ends without
    ``close()``); after ``close()`` the iteration simply stops.
    """

    def close(self) -> None: ...


class ContainerRuntime(Protocol):
    """The container runtime seam. Calls block: run them off the event loop.

    Errors: ContainerGone when the container does not exist (any more), RuntimeUnavailable
    when the runtime cannot be reached, RuntimeRefused when it answers with a refusal.
    """

    @property
    def cgroup_layout(self) -> CgroupLayout:
        """Where this runtime puts its containers' cgroups: how the sensors tell which
        container a host process is in, and find a container's processes."""
        ...

    def ping(self) -> bool: ...

    def list_running(self) -> list[ContainerInfo]: ...

    def inspect(self, container_id: str) -> ContainerInfo:
        """Raises ContainerGone when it no longer exists."""
        ...

    def events(self, since: float | None = None) -> EventStream:
        """Container events; the connection is open when this returns (so nothing that
        happens after the call is missed). Raises RuntimeUnavailable when it cannot connect."""
        ...

    def kill(self, container_id: str) -> None:
        """SIGKILL the container's processes (the restart policy may start it again)."""
        ...

    def stop(self, container_id: str, timeout: int = 10) -> None: ...

    def start(self, container_id: str) -> None: ...

    def set_restart_policy(self, container_id: str, policy: RestartPolicy) -> None: ...

    # What a forensics bundle holds; a stopped container still answers them.
    def inspect_document(self, container_id: str) -> dict[str, Any]:
        """The runtime's whole description of the container (``docker inspect``)."""
        ...

    def export(self, container_id: str) -> Iterator[bytes]:
        """Its whole file system as a tar stream (``docker export``), in chunks; errors may
        come at the first chunk or midway."""
        ...

    def diff(self, container_id: str) -> list[dict[str, Any]]:
        """What changed in its file system against the image (``docker diff``)."""
        ...

    def logs(self, container_id: str, tail: int) -> bytes:
        """The last ``tail`` lines of its output, stdout and stderr, timestamped."""
        ...

    def close(self) -> None: ...
