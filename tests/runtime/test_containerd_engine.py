"""ContainerdRuntime against a real private containerd (Debian's 1.6) driven by ctr."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from garrison.defender.enforce import BLOCKED_POLICY
from garrison.errors import ContainerGone, RuntimeUnavailable
from garrison.runtime import RestartPolicy, RuntimeEvent
from garrison.runtime._containerd_events import event_of, parse_line
from garrison.runtime._containerd_fs import MOUNT_PREFIX, unmount_stale
from garrison.runtime._ctr import parse_snapshot_mounts, parse_tasks
from garrison.runtime.containerd import ContainerdRuntime, restart_policy_of
from garrison.sensors.cgroup import (
    cgroup2_mounts,
    container_cgroup2_id,
    container_of_pid,
    container_pids,
    containerd_layout,
)
from tests.containerd_support import IMAGE, PrivateContainerd, busybox_archive, running_containerd
from tests.support import wait_for

NS = "garrison-test"
WAIT = 60.0

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("containerd") is None or shutil.which("ctr") is None,
    reason="needs root, containerd and ctr",
)

RunContainer = Callable[..., str]


@pytest.fixture(scope="session")
def daemon() -> Iterator[PrivateContainerd]:
    """The session's private containerd with the busybox image in NS; stopped by pid."""

    def fill(daemon: PrivateContainerd) -> None:
        daemon.import_image(busybox_archive(daemon.directory / "busybox.tar"), NS)

    with running_containerd(NS, fill) as daemon:
        yield daemon


@pytest.fixture
def runtime(daemon: PrivateContainerd) -> Iterator[ContainerdRuntime]:
    rt = ContainerdRuntime(daemon.address, NS)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def run_container(daemon: PrivateContainerd) -> Iterator[RunContainer]:
    """``ctr run -d`` a busybox container (no --net-host: only its own loopback), removed
    after the test even when it fails."""
    made: list[str] = []

    def run(*command: str, labels: dict[str, str] | None = None) -> str:
        container_id = "t-" + secrets.token_hex(6)
        made.append(container_id)
        flags = [f"--label={key}={value}" for key, value in (labels or {}).items()]
        daemon.ctr("run", "-d", "--null-io", "--runc-root", str(daemon.directory / "runc"),
                   *flags, IMAGE, container_id, *command, namespace=NS)  # fmt: skip
        return container_id

    yield run
    for container_id in made:
        daemon.remove_container(container_id, NS)


def exec_in(daemon: PrivateContainerd, container_id: str, script: str) -> None:
    exec_id = "x-" + secrets.token_hex(4)
    daemon.ctr("tasks", "exec", "--exec-id", exec_id, "--fifo-dir", str(daemon.fifo_dir),
               container_id, "/bin/sh", "-c", script, namespace=NS)  # fmt: skip


class Reader:
    """Reads a stream in a thread; ``next_for`` waits for the next event of one container."""

    def __init__(self, stream: Iterator[RuntimeEvent]) -> None:
        self.items: queue.Queue[RuntimeEvent | BaseException | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Iterator[RuntimeEvent]) -> None:
        try:
            for event in stream:
                self.items.put(event)
        except BaseException as exc:  # handed to the test, which asserts on it
            self.items.put(exc)
            return
        self.items.put(None)

    def next_item(self) -> RuntimeEvent | BaseException | None:
        try:
            return self.items.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail("no event within the deadline")

    def actions_until(self, container_id: str, last: str) -> list[str]:
        actions = []
        while True:
            item = self.next_item()
            assert isinstance(item, RuntimeEvent), item
            if item.container_id == container_id:
                actions.append(item.action)
                if item.action == last:
                    return actions

    def join(self) -> None:
        self._thread.join(WAIT)
        assert not self._thread.is_alive()


def running_ids(runtime: ContainerdRuntime) -> set[str]:
    return {info.id for info in runtime.list_running()}


def tar_names(chunks: Iterator[bytes]) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return set(tar.getnames())


# ---- against the daemon ----------------------------------------------------------------------


