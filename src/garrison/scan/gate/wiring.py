"""The gate's links to the outside: Docker for containers, the store for policies, and a probe
that says whether a plugin answers."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from garrison.errors import GarrisonError
from garrison.scan.gate.gate import ContainerFacts, ContainerLookup
from garrison.scan.rules import Policies, PolicyStore, load_policies
from garrison.scan.scanner import docker_errors

log = logging.getLogger(__name__)


def docker_containers(client: docker.DockerClient) -> ContainerLookup:
    """Container facts by id or name, read with ``GET /containers/{ref}/json``."""

    def lookup(ref: str) -> ContainerFacts:
        with docker_errors(f"container {ref}"):
            attrs: dict[str, Any] = client.containers.get(ref).attrs
        config = attrs.get("Config") or {}
        return ContainerFacts(
            id=str(attrs.get("Id", ref)),
            name=str(attrs.get("Name", "")).lstrip("/"),
            image=str(config.get("Image", "")),
            image_id=str(attrs.get("Image", "")),
            labels=dict(config.get("Labels") or {}),
        )

    return lookup


class StoredPolicies:
    """The policies in the store, read again at most every ``ttl`` seconds.

    When a stored document cannot be read the last good policies stay in force (and the
    error is logged); with none yet, the error is raised and the gate refuses.
    """

    def __init__(
        self,
        store: PolicyStore | None,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._policies: Policies | None = None
        self._read_at = float("-inf")

    def __call__(self) -> Policies:
        with self._lock:
            if self._policies is None or self.clock() - self._read_at >= self.ttl:
                self._reload()
            assert self._policies is not None
            return self._policies

    def _reload(self) -> None:
        try:
            self._policies = load_policies(self.store)
        except GarrisonError:
            if self._policies is None:
                raise
            log.exception("stored policies unreadable; keeping the previous ones")
        self._read_at = self.clock()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    answering: bool
    detail: str


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.path))
        self.sock = sock


def probe_plugin(socket_path: Path, timeout: float = 3.0) -> ProbeResult:
    """POST ``/Plugin.Activate`` to a plugin socket, as dockerd does."""
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("POST", "/Plugin.Activate", body=b"{}")
        reply = conn.getresponse()
        doc = json.loads(reply.read() or b"{}")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"{socket_path}: {exc}")
    finally:
        conn.close()
    if "authz" not in (doc.get("Implements") or []):
        return ProbeResult(False, f"{socket_path} answers but does not implement authz")
    return ProbeResult(True, f"{socket_path} answers (implements authz)")


def socket_of_spec(spec_path: Path) -> Path | None:
    """The unix socket a ``.spec`` file names, or None when it names something else."""
    try:
        text = spec_path.read_text().strip()
    except OSError:
        return None
    return Path(text[len("unix://") :]) if text.startswith("unix://") else None
