"""Request bodies read as dockerd's Go JSON decoder reads them.

Go's ``encoding/json`` matches object keys to struct fields without regard to case (exact
match first, then Unicode case folding, so ``privileged``, ``PRIVILEGED`` and even
``\u017fecurityOpt`` with a long s name real fields), lets a later duplicate key win, merges an
object given twice into the same struct or map, keeps a plain value when given ``null`` and
ignores unknown keys. A plugin that read ``body["HostConfig"]["Privileged"]`` would let
``{"hostconfig": {"privileged": true}}`` through. So bodies are rewritten here into the
canonical field names of the structs dockerd decodes them into (moby ``api/types/container``),
keeping only the fields it knows.

Docker 20.10 also decodes a create body's host configuration from its top level when it has no
``HostConfig`` (moby v20.10 ``runconfig.ContainerConfigWrapper``, a deprecated embedding):
``{"Image": "x", "Privileged": true}`` is a privileged container there. :func:`create_body`
gives that case the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from garrison.errors import InvalidInput

MAX_DEPTH = 64  # a create body nests about six levels deep


class Kind:
    """How a field's value is decoded."""

    LEAF = "leaf"  # bool, string, number: null keeps the value before
    POINTER = "pointer"  # *bool, *int64: null clears it
    MAP = "map"  # keys kept as sent; a second object merges into the first
    LIST = "list"  # replaced by a later duplicate; null clears it


@dataclass(frozen=True, slots=True)
class Struct:
    """A Go struct: its JSON field names, each with its kind or nested struct."""

    fields: Mapping[str, Field]

    def field_for(self, key: str) -> str | None:
        if key in self.fields:
            return key
        folded = key.casefold()
        return next((name for name in self.fields if name.casefold() == folded), None)


@dataclass(frozen=True, slots=True)
class ListOf:
    """A slice of structs."""

    item: Struct


Field = Union[str, Struct, ListOf]  # noqa: UP007 (a runtime alias)
L, P, M, S = Kind.LEAF, Kind.POINTER, Kind.MAP, Kind.LIST


def _struct(**fields: Field) -> Struct:
    return Struct(fields)


HEALTHCHECK = _struct(Test=S, Interval=L, Timeout=L, StartPeriod=L, StartInterval=L, Retries=L)
CONFIG = _struct(
    Hostname=L, Domainname=L, User=L, AttachStdin=L, AttachStdout=L, AttachStderr=L,
    ExposedPorts=M, Tty=L, OpenStdin=L, StdinOnce=L, Env=S, Cmd=S, Healthcheck=HEALTHCHECK,
    ArgsEscaped=L, Image=L, Volumes=M, WorkingDir=L, Entrypoint=S, NetworkDisabled=L,
    MacAddress=L, OnBuild=S, Labels=M, StopSignal=L, StopTimeout=P, Shell=S,
)  # fmt: skip
MOUNT = _struct(
    Type=L, Source=L, Target=L, ReadOnly=L, Consistency=L,
    BindOptions=_struct(Propagation=L, NonRecursive=L, CreateMountpoint=L,
                        ReadOnlyNonRecursive=L, ReadOnlyForceRecursive=L),
    VolumeOptions=_struct(NoCopy=L, Labels=M, Subpath=L,
                          DriverConfig=_struct(Name=L, Options=M)),
    TmpfsOptions=_struct(SizeBytes=L, Mode=L, Options=S),
    ImageOptions=_struct(Subpath=L),
)  # fmt: skip
RESOURCES = _struct(
    CpuShares=L, Memory=L, NanoCpus=L, CgroupParent=L, BlkioWeight=L, BlkioWeightDevice=S,
    BlkioDeviceReadBps=S, BlkioDeviceWriteBps=S, BlkioDeviceReadIOps=S, BlkioDeviceWriteIOps=S,
    CpuPeriod=L, CpuQuota=L, CpuRealtimePeriod=L, CpuRealtimeRuntime=L, CpusetCpus=L,
    CpusetMems=L, Devices=ListOf(_struct(PathOnHost=L, PathInContainer=L, CgroupPermissions=L)),
    DeviceCgroupRules=S, DeviceRequests=S, KernelMemory=L, KernelMemoryTCP=L,
    MemoryReservation=L, MemorySwap=L, MemorySwappiness=P, OomKillDisable=P, PidsLimit=P,
    Ulimits=S, CpuCount=L, CpuPercent=L, IOMaximumIOps=L, IOMaximumBandwidth=L,
)  # fmt: skip
HOST_CONFIG = _struct(
    Binds=S, ContainerIDFile=L, LogConfig=_struct(Type=L, Config=M), NetworkMode=L,
    PortBindings=M, RestartPolicy=_struct(Name=L, MaximumRetryCount=L), AutoRemove=L,
    VolumeDriver=L, VolumesFrom=S, ConsoleSize=S, Annotations=M, CapAdd=S, CapDrop=S,
    CgroupnsMode=L, Dns=S, DnsOptions=S, DnsSearch=S, ExtraHosts=S, GroupAdd=S, IpcMode=L,
    Cgroup=L, Links=S, OomScoreAdj=L, PidMode=L, Privileged=L, PublishAllPorts=L,
    ReadonlyRootfs=L, SecurityOpt=S, StorageOpt=M, Tmpfs=M, UTSMode=L, UsernsMode=L, ShmSize=L,
    Sysctls=M, Runtime=L, Isolation=L, Mounts=ListOf(MOUNT), MaskedPaths=S, ReadonlyPaths=S,
    Init=P, **RESOURCES.fields,
)  # fmt: skip
# Docker 20.10's create wrapper: Config and (deprecated) HostConfig embedded at its top level.
CREATE = Struct(
    {**CONFIG.fields, **HOST_CONFIG.fields, "HostConfig": HOST_CONFIG, "Cpuset": L,
     "NetworkingConfig": M}
)  # fmt: skip
EXEC = _struct(
    User=L, Privileged=L, Tty=L, ConsoleSize=S, AttachStdin=L, AttachStderr=L, AttachStdout=L,
    Detach=L, DetachKeys=L, Env=S, WorkingDir=L, Cmd=S,
)  # fmt: skip
# Fields of the old top-level host configuration that 20.10 copies into a HostConfig given too.
_CARRIED = ("Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver")

