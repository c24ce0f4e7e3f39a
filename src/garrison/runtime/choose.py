"""Which container runtime a defender defends: ``--runtime docker|containerd|auto``.

One runtime is one Docker engine, or one namespace of one containerd (``default`` for ctr and
nerdctl, ``k8s.io`` for Kubernetes' pods under containerd's CRI). ``auto`` takes the Docker
engine when one is named (``--docker-host``, ``DOCKER_HOST``) or answers at its default
socket, else containerd when it answers at its address: so a Kubernetes node whose only
runtime is containerd is found without being told, and a host with both keeps Docker.

Nothing here starts an engine or installs one: when none answers, :func:`choose_runtime`
raises RuntimeUnavailable with the one line that says how to get one. The runtimes' modules
(the Docker SDK) are imported only when a runtime is opened, never for ``--help``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from garrison.config import (
    DEFAULT_CONTAINERD_ADDRESS,
    DEFAULT_DOCKER_HOST,
    DEFAULT_NAMESPACE,
    RuntimeKind,
)
from garrison.errors import RuntimeUnavailable

if TYPE_CHECKING:
    from garrison.runtime.base import ContainerRuntime

__all__ = ["RuntimeChoice", "RuntimeKind", "choose_runtime", "named_runtime", "runtime_for"]

PING_TIMEOUT = 5


@dataclass(frozen=True, slots=True)
class RuntimeChoice:
    """A runtime named, not yet opened; ``kind`` is never "auto" here."""

    kind: Literal["docker", "containerd"]
    docker_host: str = DEFAULT_DOCKER_HOST
    containerd_address: str = DEFAULT_CONTAINERD_ADDRESS
    namespace: str = DEFAULT_NAMESPACE

    def open(self, timeout: int = 30) -> ContainerRuntime:
        """The runtime's client (no call made yet)."""
        if self.kind == "docker":
            from garrison.runtime.docker import DockerRuntime  # noqa: PLC0415 - the Docker SDK

            return DockerRuntime(self.docker_host, timeout=timeout)
        from garrison.runtime.containerd import ContainerdRuntime  # noqa: PLC0415

        return ContainerdRuntime(self.containerd_address, self.namespace, timeout=timeout)

    def answers(self) -> bool:
        """True when the runtime answers now (within a few seconds); never raises."""
        runtime = self.open(timeout=PING_TIMEOUT)
        try:
            return runtime.ping()
        finally:
            runtime.close()

    def describe(self) -> str:
        """What a person reads: ``the Docker engine at …``, ``containerd at … (namespace …)``."""
        if self.kind == "docker":
            return f"the Docker engine at {self.docker_host}"
        return f"containerd at {self.containerd_address} (namespace {self.namespace})"


def named_runtime(
    kind: RuntimeKind,
    docker_host: str | None = None,
    containerd_address: str | None = None,
    namespace: str | None = None,
) -> RuntimeChoice | None:
    """The runtime these settings name without asking any: None for ``auto`` when no Docker
    engine is named (only asking tells then)."""
    if kind == "containerd":
        return _containerd(containerd_address, namespace)
    if kind == "docker" or docker_host:
        return RuntimeChoice("docker", docker_host=docker_host or DEFAULT_DOCKER_HOST)
    return None


def _containerd(address: str | None, namespace: str | None) -> RuntimeChoice:
    return RuntimeChoice(
        "containerd",
        containerd_address=address or DEFAULT_CONTAINERD_ADDRESS,
        namespace=namespace or DEFAULT_NAMESPACE,
    )


def choose_runtime(
    kind: RuntimeKind,
    docker_host: str | None = None,
    containerd_address: str | None = None,
    namespace: str | None = None,
    *,
    command: str = "garrison",
) -> RuntimeChoice:
    """The runtime to defend, which answers; RuntimeUnavailable in one line saying how to
    start one when it does not (``command`` is how the user called Garrison)."""
    named = named_runtime(kind, docker_host, containerd_address, namespace)
    if named is not None:
        if named.answers():
            return named
        raise RuntimeUnavailable(_start_one(named, command))
    docker = RuntimeChoice("docker")
    if docker.answers():
        return docker
    containerd = _containerd(containerd_address, namespace)
    if containerd.answers():
        return containerd
    raise RuntimeUnavailable(
        f"no Docker engine answers at {docker.docker_host}, nor containerd at "
        f"{containerd.containerd_address}; start Docker or containerd, or a private "
        f"development engine with `{command} engine up`, then give its address with "
        "--docker-host or DOCKER_HOST (containerd's: --containerd-address)"
    )


def _start_one(choice: RuntimeChoice, command: str) -> str:
    if choice.kind == "docker":
        return (
            f"no Docker engine answers at {choice.docker_host}; start Docker, or a private "
            f"development engine with `{command} engine up`, then give its address with "
            "--docker-host or DOCKER_HOST"
        )
    return (
        f"no containerd answers at {choice.containerd_address} (or its client ctr is not "
        "installed); start containerd (Debian's package containerd has both), then give its "
        "socket with --containerd-address"
    )


def runtime_for(
    kind: RuntimeKind,
    docker_host: str | None = None,
    containerd_address: str | None = None,
    namespace: str | None = None,
) -> ContainerRuntime:
    """The runtime a command acts on (``containers unblock``, ``forensics export``), opened:
    the one named, else the first that answers, else the Docker engine at its default
    socket — whose errors then come only when the command needs it (an unblock of another
    host's container needs no runtime here)."""
    named = named_runtime(kind, docker_host, containerd_address, namespace)
    if named is None:
        with contextlib.suppress(RuntimeUnavailable):
            named = choose_runtime(kind, docker_host, containerd_address, namespace)
    return (named or RuntimeChoice("docker")).open()