def test_ping_answers_and_a_missing_socket_is_unavailable(runtime, tmp_path):
    assert runtime.ping()
    nowhere = ContainerdRuntime(str(tmp_path / "none.sock"), NS)
    assert not nowhere.ping()
    with pytest.raises(RuntimeUnavailable):
        nowhere.list_running()
    with pytest.raises(RuntimeUnavailable):
        nowhere.events()


def test_a_running_container_is_listed_and_inspected(runtime, run_container, daemon):
    container_id = run_container(labels={"nerdctl/name": "web"})
    assert container_id in running_ids(runtime)
    info = runtime.inspect(container_id)
    assert (info.id, info.name, info.image_name) == (container_id, "web", IMAGE)
    assert info.running
    assert os.readlink(f"/proc/{info.pid}/exe").endswith("busybox")
    assert info.cmd == ("/bin/sleep", "600")
    assert info.entrypoint == ()
    manifest = json.loads(daemon.ctr("content", "get", info.image_digest.split("@")[1],
                                     namespace=NS))  # fmt: skip
    assert info.image_id == manifest["config"]["digest"]
    assert info.image_digest.startswith("garrison.test/busybox@sha256:")
    assert "/proc" not in info.mounts
    assert "/run" in info.mounts  # ctr's default spec gives the container a tmpfs there


def test_merged_dir_is_the_task_root_and_sees_a_file_written_inside(runtime, run_container, daemon):
    container_id = run_container()
    exec_in(daemon, container_id, "echo written-inside > /marker")
    info = runtime.inspect(container_id)
    bundle_root = daemon.state / "io.containerd.runtime.v2.task" / NS / container_id / "rootfs"
    assert info.merged_dir == str(bundle_root)
    assert os.path.ismount(info.merged_dir)
    assert Path(info.merged_dir, "marker").read_text() == "written-inside\n"
    assert info.upper_dir is not None
    assert info.upper_dir.startswith(str(daemon.directory / "root"))
    assert Path(info.upper_dir, "marker").read_text() == "written-inside\n"
    assert Path(info.merged_dir, "bin/busybox").exists()
    assert not Path(info.upper_dir, "bin/busybox").exists()


def test_diff_lists_what_changed_in_docker_form(runtime, run_container, daemon):
    container_id = run_container()
    exec_in(daemon, container_id, "echo x > /marker && rm /bin/echo")
    changes = runtime.diff(container_id)
    assert {"Path": "/marker", "Kind": 1} in changes
    assert {"Path": "/bin/echo", "Kind": 2} in changes
    assert {"Path": "/bin", "Kind": 0} in changes


def test_export_of_a_running_container_holds_busybox_and_new_files(runtime, run_container, daemon):
    container_id = run_container()
    exec_in(daemon, container_id, "echo x > /marker")
    names = tar_names(runtime.export(container_id))
    assert {"bin/busybox", "bin/sh", "marker"} <= names


def test_export_of_a_stopped_container_mounts_its_snapshot_for_a_while(runtime, run_container,
                                                                       daemon):  # fmt: skip
    container_id = run_container()
    exec_in(daemon, container_id, "echo x > /marker")
    runtime.kill(container_id)
    wait_for("the task to stop", lambda: not runtime.inspect(container_id).running)
    names = tar_names(runtime.export(container_id))
    assert {"bin/busybox", "marker"} <= names
    assert "garrison-rootfs." not in Path("/proc/self/mountinfo").read_text()


def test_events_see_start_die_destroy_in_order(runtime, daemon):
    stream = runtime.events()
    reader = Reader(stream)
    container_id = "t-" + secrets.token_hex(6)
    try:
        daemon.ctr("run", "-d", "--null-io", "--runc-root", str(daemon.directory / "runc"),
                   IMAGE, container_id, namespace=NS)  # fmt: skip
        daemon.ctr("tasks", "kill", "--signal", "SIGKILL", container_id, namespace=NS)
    finally:
        daemon.remove_container(container_id, NS)
    actions = reader.actions_until(container_id, "destroy")
    assert [a for a in actions if a in {"create", "start", "die", "destroy"}] == [
        "create", "start", "die", "destroy"]  # fmt: skip
    stream.close()
    reader.join()


