"""containerd's documents in the shapes Docker gives, for the compliance checks.

The checks (``scan.compliance``) read Docker's image inspect, its history and its container
inspect. Under containerd the same facts are in the OCI image config and the container's OCI
runtime spec (``ctr containers info``); these pure functions rewrite one into the other.

The image (from the OCI image config, which Docker-built images fill with Docker's own keys):

- ``Id`` is the config digest, what Docker calls the image id; ``Config`` is the config's
  ``config`` as it is (``User``, ``Env``, ``ExposedPorts``, ``Cmd``, ``Labels``…), with
  ``Healthcheck`` when the image carries one (OCI has no such field; Docker writes it there);
- ``RepoTags`` are the names pointing at the same target, ``RepoDigests`` each one's
  ``repository@<target digest>`` (as ``ContainerdRuntime`` gives ``image_digest``): unlike
  Docker, a locally built image has a digest too;
- the history is Docker's ``image.history()``: newest first, ``Created`` in epoch seconds,
  ``Size`` 0 (the config does not say), ``Id`` ``<missing>`` but for the newest entry.

The container (from its record, OCI spec included) — what maps:

- ``Config.User`` is the spec's ``uid:gid``, already resolved (a name in USER was looked up
  in the image's passwd when the container was created);
- ``Privileged`` is what every runtime's privileged mode writes into the spec: the device
  cgroup open to every device, no masked /proc paths and CAP_SYS_ADMIN. As in Docker's
  inspect, a privileged container lists no added capabilities or devices (GCIS-5.4 says it);
- ``CapAdd`` are the bounding set's capabilities outside Docker's default set (``CapDrop``
  the defaults missing from it); ``Devices`` are the spec's ``linux.devices`` (the path in the
  container: the spec does not keep the host's);
- ``NetworkMode``, ``PidMode``, ``IpcMode``, ``UTSMode`` are ``host`` when the spec asks for no
  such namespace, ``private`` for a new one, ``shared:<path>`` for one joined (a pod's);
- ``SecurityOpt``: ``seccomp=unconfined`` without a seccomp profile, ``apparmor=unconfined``
  without an AppArmor profile (ctr gives neither unless asked: such a container is flagged,
  truly), ``no-new-privileges=true`` when the spec sets ``noNewPrivileges``;
- ``ReadonlyRootfs``, ``Memory`` and ``PidsLimit`` from ``root.readonly`` and the resources;
  ``Mounts`` are the spec's bind mounts (``RW``, propagation from their options);
- ``RestartPolicy`` is the restart monitor's labels or Garrison's (``restart_policy_of``).

What does not exist on containerd: port bindings (CNI maps ports outside the spec, so
GCIS-5.7 never fires), and ``UsernsMode`` (left empty: a Docker container without
userns-remap shares the host's user namespace as well, and GCIS-5.30 only flags an explicit
``--userns=host``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from garrison.runtime.containerd import NAME_LABEL, repo_digest, restart_policy_of
from garrison.scan.compliance.container import DEFAULT_CAPS

Json = Mapping[str, Any]
MISSING = "<missing>"
_NAMESPACES = {"network": "NetworkMode", "pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode"}
_PROPAGATIONS = ("rshared", "shared", "rslave", "slave", "rprivate", "private")


# ---- images ------------------------------------------------------------------------------


def image_inspect(config_digest: str, config: Json, names: Sequence[str], target: str) -> Json:
    """Docker's image inspect of an image whose OCI config is ``config``; ``names`` are the
    image names pointing at ``target`` (the manifest or index digest)."""
    rootfs = _mapping(config.get("rootfs"))
    layers = list(rootfs.get("diff_ids") or [])
    named = [n for n in names if not n.startswith("sha256:")]
    return {
        "Id": config_digest,
        "RepoTags": [n for n in named if "@" not in n],
        "RepoDigests": list(dict.fromkeys(repo_digest(n, target) for n in named)),
        "Created": str(config.get("created") or ""),
        "Author": str(config.get("author") or ""),
        "Architecture": str(config.get("architecture") or ""),
        "Os": str(config.get("os") or ""),
        "Config": dict(_mapping(config.get("config"))),
        "RootFS": {"Type": str(rootfs.get("type") or "layers"), "Layers": layers},
    }


def image_history(config_digest: str, config: Json, tags: Sequence[str]) -> list[Json]:
    """The config's ``history`` as the Docker SDK's ``image.history()`` gives it."""
    entries = [e for e in config.get("history") or [] if isinstance(e, Mapping)]
    rows: list[Json] = [
        {"Id": MISSING, "Created": epoch(str(e.get("created") or "")),
         "CreatedBy": str(e.get("created_by") or ""), "Tags": None, "Size": 0,
         "Comment": str(e.get("comment") or "")}
        for e in reversed(entries)
    ]  # fmt: skip
    if rows:
        rows[0] = {**rows[0], "Id": config_digest, "Tags": list(tags) or None}
    return rows


def epoch(text: str) -> int:
    """RFC 3339 time (nanoseconds allowed) in epoch seconds; 0 when absent or unreadable."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return int(when.timestamp()) if when.tzinfo else int(when.replace(tzinfo=dt.UTC).timestamp())


# ---- containers --------------------------------------------------------------------------


def container_name(record: Json) -> str:
    """The name Garrison shows for a containerd container: nerdctl's label, else its id."""
    labels = _mapping(record.get("Labels"))
    return str(labels.get(NAME_LABEL) or record.get("ID") or "")


