"""The Docker Engine behind the ContainerRuntime seam, through the ``docker`` SDK (v7).

Every call blocks on the daemon's socket: callers on an event loop run them in a thread
(``asyncio.to_thread`` or an executor), as ContainerTracker does. Docker's errors are
mapped here, once: NotFound → ContainerGone, a daemon that cannot be reached →
RuntimeUnavailable, any other refusal → RuntimeRefused.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import docker
import docker.errors
import docker.transport.unixconn
import docker.utils
import requests.exceptions
from docker.types.daemon import CancellableStream

from garrison.errors import ContainerGone, RuntimeRefused, RuntimeUnavailable
from garrison.runtime.base import ContainerInfo, RestartPolicy, RuntimeEvent
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout

T = TypeVar("T")
Json = Mapping[str, Any]

EXPORT_CHUNK = 1024 * 1024

# A daemon going away shows as one of these from requests/urllib3 (the socket refused, reset,
# or timed out), or as a DockerException when the SDK cannot even build the connection.
_UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError)


def _close_socket_on_failed_connect() -> None:
    """Backport of docker/docker-py PR #3356 (open upstream as of docker 7.1).

    ``UnixHTTPConnection.connect`` leaves its socket open when ``connect()`` fails, so every
    call made while dockerd is down leaks a socket until the garbage collector finds it (a
    ResourceWarning each time) — and the tracker calls in a loop while it reconnects.
    """
    cls: Any = docker.transport.unixconn.UnixHTTPConnection
    if getattr(cls.connect, "_garrison_fixed", False):
        return

    def connect(self: Any) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_socket)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    connect._garrison_fixed = True  # type: ignore[attr-defined]
    cls.connect = connect


_close_socket_on_failed_connect()


class DockerRuntime:
    """A Docker Engine, reached at ``base_url`` (``unix:///path/docker.sock``).

    ``base_url=None`` follows ``DOCKER_HOST`` and the SDK's defaults. The SDK client is
    made on first use, so a runtime can be built before its daemon is up.
    """

    def __init__(self, base_url: str | None = None, timeout: int = 30) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._api: docker.APIClient | None = None
        self._lock = threading.Lock()
        self._digests: dict[str, str | None] = {}

    def _client(self) -> docker.APIClient:
        with self._lock:
            if self._api is None:
                self._api = _call("", self._connect)
            return self._api

    def _connect(self) -> docker.APIClient:
        kwargs: dict[str, Any] = {"timeout": self.timeout, "version": "auto"}
        if self.base_url is None:
            kwargs.update(docker.utils.kwargs_from_env())
        else:
            kwargs["base_url"] = self.base_url
        return docker.APIClient(**kwargs)

    @property
    def cgroup_layout(self) -> CgroupLayout:
        return DOCKER_LAYOUT

    def ping(self) -> bool:
        """True when the daemon answers; never raises."""
        try:
            return bool(_call("", lambda: self._client().ping()))
        except (RuntimeUnavailable, RuntimeRefused):
            return False

    def list_running(self) -> list[ContainerInfo]:
        """Every running container, inspected; those gone meanwhile are left out."""
        rows = _call("", lambda: self._client().containers(quiet=True))
        infos = []
        for row in rows:
            with contextlib.suppress(ContainerGone):
                infos.append(self.inspect(row["Id"]))
        return infos

    def inspect(self, container_id: str) -> ContainerInfo:
        data = self.inspect_document(container_id)
        return info_from_inspect(data, digest=self._image_digest(data.get("Image", "")))

    def inspect_document(self, container_id: str) -> dict[str, Any]:
        return dict(_call(container_id, lambda: self._client().inspect_container(container_id)))

    def export(self, container_id: str) -> Iterator[bytes]:
        """``GET /containers/{id}/export``, 1 MiB at a time; errors mapped as they come."""
        chunks = _call(container_id, lambda: self._client().export(container_id, EXPORT_CHUNK))
        while True:
            chunk = _call(container_id, lambda: next(chunks, None))
            if chunk is None:
                return
            yield chunk

    def diff(self, container_id: str) -> list[dict[str, Any]]:
        changes = _call(container_id, lambda: self._client().diff(container_id))
        return [dict(c) for c in changes or []]

    def logs(self, container_id: str, tail: int) -> bytes:
        def read() -> bytes:
            text = self._client().logs(container_id, tail=tail, timestamps=True)
            return text if isinstance(text, bytes) else b""

        return _call(container_id, read)

    def _image_digest(self, image_id: str) -> str | None:
        """The image's first repo digest (``name@sha256:…``); None for local or built images."""
        if not image_id:
            return None
        if image_id not in self._digests:
            try:
                data = _call(image_id, lambda: self._inspect_image(image_id))
            except ContainerGone:  # the image was removed after the container was created
                return None
            digests = data.get("RepoDigests") or []
            self._digests[image_id] = digests[0] if digests else None
        return self._digests[image_id]

    def _inspect_image(self, image_id: str) -> Json:
        return self._client().inspect_image(image_id)  # type: ignore[no-untyped-call,no-any-return]

    def events(self, since: float | None = None) -> DockerEventStream:
        """Container events from now (or ``since``); the connection is open on return."""
        # Whole seconds, rounded down: at worst an event is seen twice, never missed.
        start = None if since is None else int(since)
        filters = {"type": "container"}
        stream = _call("", lambda: self._client().events(since=start, filters=filters, decode=True))
        return DockerEventStream(stream)

    def kill(self, container_id: str) -> None:
        _call(container_id, lambda: self._client().kill(container_id, signal="SIGKILL"))

    def stop(self, container_id: str, timeout: int = 10) -> None:
        _call(container_id, lambda: self._client().stop(container_id, timeout=timeout))

    def start(self, container_id: str) -> None:
        _call(container_id, lambda: self._client().start(container_id))

    def set_restart_policy(self, container_id: str, policy: RestartPolicy) -> None:
        """Change a live container's restart policy (refused when it has AutoRemove)."""
        # Any: the stubs allow only "always" and "on-failure", but "no" and "unless-stopped" work.
        body: Any = {"Name": policy.name, "MaximumRetryCount": policy.maximum_retry_count}
        _call(
            container_id, lambda: self._client().update_container(container_id, restart_policy=body)
        )

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None


class DockerEventStream:
    """``GET /events`` decoded to RuntimeEvents; ``close()`` works from any thread."""

    def __init__(self, stream: CancellableStream[dict[str, Any]]) -> None:
        self._stream = stream
        self._closed = False

    def __iter__(self) -> Iterator[RuntimeEvent]:
        return self

    def __next__(self) -> RuntimeEvent:
        while True:
            try:
                message = next(self._stream)
            except StopIteration:
                if self._closed:
                    raise
                raise RuntimeUnavailable("the Docker event stream ended") from None
            except _UNREACHABLE as exc:
                if self._closed:
                    raise StopIteration from exc
                raise RuntimeUnavailable(f"the Docker event stream broke: {exc}") from exc
            event = event_from_message(message)
            if event is not None:
                return event

    def close(self) -> None:
        self._closed = True
        # The socket may already be gone with its daemon: nothing left to close then.
        with contextlib.suppress(OSError, docker.errors.DockerException, AttributeError):
            self._stream.close()


def _call(what: str, fn: Callable[[], T]) -> T:
    """Run one SDK call, mapping Docker's errors to Garrison's (``what`` names the object)."""
    try:
        return fn()
    except docker.errors.NotFound as exc:
        raise ContainerGone(what, f"{what[:12] or 'object'} is gone: {_explain(exc)}") from exc
    except docker.errors.APIError as exc:
        raise RuntimeRefused(f"Docker refused: {_explain(exc)}") from exc
    except (docker.errors.DockerException, *_UNREACHABLE) as exc:
        raise RuntimeUnavailable(f"Docker cannot be reached: {exc}") from exc


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


# The files Docker bind-mounts into every container, by the inspect field naming their source.
_MANAGED = (("HostsPath", "/etc/hosts"), ("ResolvConfPath", "/etc/resolv.conf"),
            ("HostnamePath", "/etc/hostname"))  # fmt: skip


def info_from_inspect(data: Json, digest: str | None = None) -> ContainerInfo:
    """A ContainerInfo from ``GET /containers/{id}/json``."""
    config = data.get("Config") or {}
    state = data.get("State") or {}
    running = bool(state.get("Running"))
    return ContainerInfo(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        image_name=config.get("Image") or "",
        image_id=data.get("Image") or "",
        image_digest=digest,
        labels=dict(config.get("Labels") or {}),
        pid=int(state.get("Pid") or 0) if running else 0,
        merged_dir=((data.get("GraphDriver") or {}).get("Data") or {}).get("MergedDir"),
        upper_dir=((data.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir"),
        restart_policy=_restart_policy((data.get("HostConfig") or {}).get("RestartPolicy")),
        document=data,
        running=running,
        hostname=config.get("Hostname") or "",
        entrypoint=_argv(config.get("Entrypoint")),
        cmd=_argv(config.get("Cmd")),
        mounts=_mount_points(data),
    )


def _mount_points(data: Json) -> tuple[str, ...]:
    """Volumes and bind mounts, tmpfs mounts, and the files Docker manages, by where the
    container sees them."""
    points = [str(m.get("Destination") or "") for m in data.get("Mounts") or []]
    points += list((data.get("HostConfig") or {}).get("Tmpfs") or {})
    points += [point for key, point in _MANAGED if data.get(key)]
    return tuple(dict.fromkeys(p for p in points if p.startswith("/")))


def _restart_policy(data: Json | None) -> RestartPolicy:
    if not data:
        return RestartPolicy()
    # Docker reports "no" as an empty name on containers created without --restart.
    name = data.get("Name") or "no"
    return RestartPolicy(name=name, maximum_retry_count=int(data.get("MaximumRetryCount") or 0))


def _argv(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # the API allows a bare string for Entrypoint/Cmd
        return (value,)
    return tuple(value)


def event_from_message(message: Json) -> RuntimeEvent | None:
    """A RuntimeEvent from one ``/events`` message; None for non-container messages.

    Docker puts exec commands and health results in the action itself
    (``"exec_create: /bin/sh -c id"``, ``"health_status: healthy"``): the action is cut at
    the colon and the rest kept as the ``command`` or ``status`` attribute.
    """
    if message.get("Type", "container") != "container":
        return None
    actor = message.get("Actor") or {}
    container_id = actor.get("ID") or message.get("id") or ""
    raw_action = str(message.get("Action") or message.get("status") or "")
    action, _, rest = raw_action.partition(": ")
    attributes = dict(actor.get("Attributes") or {})
    if rest:
        attributes["status" if action == "health_status" else "command"] = rest
    return RuntimeEvent(
        action=action,
        container_id=container_id,
        time=_event_time(message),
        attributes=attributes,
    )


def _event_time(message: Json) -> float:
    nano = message.get("timeNano")
    if nano:
        return int(nano) / 1e9
    return float(message.get("time") or 0)