def test_nothing_of_ours_lands_in_the_hosts_run_containerd(runtime, run_container, daemon):
    """Only the shims' sockets (see tests/containerd_support.py) may go there."""
    container_id = run_container()
    exec_in(daemon, container_id, "true")
    host = Path("/run/containerd")
    assert not (host / "runc" / NS).exists()
    assert not any((host / "fifo").glob("*/" + container_id + "*"))


def test_exec_events_carry_the_exec_and_its_command(runtime, run_container, daemon):
    container_id = run_container()
    stream = runtime.events()
    reader = Reader(stream)
    daemon.ctr("tasks", "exec", "--exec-id", "probe-exec", "--fifo-dir", str(daemon.fifo_dir),
               container_id, "/bin/sleep", "1", namespace=NS)  # fmt: skip
    events = []
    while not events or events[-1].action != "exec_die":
        item = reader.next_item()
        assert isinstance(item, RuntimeEvent), item
        if item.container_id == container_id:
            events.append(item)
    stream.close()
    assert [e.action for e in events] == ["exec_create", "exec_start", "exec_die"]
    assert {e.attributes["execID"] for e in events} == {"probe-exec"}
    assert events[1].attributes["command"] == "/bin/sleep 1"


def test_kill_stops_the_task_and_the_event_says_die(runtime, run_container):
    container_id = run_container()
    stream = runtime.events()
    reader = Reader(stream)
    runtime.kill(container_id)
    assert reader.actions_until(container_id, "die")[-1] == "die"
    stream.close()
    info = runtime.inspect(container_id)
    assert (info.running, info.pid, info.merged_dir) == (False, 0, None)
    runtime.kill(container_id)  # nothing left to kill: quiet


def test_kill_of_a_missing_container_raises_container_gone(runtime):
    with pytest.raises(ContainerGone) as caught:
        runtime.kill("no-such-container")
    assert caught.value.container_id == "no-such-container"


def test_a_container_gone_between_list_and_inspect_raises_container_gone(runtime, run_container,
                                                                         daemon):  # fmt: skip
    container_id = run_container()
    assert container_id in running_ids(runtime)
    daemon.remove_container(container_id, NS)
    with pytest.raises(ContainerGone) as caught:
        runtime.inspect(container_id)
    assert caught.value.container_id == container_id
    assert container_id not in running_ids(runtime)


def test_stop_then_start_gives_a_new_task(runtime, run_container):
    container_id = run_container()
    first = runtime.inspect(container_id).pid
    runtime.stop(container_id, timeout=1)  # sleep as pid 1 ignores SIGTERM: killed after 1 s
    assert not runtime.inspect(container_id).running
    runtime.start(container_id)
    info = runtime.inspect(container_id)
    assert info.running
    assert info.pid not in {0, first}


def test_kubernetes_labels_come_through(runtime, run_container):
    labels = {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "shop"}
    info = runtime.inspect(run_container(labels=labels))
    assert info.labels["io.kubernetes.pod.name"] == "web-0"
    assert (info.orchestrator, info.namespace) == ("kubernetes", "shop")


def test_restart_policy_is_a_label_and_stops_containerds_monitor(runtime, run_container, daemon):
    container_id = run_container(labels={"containerd.io/restart.status": "running"})
    assert runtime.inspect(container_id).restart_policy == RestartPolicy("always")
    runtime.set_restart_policy(container_id, RestartPolicy("on-failure", 3))
    assert runtime.inspect(container_id).restart_policy == RestartPolicy("on-failure", 3)
    labels = json.loads(daemon.ctr("containers", "info", container_id, namespace=NS))["Labels"]
    assert labels["containerd.io/restart.policy"] == "on-failure:3"
    runtime.kill(container_id)  # a block: kill, then the enforcer's policy
    runtime.set_restart_policy(container_id, BLOCKED_POLICY)
    labels = json.loads(daemon.ctr("containers", "info", container_id, namespace=NS))["Labels"]
    assert labels["containerd.io/restart.status"] == "stopped"  # the monitor leaves it down
    assert labels["garrison.restart-policy"] == BLOCKED_POLICY.name
    assert runtime.inspect(container_id).restart_policy == RestartPolicy("no")


