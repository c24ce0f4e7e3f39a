"""One view of a container's configuration, from a ``containers/create`` request body or from
``docker inspect``, so that every check is written once.

The two shapes differ (Docker Engine API v1.41): a create body holds the container config at
its top level next to ``HostConfig``; an inspect holds it under ``Config`` and adds the resolved
``Mounts``. Inspect also rewrites some values (``CapAdd`` gains a ``CAP_`` prefix; a privileged
container gets ``label=disable`` in ``SecurityOpt``): the checks normalise those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from garrison.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Mount:
    """A host path made visible in the container."""

    source: str
    target: str
    writable: bool = True
    propagation: str = ""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """The parts of a container's configuration the checks read."""

    config: Mapping[str, Any]
    host: Mapping[str, Any]
    mounts: tuple[Mount, ...]

    @classmethod
    def from_any(cls, doc: Mapping[str, Any]) -> ContainerSpec:
        """Accept an inspect (it has ``Config``) or a create body (it does not)."""
        if not isinstance(doc, Mapping):
            raise InvalidInput("a container configuration must be a JSON object")
        if isinstance(doc.get("Config"), Mapping):
            return cls.from_inspect(doc)
        return cls.from_create(doc)

    @classmethod
    def from_create(cls, body: Mapping[str, Any]) -> ContainerSpec:
        host = _mapping(body.get("HostConfig"))
        return cls(config=body, host=host, mounts=tuple(_host_mounts(host)))

    @classmethod
    def from_inspect(cls, doc: Mapping[str, Any]) -> ContainerSpec:
        host = _mapping(doc.get("HostConfig"))
        mounts = _host_mounts(host) + [_inspect_mount(m) for m in _list(doc.get("Mounts"))]
        return cls(config=_mapping(doc.get("Config")), host=host, mounts=_unique(mounts))

    def user(self) -> str:
        """The container's own ``User`` (``--user``), "" when it has none. An inspect's holds
        the image's USER when the container was given none (dockerd merges them at create)."""
        value = self.config.get("User")
        return value if isinstance(value, str) else ""

    def mode(self, key: str) -> str:
        """A namespace mode (``NetworkMode``, ``PidMode``…), "" when unset."""
        value = self.host.get(key)
        return value if isinstance(value, str) else ""

    def security_opts(self) -> list[str]:
        return [str(opt).replace(":", "=", 1) for opt in _list(self.host.get("SecurityOpt"))]

    def capabilities_added(self) -> list[str]:
        return [_cap_name(str(cap)) for cap in _list(self.host.get("CapAdd"))]

    def number(self, key: str) -> int:
        value = self.host.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _cap_name(cap: str) -> str:
    name = cap.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def _host_mounts(host: Mapping[str, Any]) -> list[Mount]:
    binds = [_bind(str(b)) for b in _list(host.get("Binds"))]
    mounts = [_api_mount(m) for m in _list(host.get("Mounts")) if isinstance(m, Mapping)]
    return [m for m in binds + mounts if m is not None]


def _bind(spec: str) -> Mount | None:
    """``SRC:DST[:OPTS]``; a SRC that is not an absolute path is a named volume."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0].startswith("/"):
        return None
    options = parts[2].split(",") if len(parts) > 2 else []
    propagation = next((o for o in options if o.endswith("shared") or o.endswith("slave")), "")
    return Mount(parts[0], parts[1], "ro" not in options, propagation)


def _api_mount(mount: Mapping[str, Any]) -> Mount | None:
    if mount.get("Type", "bind") != "bind" or not str(mount.get("Source", "")).startswith("/"):
        return None
    options = _mapping(mount.get("BindOptions"))
    return Mount(
        source=str(mount["Source"]),
        target=str(mount.get("Target", "")),
        writable=not mount.get("ReadOnly", False),
        propagation=str(options.get("Propagation", "")),
    )


def _inspect_mount(mount: Any) -> Mount | None:
    if not isinstance(mount, Mapping) or mount.get("Type") != "bind":
        return None
    return Mount(
        source=str(mount.get("Source", "")),
        target=str(mount.get("Destination", "")),
        writable=bool(mount.get("RW", True)),
        propagation=str(mount.get("Propagation", "")),
    )


def _unique(mounts: list[Mount | None]) -> tuple[Mount, ...]:
    seen: dict[tuple[str, str], Mount] = {}
    for mount in mounts:
        if mount is not None:
            seen.setdefault((mount.source.rstrip("/") or "/", mount.target), mount)
    return tuple(seen.values())
