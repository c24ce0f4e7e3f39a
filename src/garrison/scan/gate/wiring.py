"""The gate's links to the outside: Docker for containers, the store for policies, and a probe
that says whether a plugin answers."""

from __future__ import annotations

import http.client
import io
import json
import logging
import posixpath
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from garrison.errors import GarrisonError, NotFound, ScanError
from garrison.scan.gate.gate import ContainerFacts, ContainerLookup, PasswdLookup
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


MAX_PASSWD = 1024 * 1024
_LINK_HOPS = 8


def docker_passwd(client: docker.DockerClient) -> PasswdLookup:
    """A container's ``/etc/passwd`` read with ``GET /containers/{id}/archive`` (a read-only
    call, answered by the plugin at once), following symbolic links inside the container as
    dockerd does when runc resolves ``--user``; None when the container has none."""

    def lookup(container_id: str) -> str | None:
        path = "/etc/passwd"
        for _ in range(_LINK_HOPS):
            try:
                with docker_errors(f"{path} in container {container_id}"):
                    chunks, stat = client.api.get_archive(container_id, path)
                    target = str(stat.get("linkTarget") or "")
                    data = b"" if target else _bounded(chunks, path)
            except NotFound:
                return None
            if not target:
                return _tar_member(data, path)
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        raise ScanError(f"/etc/passwd in container {container_id}: too many symbolic links")

    return lookup


def _bounded(chunks: Iterable[bytes], path: str) -> bytes:
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > MAX_PASSWD + 64 * 1024:
            raise ScanError(f"{path} is larger than {MAX_PASSWD} bytes")
    return bytes(out)


def _tar_member(data: bytes, path: str) -> str:
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = next((m for m in tar if m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            return handle.read(MAX_PASSWD).decode("utf-8", "replace") if handle else ""
    except tarfile.TarError as exc:
        raise ScanError(f"{path}: unreadable archive from the daemon ({exc})") from exc


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


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (a plugin's, dockerd's)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # closed by close()
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


def probe_plugin(socket_path: Path, timeout: float = 3.0) -> ProbeResult:
    """POST ``/Plugin.Activate`` to a plugin socket, as dockerd does."""
    conn = UnixConnection(socket_path, timeout)
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