def test_restart_policy_without_the_monitor_is_only_recorded(runtime, run_container, daemon):
    container_id = run_container()
    runtime.set_restart_policy(container_id, RestartPolicy("unless-stopped"))
    labels = json.loads(daemon.ctr("containers", "info", container_id, namespace=NS))["Labels"]
    assert "containerd.io/restart.status" not in labels
    assert runtime.inspect(container_id).restart_policy == RestartPolicy("unless-stopped")


def test_inspect_document_logs_and_close(runtime, run_container):
    container_id = run_container()
    document = runtime.inspect_document(container_id)
    assert document["Container"]["Spec"]["process"]["args"] == ["/bin/sleep", "600"]
    assert document["Task"]["Status"] == "RUNNING"
    assert runtime.logs(container_id, tail=10) == b""  # containerd keeps no output
    with pytest.raises(ContainerGone):
        runtime.logs("no-such-container", tail=10)


def test_close_from_another_thread_ends_the_stream_quietly(runtime):
    stream = runtime.events()
    reader = Reader(stream)
    threading.Thread(target=stream.close).start()
    assert reader.next_item() is None
    reader.join()


def test_containerd_stopped_ends_the_stream_with_runtime_unavailable():
    other = PrivateContainerd.create()
    try:
        other.start()
        runtime = ContainerdRuntime(other.address, NS)
        stream = runtime.events()
        reader = Reader(stream)
        other.stop()
        assert isinstance(reader.next_item(), RuntimeUnavailable)
        assert not runtime.ping()
        with pytest.raises(RuntimeUnavailable):
            runtime.inspect("anything")
        stream.close()
    finally:
        other.stop()
        other.remove()


# ---- cgroups: which task a host process is in ------------------------------------------------


def test_the_containerd_layout_finds_a_tasks_processes_and_dockers_does_not(
    runtime, run_container, daemon
):
    container_id = run_container()
    first = runtime.inspect(container_id).pid
    layout = runtime.cgroup_layout
    assert layout == containerd_layout(NS)
    exec_in(daemon, container_id, "/bin/sleep 60 </dev/null >/dev/null 2>&1 &")

    def both() -> list[int] | None:
        found = container_pids(container_id, layout=layout)
        return found if len(found) == 2 else None

    pids = wait_for("the exec's sleep in the task's cgroup", both)
    assert first in pids
    for pid in pids:
        assert container_of_pid(pid, layout=layout) == container_id
        assert container_of_pid(pid) is None  # Docker's layout, the default
    assert container_pids(container_id) == []
    task_cgroup = os.path.join(cgroup2_mounts()[0], NS, container_id)
    assert container_cgroup2_id(container_id, layout=layout) == os.stat(task_cgroup).st_ino
    assert container_cgroup2_id(container_id) is None


def test_a_task_in_a_kubelet_pod_cgroup_is_found_by_the_k8s_io_layout(runtime, daemon):
    # The CRI plugin's path for a Burstable pod with the cgroupfs driver, given to ctr by hand.
    container_id = secrets.token_hex(32)
    path = f"/kubepods/burstable/pod{uuid.uuid4()}/{container_id}"
    try:
        daemon.ctr("run", "-d", "--null-io", "--runc-root", str(daemon.directory / "runc"),
                   "--cgroup", path, IMAGE, container_id, namespace=NS)  # fmt: skip
        pid = runtime.inspect(container_id).pid
        assert Path(f"/proc/{pid}/cgroup").read_text().splitlines()[-1] == f"0::{path}"
        k8s = containerd_layout("k8s.io")
        assert container_of_pid(pid, layout=k8s) == container_id
        assert container_pids(container_id, layout=k8s) == [pid]
        assert container_of_pid(pid, layout=runtime.cgroup_layout) is None  # not /NS/<id>
        assert container_of_pid(pid) is None
    finally:
        daemon.remove_container(container_id, NS)
        remove_cgroup_path(path)


def remove_cgroup_path(path: str) -> None:
    """rmdir ``path`` and its parents, deepest first, in every hierarchy (only empty ones go)."""
    parts = path.strip("/").split("/")
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for depth in range(len(parts), 0, -1):
            with contextlib.suppress(OSError):
                hierarchy.joinpath(*parts[:depth]).rmdir()


# ---- parsers, fed what this machine's ctr printed ---------------------------------------------