Pairs = list[tuple[str, Any]]


def load(body: bytes, what: str) -> Pairs:
    """A JSON object's members in order, duplicates kept; InvalidInput when not one."""
    try:
        doc = json.loads(body, object_pairs_hook=_Object)
    except RecursionError as exc:
        raise InvalidInput(f"the {what} request body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the {what} request body is not JSON") from exc
    if not isinstance(doc, _Object):
        raise InvalidInput(f"the {what} request body is not a JSON object")
    if _depth(doc) > MAX_DEPTH:
        raise InvalidInput(f"the {what} request body nests more than {MAX_DEPTH} levels")
    return list(doc)


class _Object(list[tuple[str, Any]]):
    """A JSON object as decoded: its members in order."""


def _depth(value: Any) -> int:
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        children = [v for _, v in item] if isinstance(item, _Object) else item
        if isinstance(item, (_Object, list)):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def decode(pairs: Pairs, struct: Struct, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """The struct's fields as Go would fill them (over ``into``, the struct decoded so far),
    under their canonical names."""
    out: dict[str, Any] = dict(into or {})
    for key, value in pairs:
        name = struct.field_for(key)
        if name is not None:
            _assign(out, name, value, struct.fields[name])
    return out


def _assign(out: dict[str, Any], name: str, value: Any, kind: Field) -> None:
    if value is None:
        if kind != Kind.LEAF and not isinstance(kind, Struct):
            out.pop(name, None)  # pointers, maps, slices: nil
        return
    if isinstance(kind, Struct):
        if isinstance(value, _Object):
            before = out.get(name)
            out[name] = decode(list(value), kind, before if isinstance(before, dict) else None)
        else:
            out[name] = value  # a type error for dockerd: the request fails there
    elif isinstance(kind, ListOf) and isinstance(value, list):
        out[name] = [decode(list(v), kind.item) if isinstance(v, _Object) else v for v in value]
    elif kind == Kind.MAP and isinstance(value, _Object):
        before = out.get(name)
        out[name] = {**(before if isinstance(before, dict) else {}), **_plain(value)}
    else:
        out[name] = _plain(value)


def _plain(value: Any) -> Any:
    """A decoded value back to plain dicts and lists (keys as sent, last duplicate wins)."""
    if isinstance(value, _Object):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def create_body(body: bytes) -> dict[str, Any]:
    """A ``containers/create`` body as dockerd reads it: the container config at the top, the
    host config under ``HostConfig`` (taken from the top level where 20.10 takes it)."""
    top = decode(load(body, "/containers/create"), CREATE)
    inner = top.pop("HostConfig", None)
    outer = {k: top.pop(k) for k in list(top) if k in HOST_CONFIG.fields}
    host = outer
    if isinstance(inner, dict):
        host = dict(inner)
        for key in _CARRIED:
            if outer.get(key) and not host.get(key):
                host[key] = outer[key]
    cpuset = top.pop("Cpuset", None)
    if cpuset and not host.get("CpusetCpus"):
        host["CpusetCpus"] = cpuset
    top.pop("NetworkingConfig", None)
    return {**top, "HostConfig": host}


def exec_body(body: bytes) -> dict[str, Any]:
    """A ``containers/{id}/exec`` body as dockerd reads it."""
    return decode(load(body, "/containers/{id}/exec"), EXEC)
