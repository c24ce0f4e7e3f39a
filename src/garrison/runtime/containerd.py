"""containerd behind the ContainerRuntime seam, for one namespace, through ``ctr``.

One runtime follows one containerd namespace: ``default`` for ctr, nerdctl's, or ``k8s.io``
where the CRI plugin puts Kubernetes' pods. Every call runs ``ctr`` (see ``_ctr`` for why),
so each blocks for a few milliseconds: callers on an event loop run them in a thread.

How Docker's notions map onto containerd's:

- A container runs when it has a task in state RUNNING (or PAUSED); its pid is the task's.
- ``merged_dir`` is where the shim mounted the running task's root (its bundle's
  ``rootfs``); ``upper_dir`` is the overlayfs snapshot's ``upperdir``.
- ``image_id`` is the image's config digest (what Docker calls the image id);
  ``image_digest`` is ``repository@<target digest>``, the manifest (or index) the name
  points at.
- Block = kill the task (SIGKILL). containerd has no restart policy of its own, only the
  optional restart monitor, driven by labels. ``set_restart_policy`` records the policy in
  the ``garrison.restart-policy`` label, and when a container is under the monitor (it has
  a ``containerd.io/restart.status`` label) sets that status to ``running`` (with the policy
  in ``containerd.io/restart.policy``) for "always" and "on-failure", and to ``stopped`` for
  "no" and "unless-stopped": Garrison's kill is a stop by hand, which "unless-stopped" (the
  enforcer's block policy) must not undo, and the monitor would restart a ``running`` one.
- ``cgroup_layout`` is ``/<namespace>/<id>`` (ctr's default cgroup path, cgroupfs driver),
  and for ``k8s.io`` also kubelet's pod cgroups (``sensors.cgroup_layout``).
- ``logs`` is ``b""``: containerd keeps no output. A task's stdout goes to its creator's
  FIFOs or to a log URI given at creation, neither of which containerd lets a client read
  back.
"""

from __future__ import annotations

import contextlib
import json
import platform
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.errors import ContainerGone, RuntimeRefused, RuntimeUnavailable
from garrison.runtime._containerd_events import ContainerdEventStream
from garrison.runtime._containerd_fs import mounted, overlay_diff, tar_stream
from garrison.runtime._ctr import (
    Ctr,
    MountSpec,
    TaskRow,
    parse_images,
    parse_snapshot_mounts,
    parse_tasks,
    read_text,
    task_rootfs,
)
from garrison.runtime.base import ContainerInfo, RestartPolicy
from garrison.sensors.cgroup_layout import CgroupLayout, containerd_layout

Json = Mapping[str, Any]

RESTART_LABEL = "garrison.restart-policy"
MONITOR_STATUS = "containerd.io/restart.status"
MONITOR_POLICY = "containerd.io/restart.policy"
# The policies for which the monitor keeps a stopped task running; the others leave it down.
_MONITOR_RESTARTS = frozenset({"always", "on-failure"})
NAME_LABEL = "nerdctl/name"
STOP_SIGNAL_LABEL = "io.containerd.image.config.stop-signal"
# The CRI plugin writes the pod's identity into the spec's annotations; kubelet's labels
# (io.kubernetes.pod.name …) are usually on the container too, and win when both are.
_CRI_ANNOTATIONS = {
    "io.kubernetes.cri.sandbox-name": "io.kubernetes.pod.name",
    "io.kubernetes.cri.sandbox-namespace": "io.kubernetes.pod.namespace",
    "io.kubernetes.cri.sandbox-uid": "io.kubernetes.pod.uid",
    "io.kubernetes.cri.container-name": "io.kubernetes.container.name",
}
# The spec's kernel file systems are not the container's own files; Docker leaves them (and
# /dev, /dev/shm) out of its mounts too.
_KERNEL_FS = frozenset({"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"})
_RUNTIME_POINTS = frozenset({"/dev", "/dev/shm"})
_INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})  # fmt: skip
_POLL = 0.1


@dataclass(frozen=True, slots=True)
class ImageFacts:
    config_digest: str = ""
    digest: str | None = None
    entrypoint: tuple[str, ...] = ()