CAPTURED_EVENTS = """\
2026-12-04 18:55:38.045516878 +0000 UTC gt /tasks/exec-added {"container_id":"c1","exec_id":"x2"}
2026-12-04 18:55:38.08718532 +0000 UTC gt /tasks/exec-started {"container_id":"c1","exec_id":"x2","pid":21018}
2026-12-04 18:55:38.089578423 +0000 UTC gt /tasks/exit {"container_id":"c1","id":"x2","pid":21018,"exited_at":"2026-12-04T18:55:38.087149031Z"}
2026-12-04 18:55:38.1225361 +0000 UTC gt /tasks/exit {"container_id":"c1","id":"c1","pid":20706,"exit_status":137,"exited_at":"2026-12-04T18:55:38.122458608Z"}
2026-12-04 18:55:38.785650454 +0000 UTC gt /tasks/delete {"container_id":"c1","pid":20706,"exit_status":137,"exited_at":"2026-12-04T18:55:38.122458608Z"}
2026-12-04 18:55:38.816096009 +0000 UTC gt /snapshot/remove {"key":"c1"}
2026-12-04 18:55:38.817477257 +0000 UTC gt /containers/delete {"id":"c1"}
2026-12-04 18:55:38.902268791 +0000 UTC gt /tasks/start {"container_id":"c2","pid":21101}
"""  # noqa: E501


def test_captured_ctr_events_map_to_dockers_vocabulary():
    events = []
    for line in CAPTURED_EVENTS.splitlines():
        parsed = parse_line(line)
        assert parsed is not None
        when, namespace, topic, payload = parsed
        assert namespace == "gt"
        events.append(event_of(when, topic, payload))
    kept = [(e.action, e.container_id) for e in events if e is not None]
    assert kept == [("exec_create", "c1"), ("exec_start", "c1"), ("exec_die", "c1"),
                    ("die", "c1"), ("destroy", "c1"), ("start", "c2")]  # fmt: skip
    die = events[3]
    assert die is not None
    assert die.attributes == {"pid": "20706", "exitCode": "137"}
    assert die.time == pytest.approx(1796410538.122536)


def test_a_line_that_is_not_an_event_is_skipped():
    assert parse_line('time="2026-12-04T18:55:38Z" level=warning msg="cannot unmarshal"') is None


def test_captured_tasks_and_snapshot_mounts_parse():
    tasks = parse_tasks("TASK    PID      STATUS    \nc1      20706    RUNNING\nc2  0  STOPPED\n")
    assert tasks["c1"].running
    assert (tasks["c2"].pid, tasks["c2"].running) == (0, False)
    (mount,) = parse_snapshot_mounts(
        "mount -t overlay overlay /TARGET -o index=off,workdir=/r/snapshots/2/work,"
        "upperdir=/r/snapshots/2/fs,lowerdir=/r/snapshots/1/fs\n"
    )
    assert (mount.type, mount.option("upperdir"), mount.option("lowerdir")) == (
        "overlay", "/r/snapshots/2/fs", "/r/snapshots/1/fs")  # fmt: skip


def test_restart_policy_labels():
    assert restart_policy_of({}) == RestartPolicy("no")
    assert restart_policy_of({"garrison.restart-policy": "on-failure:5"}) == RestartPolicy(
        "on-failure", 5
    )
    monitored = {"containerd.io/restart.status": "stopped", "garrison.restart-policy": "always"}
    assert restart_policy_of(monitored) == RestartPolicy("no")


def test_a_snapshot_mount_left_by_a_dead_process_is_unmounted_and_a_live_ones_kept() -> None:
    dead = subprocess.Popen(["true"])  # a pid that no longer runs
    dead.wait()
    points = [tempfile.mkdtemp(prefix=f"{MOUNT_PREFIX}{pid}.") for pid in (dead.pid, os.getpid())]
    try:
        for point in points:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", point], check=True)
        assert unmount_stale() == [points[0]]
        mounted = Path("/proc/self/mountinfo").read_text()
        assert f" {points[0]} " not in mounted
        assert not os.path.exists(points[0])
        assert f" {points[1]} " in mounted
    finally:
        for point in points:
            subprocess.run(["umount", point], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                os.rmdir(point)
