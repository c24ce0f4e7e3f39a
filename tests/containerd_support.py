"""A private containerd for tests, and a busybox OCI image made here without a registry.

The daemon gets a directory of its own (``/tmp/garrison-containerd.*``): root, state, config,
log and its gRPC socket all live there, so it touches neither ``/var/lib/containerd`` nor the
host's ``/run/containerd/containerd.sock``. One thing containerd 1.6 does not let us move: each
shim's ttrpc socket goes to ``/run/containerd/s/<sha256 of address+namespace+id>`` (the path is
compiled in: ``defaults.DefaultStateDir`` in runtime/v2/shim/util_unix.go). The hash includes our
own socket's path, so those sockets never collide with another containerd's, and each goes away
with its shim.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX_BINARY = Path("/bin/busybox")  # Debian's busybox-static
IMAGE = "garrison.test/busybox:latest"
APPLETS = ("sh", "sleep", "cat", "echo", "ls", "true", "id", "touch", "rm")
CTR_TIMEOUT = 60.0


class ContainerdFailed(Exception):
    """The private containerd did not start or a ctr command failed."""


@dataclass
class PrivateContainerd:
    """One containerd daemon with its own directory; ``stop()`` ends it by its pid."""

    directory: Path
    pid: int = 0
    # Kept so that its exit is collected (a Popen dropped while running warns).
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return str(self.directory / "containerd.sock")

    @property
    def state(self) -> Path:
        return self.directory / "state"

    @property
    def fifo_dir(self) -> Path:
        """Where ctr should make a task's stdio FIFOs (its default is /run/containerd/fifo)."""
        return self.directory / "fifo"

    @property
    def log(self) -> Path:
        return self.directory / "containerd.log"

    @classmethod
    def create(cls) -> PrivateContainerd:
        # A short path: a unix socket's path must fit in 108 bytes.
        return cls(Path(tempfile.mkdtemp(prefix="garrison-containerd.", dir="/tmp")))

    def start(self) -> PrivateContainerd:
        config = self.directory / "config.toml"
        config.write_text(_config(self.directory))
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                ["nice", "containerd", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.process, self.pid = process, process.pid
        deadline = time.monotonic() + 30
        while self.ctr_result("version").returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ContainerdFailed(f"containerd did not start; see {self.log}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """SIGTERM the daemon by pid (SIGKILL after 10 s); its shims are left to clean_up."""
        if not self.pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self.pid = 0
        for shim in self._shims():  # left running when a test failed before its clean-up
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim, signal.SIGKILL)

    def _shims(self) -> list[int]:
        """Pids of the shims serving this daemon (their command line names its address)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"containerd-shim" in argv[0] and self.address.encode() in argv:
                pids.append(int(entry.name))
        return pids

    def remove(self) -> None:
        """Unmount what is left under the directory (task roots, if a shim died), then delete it."""
        for mount in reversed(_mounts_under(self.directory)):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    @staticmethod
    def remove_cgroups(namespace: str) -> None:
        """The empty ``/<namespace>`` cgroups runc left under each hierarchy (rmdir only
        removes an empty one)."""
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (hierarchy / namespace).rmdir()

    def ctr_result(
        self, *args: str, namespace: str = "default"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", self.address, "--namespace", namespace, *args],
            capture_output=True,
            text=True,
            timeout=CTR_TIMEOUT,
            check=False,
        )

    def ctr(self, *args: str, namespace: str = "default") -> str:
        result = self.ctr_result(*args, namespace=namespace)
        if result.returncode != 0:
            raise ContainerdFailed(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def remove_container(self, container_id: str, namespace: str) -> None:
        """Kill its task (if any), delete task and container; quiet when already gone."""
        self.ctr_result("tasks", "kill", "-s", "SIGKILL", container_id, namespace=namespace)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            deleted = self.ctr_result("tasks", "delete", "-f", container_id, namespace=namespace)
            if deleted.returncode == 0 or "not found" in deleted.stderr:
                break
            time.sleep(0.1)
        self.ctr_result("containers", "delete", container_id, namespace=namespace)

    def clean_namespace(self, namespace: str) -> None:
        for container_id in self.ctr("containers", "list", "-q", namespace=namespace).split():
            self.remove_container(container_id, namespace)

    def import_image(self, archive: Path, namespace: str) -> None:
        self.ctr("images", "import", str(archive), namespace=namespace)


@contextlib.contextmanager
def running_containerd(
    namespace: str, fill: Callable[[PrivateContainerd], None] = lambda _daemon: None
) -> Iterator[PrivateContainerd]:
    """A private containerd, started and given its images by ``fill``; at the end (even
    after a failure) its containers in ``namespace`` removed, the daemon stopped by its pid,
    its directory and the cgroups runc left behind removed."""
    for tool in ("containerd", "ctr"):
        assert shutil.which(tool), f"{tool} is not installed (Debian's containerd package)"
    daemon = PrivateContainerd.create()
    try:
        daemon.start()
        fill(daemon)
        yield daemon
    finally:
        with contextlib.suppress(Exception):
            daemon.clean_namespace(namespace)
        daemon.stop()
        daemon.remove()
        daemon.remove_cgroups(namespace)


def _config(directory: Path) -> str:
    # Version 2 config; CRI and the snapshotters that need other file systems are off: the
    # overlayfs snapshotter and the runc v2 shim are all the tests need.
    disabled = [
        "io.containerd.grpc.v1.cri",
        "io.containerd.snapshotter.v1.btrfs",
        "io.containerd.snapshotter.v1.zfs",
        "io.containerd.snapshotter.v1.devmapper",
        "io.containerd.snapshotter.v1.aufs",
    ]
    return f"""version = 2
root = "{directory}/root"
state = "{directory}/state"
disabled_plugins = {json.dumps(disabled)}

[grpc]
  address = "{directory}/containerd.sock"

[ttrpc]
  address = "{directory}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "{directory}/opt"
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [point for point in points if point.startswith(prefix)]


# ---- a busybox image as an OCI archive ---------------------------------------------------


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return digest


def _layer() -> bytes:
    """/bin/busybox with applet links, plus the empty directories a root file system has."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "tmp", "etc", "proc", "sys", "dev"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        data = BUSYBOX_BINARY.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buffer.getvalue()


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def busybox_archive(path: Path, name: str = IMAGE) -> Path:
    """Write an OCI image archive (``ctr images import`` reads it) holding one busybox layer."""
    layer = _layer()
    config = {
        "architecture": _architecture(),
        "os": "linux",
        "config": {"Cmd": ["/bin/sleep", "600"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    with tarfile.open(path, "w") as tar:
        layer_digest = _blob(tar, layer)
        config_bytes = json.dumps(config).encode()
        config_digest = _blob(tar, config_bytes)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": len(layer)}],
        }).encode()  # fmt: skip
        manifest_digest = _blob(tar, manifest)
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": len(manifest),
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
            }],
        }  # fmt: skip
        for member, data in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                             ("index.json", json.dumps(index).encode())):  # fmt: skip
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