class ContainerdRuntime:
    """The containers of one namespace of the containerd listening at ``address``."""

    def __init__(
        self,
        address: str,
        namespace: str = "default",
        *,
        ctr: str = "ctr",
        containerd: str = "containerd",
        timeout: float = 30.0,
        proc: str = "/proc",
    ) -> None:
        self._ctr = Ctr(address, namespace, ctr, timeout)
        self._containerd = containerd
        self._proc = proc
        self._images: dict[tuple[str, str], ImageFacts] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self._ctr.address

    @property
    def namespace(self) -> str:
        return self._ctr.namespace

    @property
    def cgroup_layout(self) -> CgroupLayout:
        """``/<namespace>/<id>`` as ctr makes it, and kubelet's pod cgroups for ``k8s.io``
        (the CRI plugin's); ValueError when the namespace is not a containerd identifier."""
        return containerd_layout(self.namespace)

    def ping(self) -> bool:
        """True when containerd answers; never raises."""
        try:
            self._ctr.run("version")
        except (RuntimeUnavailable, RuntimeRefused, ContainerGone):
            return False
        return True

    def list_running(self) -> list[ContainerInfo]:
        """Containers with a running task, inspected; those gone meanwhile are left out."""
        tasks = self._tasks()
        infos = []
        for task in tasks.values():
            if task.running:
                with contextlib.suppress(ContainerGone):
                    infos.append(self._info(self._record(task.id), tasks.get(task.id)))
        return infos

    def inspect(self, container_id: str) -> ContainerInfo:
        record = self._record(container_id)
        return self._info(record, self._tasks().get(container_id))

    def inspect_document(self, container_id: str) -> dict[str, Any]:
        """The container record (its OCI spec included) and its task, as ctr gives them."""
        record = self._record(container_id)
        task = self._tasks().get(container_id)
        return {
            "Namespace": self.namespace,
            "Container": dict(record),
            "Task": None if task is None else {"Pid": task.pid, "Status": task.status},
        }

    def _record(self, container_id: str) -> Json:
        text = self._ctr.run("containers", "info", "--", container_id, what=container_id)
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuntimeRefused(f"ctr containers info gave no JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise RuntimeRefused("ctr containers info gave no JSON object")
        return record

    def _tasks(self) -> dict[str, TaskRow]:
        return parse_tasks(self._ctr.run("tasks", "list"))

    def _info(self, record: Json, task: TaskRow | None) -> ContainerInfo:
        container_id = str(record.get("ID") or "")
        mounts = self._snapshot_mounts(record)
        upper = next((m.option("upperdir") for m in mounts if m.type == "overlay"), None)
        merged = None
        if task is not None and task.running:
            mountinfo = read_text(f"{self._proc}/self/mountinfo")
            merged = task_rootfs(mountinfo, self.namespace, container_id, upper)
        image = self._image(str(record.get("Image") or ""))
        return info_from_record(record, task, image, merged_dir=merged, upper_dir=upper)

    def _snapshot_mounts(self, record: Json) -> list[MountSpec]:
        """The snapshot's mounts; [] when it has none (any more)."""
        key, snapshotter = record.get("SnapshotKey"), record.get("Snapshotter")
        if not key or not snapshotter:
            return []
        with contextlib.suppress(ContainerGone):
            text = self._ctr.run("snapshots", "--snapshotter", str(snapshotter), "mounts",
                                 "/rootfs", str(key), what=str(key))  # fmt: skip
            return parse_snapshot_mounts(text)
        return []

    def _image(self, name: str) -> ImageFacts:
        """The config digest, target digest and entrypoint of the image ``name`` now points at
        (cached by name and target); empty when the image is gone."""
        if not name:
            return ImageFacts()
        rows = parse_images(self._ctr.run("images", "list", f"name=={name}"))
        row = next((r for r in rows if r.name == name), None)
        if row is None:
            return ImageFacts()
        with self._lock:
            cached = self._images.get((name, row.digest))
        if cached is not None:
            return cached
        try:
            facts = self._image_facts(name, row.media_type, row.digest)
        except ContainerGone:  # content removed (garbage collected) under a live name
            return ImageFacts(digest=repo_digest(name, row.digest))
        with self._lock:
            self._images[(name, row.digest)] = facts
        return facts

    def _image_facts(self, name: str, media_type: str, digest: str) -> ImageFacts:
        manifest = self._content(digest)
        if media_type in _INDEX_TYPES or "manifests" in manifest:
            manifest = self._content(platform_manifest(manifest))
        config_digest = str((manifest.get("config") or {}).get("digest") or "")
        config = self._content(config_digest).get("config") or {} if config_digest else {}
        return ImageFacts(config_digest, repo_digest(name, digest),
                          tuple(config.get("Entrypoint") or ()))  # fmt: skip

    def _content(self, digest: str) -> Json:
        try:
            data = json.loads(self._ctr.run("content", "get", digest, what=digest))
        except json.JSONDecodeError as exc:
            raise RuntimeRefused(f"content {digest} is not JSON: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def events(self, since: float | None = None) -> ContainerdEventStream:
        """Events of this namespace from now: containerd keeps no history, ``since`` is not
        replayed. The subscription is in place on return."""
        return ContainerdEventStream(self._ctr, self._containerd, self._proc)

    def kill(self, container_id: str) -> None:
        """SIGKILL the task; a container without a running task is left as it is."""
        try:
            self._ctr.run("tasks", "kill", "--signal", "SIGKILL", "--", container_id,
                          what=container_id)  # fmt: skip
        except ContainerGone:
            self._record(container_id)  # raises ContainerGone when the container itself is

    def stop(self, container_id: str, timeout: int = 10) -> None:
        """The image's stop signal (SIGTERM by default), then SIGKILL after ``timeout`` s."""
        labels = self._record(container_id).get("Labels") or {}
        task = self._tasks().get(container_id)
        if task is None or not task.running:
            return
        with contextlib.suppress(ContainerGone):  # it stopped meanwhile
            self._ctr.run("tasks", "kill", "--signal", labels.get(STOP_SIGNAL_LABEL, "SIGTERM"),
                          "--", container_id, what=container_id)  # fmt: skip
        if self._stopped_within(container_id, timeout):
            return
        self.kill(container_id)
        if not self._stopped_within(container_id, 30):
            raise RuntimeRefused(f"{container_id[:12]} still runs 30 s after SIGKILL")

    def _stopped_within(self, container_id: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            task = self._tasks().get(container_id)
            if task is None or not task.running:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)

    def start(self, container_id: str) -> None:
        """A new task for the container (the stopped one deleted first), its output to
        /dev/null: whoever created it held its output, and is not asked again."""
        self._record(container_id)
        task = self._tasks().get(container_id)
        if task is not None and task.running:
            return
        if task is not None:
            with contextlib.suppress(ContainerGone):
                self._ctr.run("tasks", "delete", "--", container_id, what=container_id)
        self._ctr.run("tasks", "start", "--detach", "--null-io", "--", container_id,
                      what=container_id)  # fmt: skip

    def set_restart_policy(self, container_id: str, policy: RestartPolicy) -> None:
        """Record ``policy`` in labels (containerd has no policy of its own; see above)."""
        labels = dict(self._record(container_id).get("Labels") or {})
        changes = {RESTART_LABEL: policy_text(policy)}
        if MONITOR_STATUS in labels:
            restarts = policy.name in _MONITOR_RESTARTS
            changes[MONITOR_STATUS] = "running" if restarts else "stopped"
            if restarts:
                changes[MONITOR_POLICY] = policy_text(policy)
        pairs = [f"{key}={value}" for key, value in changes.items()]
        self._ctr.run("containers", "label", "--", container_id, *pairs, what=container_id)

    def export(self, container_id: str) -> Iterator[bytes]:
        """Its root file system as tar: the running task's root, or else its snapshot
        mounted read-only for the time of the export."""
        record = self._record(container_id)
        info = self._info(record, self._tasks().get(container_id))
        if info.merged_dir is not None:
            yield from tar_stream(info.merged_dir)
            return
        mounts = self._snapshot_mounts(record)
        if not mounts:
            raise ContainerGone(container_id, f"{container_id[:12]} has no root file system")
        with mounted(mounts) as root:
            yield from tar_stream(root)

    def diff(self, container_id: str) -> list[dict[str, Any]]:
        """What its overlayfs upper dir changes (``docker diff``'s form); refused for other
        snapshotters."""
        mounts = self._snapshot_mounts(self._record(container_id))
        if len(mounts) == 1 and mounts[0].type == "bind":  # a snapshot with no parent
            return overlay_diff(mounts[0].source, [])
        overlay = next((m for m in mounts if m.type == "overlay"), None)
        upper = overlay.option("upperdir") if overlay else None
        if overlay is None or upper is None:
            raise RuntimeRefused(f"{container_id[:12]}: diff needs an overlayfs snapshot")
        return overlay_diff(upper, (overlay.option("lowerdir") or "").split(":"))

    def logs(self, container_id: str, tail: int) -> bytes:
        """Always ``b""`` for a container that exists: containerd keeps no output."""
        self._record(container_id)
        return b""

    def close(self) -> None:
        """Nothing to release: each call is its own ctr process."""


def info_from_record(
    record: Json,
    task: TaskRow | None,
    image: ImageFacts,
    merged_dir: str | None = None,
    upper_dir: str | None = None,
) -> ContainerInfo:
    """A ContainerInfo from ``ctr containers info`` (the record, with its OCI spec)."""
    spec = record.get("Spec") or {}
    labels = pod_labels(record.get("Labels") or {}, spec.get("annotations") or {})
    running = task is not None and task.running
    argv = tuple(str(a) for a in (spec.get("process") or {}).get("args") or ())
    entrypoint = image.entrypoint if argv[: len(image.entrypoint)] == image.entrypoint else ()
    return ContainerInfo(
        id=str(record.get("ID") or ""),
        name=labels.get(NAME_LABEL) or str(record.get("ID") or ""),
        image_name=str(record.get("Image") or ""),
        image_id=image.config_digest,
        image_digest=image.digest,
        labels=labels,
        pid=task.pid if running and task is not None else 0,
        merged_dir=merged_dir if running else None,
        upper_dir=upper_dir,
        restart_policy=restart_policy_of(labels),
        document={"Container": dict(record)},
        running=running,
        hostname=str(spec.get("hostname") or ""),
        entrypoint=entrypoint,
        cmd=argv[len(entrypoint) :],
        mounts=spec_mount_points(spec),
    )


def pod_labels(labels: Mapping[str, str], annotations: Mapping[str, str]) -> dict[str, str]:
    """The labels, with the pod's identity taken from CRI's annotations where missing."""
    merged = dict(labels)
    for annotation, label in _CRI_ANNOTATIONS.items():
        if annotation in annotations and label not in merged:
            merged[label] = annotations[annotation]
    return merged


def spec_mount_points(spec: Json) -> tuple[str, ...]:
    """Where the container sees bind mounts and tmpfs: the OCI spec's mounts less the
    kernel's file systems and the runtime's /dev."""
    points = [str(m.get("destination") or "") for m in spec.get("mounts") or []
              if m.get("type") not in _KERNEL_FS]  # fmt: skip
    return tuple(dict.fromkeys(p for p in points if p.startswith("/") and p not in _RUNTIME_POINTS))


def restart_policy_of(labels: Mapping[str, str]) -> RestartPolicy:
    """containerd's restart monitor when the container is under it, else Garrison's label."""
    if MONITOR_STATUS in labels:
        if labels[MONITOR_STATUS] != "running":
            return RestartPolicy("no")
        return parse_policy(labels.get(MONITOR_POLICY) or "always")
    return parse_policy(labels.get(RESTART_LABEL) or "no")


def parse_policy(text: str) -> RestartPolicy:
    """``always``, ``unless-stopped``, ``no``, ``on-failure`` or ``on-failure:N``."""
    name, _, count = text.partition(":")
    return RestartPolicy(name or "no", int(count) if count.isdigit() else 0)


def policy_text(policy: RestartPolicy) -> str:
    if policy.name == "on-failure" and policy.maximum_retry_count:
        return f"on-failure:{policy.maximum_retry_count}"
    return policy.name


def repo_digest(name: str, digest: str) -> str:
    """``repository@digest`` (Docker's RepoDigests form): the name less its tag."""
    repository = name.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return f"{repository}@{digest}"


def platform_manifest(index: Json) -> str:
    """The digest of the index's manifest for this machine (linux and its architecture)."""
    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    for entry in index.get("manifests") or []:
        wanted = entry.get("platform") or {}
        if wanted.get("os", "linux") == "linux" and wanted.get("architecture") == arch:
            return str(entry.get("digest") or "")
    raise ContainerGone("", f"the image index has no manifest for linux/{arch}")
