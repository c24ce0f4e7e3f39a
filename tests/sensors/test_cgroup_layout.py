"""Cgroup layouts: /proc/PID/cgroup bytes captured here (Docker, containerd through ctr, and
kubelet's pod cgroups placed by hand: tests/sensors/data/README.md) read into container ids,
host cgroups never taken for a container, and a container's cgroup found in cgroup trees made
under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from garrison.runtime import DockerRuntime, FakeRuntime
from garrison.runtime.containerd import ContainerdRuntime
from garrison.sensors.cgroup import (
    CONTAINER_CGROUPS,
    CRIO_LAYOUT,
    DOCKER_LAYOUT,
    CgroupLayout,
    container_cgroup2_id,
    container_cgroup_dir,
    container_of_pid,
    container_pids,
    containerd_layout,
)
from garrison.sensors.procfs import ProcFS, parse_container_id

DATA = Path(__file__).parent / "data"
DOCKER_ID = "461920c6d49a3a05a22bfb067a632106ff4d229194b69a6dac97aa6e4e08a56f"
DEFAULT_NS = containerd_layout("default")
K8S = containerd_layout("k8s.io")
LAYOUTS = (DOCKER_LAYOUT, DEFAULT_NS, K8S, containerd_layout("default", "k8s.io"), CRIO_LAYOUT)
HEX = "ab" * 32


def captured(name: str) -> bytes:
    return (DATA / f"procfs_cgroup_{name}").read_bytes()


def ids(raw: bytes) -> dict[str, str | None]:
    return {layout.name: layout.container_id(raw) for layout in LAYOUTS}


# ---- reading /proc/PID/cgroup -----------------------------------------------------------------


def test_docker_bytes_still_name_the_docker_container_and_no_other_runtimes():
    raw = captured("docker_hybrid")
    assert parse_container_id(raw) == parse_container_id(raw, DOCKER_LAYOUT) == DOCKER_ID
    systemd = b"0::/system.slice/docker-" + DOCKER_ID.encode() + b".scope\n"
    assert parse_container_id(systemd) == DOCKER_ID
    assert CONTAINER_CGROUPS == ("docker/{id}", "system.slice/docker-{id}.scope")
    for docker in (raw, systemd):
        assert [layout.container_id(docker) for layout in LAYOUTS[1:]] == [None] * 4


def test_a_ctr_task_is_named_by_its_namespace_and_free_form_id():
    default, k8s = captured("containerd_default"), captured("containerd_k8s_io")
    default_id = default.split(b"\n", 1)[0].rsplit(b"/", 1)[1].decode()
    assert default_id.startswith("web_1.a-")
    assert parse_container_id(default, DEFAULT_NS) == default_id
    assert containerd_layout("default", "k8s.io").container_id(default) == default_id
    assert K8S.container_id(default) is None  # another namespace's container
    assert DOCKER_LAYOUT.container_id(default) is None
    k8s_id = k8s.split(b"\n", 1)[0].rsplit(b"/", 1)[1].decode()
    assert K8S.container_id(k8s) == k8s_id
    assert DEFAULT_NS.container_id(k8s) is None


@pytest.mark.parametrize(
    "name",
    ["kubepods_cgroupfs_burstable_placed", "kubepods_systemd_burstable_placed",
     "kubepods_systemd_guaranteed_placed"],
)  # fmt: skip
def test_kubelets_pod_cgroups_name_the_cri_containerd_container_for_k8s_io_only(name: str):
    raw = captured(name)
    leaf = raw.split(b"\n", 1)[0].rsplit(b"/", 1)[1].decode()
    container = leaf.removeprefix("cri-containerd-").removesuffix(".scope")
    assert len(container) == 64
    assert ids(raw) == {
        "docker": None,
        "containerd(default)": None,
        "containerd(k8s.io)": container,
        "containerd(default,k8s.io)": container,
        "cri-o": None,
    }


def test_crio_scope_names_its_container_and_its_conmon_scope_does_not():
    raw = captured("crio_systemd_besteffort_placed")
    line = raw.split(b"\n", 1)[0]
    container = line.rsplit(b"/crio-", 1)[1].removesuffix(b".scope").decode()
    assert CRIO_LAYOUT.container_id(raw) == container
    assert K8S.container_id(raw) is None
    conmon = line.split(b":", 2)[2].replace(b"/crio-", b"/crio-conmon-")
    assert CRIO_LAYOUT.container_id(b"0::" + conmon + b"\n") is None
    pod = b"0::/kubepods/besteffort/pod5940f3f4-b432-401f-8c86-345db131efab/"
    assert CRIO_LAYOUT.container_id(pod + b"crio-" + HEX.encode()) == HEX


def test_pod_cgroups_below_another_cgroup_root_are_still_read():
    # kubelet's --cgroup-root, or kind's kubelet.slice: a parent above kubepods.
    kind = (b"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
            b"kubelet-kubepods-besteffort-pod0c9e2b6a_1f2d_4c3b_9a8e_7d6c5b4a3f21.slice/"
            b"cri-containerd-" + HEX.encode() + b".scope\n")  # fmt: skip
    assert K8S.container_id(kind) == HEX
    nested = b"4:memory:/custom/kubepods/pod0c9e2b6a-1f2d-4c3b-9a8e-7d6c5b4a3f21/" + HEX.encode()
    assert K8S.container_id(nested) == HEX


HOST_CGROUPS = [
    b"0::/\n",
    b"0::/init.scope\n",
    b"0::/system.slice/foo.service\n",
    b"0::/system.slice/containerd.service\n",
    b"0::/system.slice/containerd.service/default/web\n",  # not at the hierarchy's root
    b"0::/user.slice/user-1000.slice/session-2.scope\n",
    b"0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/"
    b"vte-spawn-5b1c.scope\n",
    b"1:name=systemd:/user.slice/user-0.slice/session-c1.scope\n4:memory:/\n",
    b"0::/default\n",  # the namespace's own cgroup, no container below it
    b"0::/kubepods.slice/kubepods-burstable.slice\n",
    b"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c9e2b6a_1f2d.slice\n",
    b"0::/kubepods/burstable/pod0c9e2b6a-1f2d\n",
    b"0::/kubepods/burstable/pod0c9e2b6a-1f2d/" + b"ab" * 31 + b"\n",  # not a 64-hex id
    b"",
]


@pytest.mark.parametrize("raw", HOST_CGROUPS)
def test_ordinary_host_cgroups_are_in_no_container_of_any_layout(raw: bytes):
    assert set(ids(raw).values()) == {None}


def test_this_process_is_in_no_container_of_any_layout():
    raw = Path("/proc/self/cgroup").read_bytes()
    assert set(ids(raw).values()) == {None}
    assert container_of_pid(os.getpid(), layout=containerd_layout("default", "k8s.io")) is None
    assert ProcFS().container_id(os.getpid(), K8S) is None


@pytest.mark.parametrize(
    "path",
    ["-web", "web-", "a..b", "x" * 77, "web web", "wéb", "web:1"],
)
def test_ctr_paths_whose_last_part_is_no_containerd_id_are_in_no_container(path: str):
    raw = f"0::/default/{path}\n".encode()
    assert DEFAULT_NS.container_id(raw) is None


def test_a_process_in_a_child_cgroup_of_the_task_is_in_the_task():
    assert DEFAULT_NS.container_id(b"0::/default/web/init.scope\n") == "web"
    assert DEFAULT_NS.container_id(b"0::/default/" + b"x" * 76 + b"\n") == "x" * 76


def test_containerd_namespaces_are_checked_and_default_is_default():
    assert containerd_layout() is containerd_layout("default")
    for bad in ("", "a/b", "-x", "x" * 77, "k8s..io"):
        with pytest.raises(ValueError, match="is not a containerd namespace"):
            containerd_layout(bad)
    with pytest.raises(ValueError, match="valid_id"):
        CgroupLayout("globs", (), ("kubepods/*/{id}",))


# ---- finding a container's cgroup ----------------------------------------------------------


def make_cgroup(root: Path, relative: str, pids: str) -> Path:
    directory = root / relative
    directory.mkdir(parents=True)
    (directory / "cgroup.procs").write_text(pids)
    return directory


def test_container_pids_follow_the_layout(tmp_path: Path):
    make_cgroup(tmp_path, "unified/default/web_1.a-1", "41\n40\n")
    make_cgroup(tmp_path, "unified/default/web_1.a-1/child", "42\n")
    make_cgroup(tmp_path, "pids/default/web_2", "43\n")  # v1 alone
    uid = "0c9e2b6a-1f2d-4c3b-9a8e-7d6c5b4a3f21"
    make_cgroup(tmp_path, f"unified/kubepods/burstable/pod{uid}/{HEX}", "50\n")
    pod_slice = f"kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice"
    make_cgroup(tmp_path, f"memory/{pod_slice}/cri-containerd-{'cd' * 32}.scope", "60\n")
    root = str(tmp_path)
    assert container_pids("web_1.a-1", root, layout=DEFAULT_NS) == [40, 41, 42]
    assert container_pids("web_2", root, layout=DEFAULT_NS) == [43]
    assert container_cgroup_dir("web_1.a-1", root, layout=DEFAULT_NS) == str(
        tmp_path / "unified/default/web_1.a-1"
    )
    assert container_pids(HEX, root, layout=K8S) == [50]
    assert container_pids("cd" * 32, root, layout=K8S) == [60]
    assert container_pids(HEX, root, layout=DEFAULT_NS) == []
    for container in ("web_1.a-1", "web_2", HEX, "cd" * 32):
        assert container_pids(container, root) == []  # Docker's layout, the default


def test_ids_a_layout_refuses_never_become_paths(tmp_path: Path):
    make_cgroup(tmp_path, "unified/default", "1\n")
    make_cgroup(tmp_path, "unified/secret", "2\n")
    for bad in ("", "..", "../secret", "*", "web/../../secret"):
        assert container_cgroup_dir(bad, str(tmp_path), layout=DEFAULT_NS) is None


def test_cgroup2_id_of_a_containerd_container_is_its_directorys_inode(tmp_path: Path):
    task = make_cgroup(tmp_path, "unified/k8s.io/web", "1\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"31 30 0:27 / {tmp_path}/unified rw - cgroup2 cgroup2 rw\n")
    assert container_cgroup2_id("web", str(mountinfo), layout=K8S) == task.stat().st_ino
    assert container_cgroup2_id("web", str(mountinfo)) is None


# ---- the runtimes hand out their layout -------------------------------------------------------


def test_each_runtime_names_its_layout(tmp_path: Path):
    assert DockerRuntime("unix:///nowhere.sock").cgroup_layout is DOCKER_LAYOUT
    assert FakeRuntime().cgroup_layout is DOCKER_LAYOUT
    assert FakeRuntime(K8S).cgroup_layout is K8S
    assert ContainerdRuntime(str(tmp_path / "c.sock")).cgroup_layout is DEFAULT_NS
    assert ContainerdRuntime(str(tmp_path / "c.sock"), "k8s.io").cgroup_layout is K8S