def container_inspect(record: Json, image_id: str) -> Json:
    """Docker's container inspect of the containerd container ``record`` (see above)."""
    spec = _mapping(record.get("Spec"))
    process = _mapping(spec.get("process"))
    user = _mapping(process.get("user"))
    labels = dict(_mapping(record.get("Labels")))
    return {
        "Id": str(record.get("ID") or ""),
        "Name": container_name(record),
        "Created": str(record.get("CreatedAt") or ""),
        "Image": image_id,
        "Config": {
            "User": f"{int(user.get('uid') or 0)}:{int(user.get('gid') or 0)}",
            "Env": list(process.get("env") or []),
            "Cmd": list(process.get("args") or []),
            "WorkingDir": str(process.get("cwd") or ""),
            "Hostname": str(spec.get("hostname") or ""),
            "Image": str(record.get("Image") or ""),
            "Labels": labels,
        },
        "HostConfig": host_config(spec, labels),
        "Mounts": bind_mounts(spec),
    }


def host_config(spec: Json, labels: Mapping[str, str]) -> Json:
    linux = _mapping(spec.get("linux"))
    process = _mapping(spec.get("process"))
    resources = _mapping(linux.get("resources"))
    bounding = {_cap(c) for c in _mapping(process.get("capabilities")).get("bounding") or []}
    privileged = is_privileged(spec)
    policy = restart_policy_of(labels)
    return {
        "Privileged": privileged,
        "CapAdd": [] if privileged else [f"CAP_{c}" for c in sorted(bounding - DEFAULT_CAPS)],
        "CapDrop": [f"CAP_{c}" for c in sorted(DEFAULT_CAPS - bounding)],
        **namespace_modes(linux),
        "UsernsMode": "",
        "SecurityOpt": security_opts(spec),
        "ReadonlyRootfs": _mapping(spec.get("root")).get("readonly") is True,
        "Memory": _number(_mapping(resources.get("memory")).get("limit")),
        "PidsLimit": _number(_mapping(resources.get("pids")).get("limit")),
        "Devices": [] if privileged else devices(linux),
        "RestartPolicy": {"Name": policy.name, "MaximumRetryCount": policy.maximum_retry_count},
        "PortBindings": {},
    }


def is_privileged(spec: Json) -> bool:
    """What ``--privileged`` writes, in Docker, CRI and ctr alike: every device allowed in
    the device cgroup, no masked paths, and all capabilities (CAP_SYS_ADMIN among them)."""
    linux = _mapping(spec.get("linux"))
    rules = _mapping(linux.get("resources")).get("devices") or []
    every_device = any(
        isinstance(r, Mapping) and r.get("allow") is True and r.get("type") in (None, "a")
        and r.get("major") is None and r.get("minor") is None
        for r in rules
    )  # fmt: skip
    caps = _mapping(_mapping(spec.get("process")).get("capabilities")).get("bounding") or []
    return every_device and not linux.get("maskedPaths") and "CAP_SYS_ADMIN" in caps


def namespace_modes(linux: Json) -> dict[str, str]:
    """``host`` for each namespace the spec does not ask for, as Docker writes ``--net=host``."""
    kinds = {str(n.get("type")): n for n in linux.get("namespaces") or [] if isinstance(n, Mapping)}
    modes = {}
    for kind, key in _NAMESPACES.items():
        entry = kinds.get(kind)
        path = str(entry.get("path") or "") if entry is not None else ""
        modes[key] = "host" if entry is None else f"shared:{path}" if path else "private"
    return modes


def security_opts(spec: Json) -> list[str]:
    process = _mapping(spec.get("process"))
    opts = []
    if not process.get("apparmorProfile") or process.get("apparmorProfile") == "unconfined":
        opts.append("apparmor=unconfined")
    if not _mapping(spec.get("linux")).get("seccomp"):
        opts.append("seccomp=unconfined")
    if process.get("noNewPrivileges") is True:
        opts.append("no-new-privileges=true")
    return opts


def devices(linux: Json) -> list[Json]:
    return [
        {"PathOnHost": str(d.get("path") or ""), "PathInContainer": str(d.get("path") or ""),
         "CgroupPermissions": "rwm"}
        for d in linux.get("devices") or [] if isinstance(d, Mapping)
    ]  # fmt: skip


def bind_mounts(spec: Json) -> list[Json]:
    """The spec's bind mounts in the inspect's ``Mounts`` form."""
    return [_bind_mount(m) for m in _binds(spec.get("mounts") or [])]


def _binds(mounts: Iterable[Any]) -> list[Json]:
    found = []
    for mount in mounts:
        if not isinstance(mount, Mapping):
            continue
        options = [str(o) for o in mount.get("options") or []]
        if mount.get("type") == "bind" or "bind" in options or "rbind" in options:
            found.append(mount)
    return found


def _bind_mount(mount: Json) -> Json:
    options = [str(o) for o in mount.get("options") or []]
    propagation = next((o for o in options if o in _PROPAGATIONS), "")
    return {"Type": "bind", "Source": str(mount.get("source") or ""),
            "Destination": str(mount.get("destination") or ""), "RW": "ro" not in options,
            "Propagation": propagation}  # fmt: skip


def _cap(name: object) -> str:
    text = str(name).strip().upper()
    return text[4:] if text.startswith("CAP_") else text


def _number(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapping(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}
