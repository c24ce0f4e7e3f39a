"""Containers run with ``ctr`` on a private containerd, looking like the Docker SDK's to tests.

The enforcement tests are written against ``docker.models.containers.Container``: ``id``,
``name``, ``exec_run``, ``start``, ``reload`` and the ``attrs`` they read (``State.Running``,
``State.StartedAt``, ``HostConfig.RestartPolicy.Name``). :class:`CtrContainer` gives those
for a containerd container, so one test body runs on both runtimes (``defended`` in
``tests/defender/conftest.py``). What each means on containerd:

- ``name`` is the ``nerdctl/name`` label, which Garrison shows as the container's name (its
  rules' ``containers:`` scopes match it); the id is the name with a random suffix.
- ``exec_run`` is ``ctr tasks exec``: its exit status is the process's, its output stdout
  then stderr (ctr keeps them apart, Docker interleaves them).
- ``StartedAt`` is the task's pid: containerd keeps no start time, and a new task has a new
  pid.
- the restart policy is what Garrison's runtime reads from the labels
  (``garrison.runtime.containerd.restart_policy_of``).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker

from garrison.runtime.containerd import RESTART_LABEL, ContainerdRuntime
from tests.containerd_support import CTR_TIMEOUT, PrivateContainerd

NAME_LABEL = "nerdctl/name"


class CtrContainer:
    """One ``ctr run -d`` container; ``remove()`` kills and deletes it."""

    def __init__(self, daemon: PrivateContainerd, namespace: str, name: str) -> None:
        self.daemon, self.namespace, self.name = daemon, namespace, name
        self.id = f"{name}-{secrets.token_hex(4)}"
        self.attrs: dict[str, Any] = {}
        self.image = SimpleNamespace(id="")  # the config digest: Docker's image id
        self._runtime = ContainerdRuntime(daemon.address, namespace)

    def run(self, image: str, command: list[str], labels: dict[str, str]) -> CtrContainer:
        flags = [f"--label={key}={value}" for key, value in labels.items()]
        self.daemon.ctr("run", "-d", "--null-io", f"--label={NAME_LABEL}={self.name}", *flags,
                        image, self.id, *command, namespace=self.namespace)  # fmt: skip
        self.reload()
        return self

    def exec_run(self, cmd: list[str] | str, **_: Any) -> tuple[int, bytes]:
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else cmd
        exec_id = "x-" + secrets.token_hex(4)
        done = subprocess.run(
            ["ctr", "--address", self.daemon.address, "--namespace", self.namespace,
             "tasks", "exec", "--exec-id", exec_id, "--fifo-dir", str(self.daemon.fifo_dir),
             self.id, *argv],
            capture_output=True, timeout=CTR_TIMEOUT, check=False,
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr

    def start(self) -> None:
        self._runtime.start(self.id)

    def reload(self) -> None:
        info = self._runtime.inspect(self.id)
        self.image = SimpleNamespace(id=info.image_id)
        self.attrs = {
            "Id": self.id,
            "State": {"Running": info.running, "StartedAt": str(info.pid)},
            "HostConfig": {"RestartPolicy": {"Name": info.restart_policy.name}},
        }

    def remove(self) -> None:
        self.daemon.remove_container(self.id, self.namespace)
        self._runtime.close()


def run_ctr(
    daemon: PrivateContainerd,
    namespace: str,
    image: str,
    command: list[str] | None = None,
    *,
    name: str,
    restart_policy: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> CtrContainer:
    """``run_container``'s arguments (the Docker SDK's names) for a ctr container."""
    found = dict(labels or {})
    if restart_policy:
        found[RESTART_LABEL] = str(restart_policy["Name"])
    return CtrContainer(daemon, namespace, name).run(image, list(command or []), found)


def import_from_engine(
    client: docker.DockerClient, daemon: PrivateContainerd, namespace: str, images: list[str]
) -> None:
    """Copy the engine's images into containerd under the same names (``docker save``, then
    ``ctr images import``, which names them ``docker.io/…``: tagged back to the short name,
    so that models and rules name the same image on both runtimes)."""
    for image in images:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as scratch:
            archive = Path(scratch) / "image.tar"
            with archive.open("wb") as out:
                for chunk in _saved(client, image):
                    out.write(chunk)
            daemon.ctr("images", "import", str(archive), namespace=namespace)
        daemon.ctr("images", "tag", "--force", _normalized(image), image, namespace=namespace)


def _saved(client: docker.DockerClient, image: str) -> Iterator[bytes]:
    yield from client.images.get(image).save(named=True)


def _normalized(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"
