"""A container's other mounts, found in its mountinfo and proven by mount id before a mark."""

from __future__ import annotations

import os
from pathlib import Path

from garrison.sensors.other_mounts import ContainerMount, container_mounts, mount_id, open_mount

MOUNTINFO = """\
22 1 0:21 / / rw - overlay overlay rw
23 22 0:22 / /proc rw - proc proc rw
30 22 8:1 /srv/x /data rw - ext4 /dev/sda1 rw
31 22 0:40 / /scratch rw - tmpfs tmpfs rw
32 22 8:1 /var/lib/docker/containers/c/hosts /etc/hosts rw - ext4 /dev/sda1 rw
33 22 0:41 / /scratch rw - tmpfs tmpfs rw
34 22 0:42 / /with\\040space rw - tmpfs tmpfs rw
"""


def fake_proc(tmp_path: Path, pid: int = 7) -> str:
    (tmp_path / str(pid)).mkdir()
    (tmp_path / str(pid) / "mountinfo").write_text(MOUNTINFO)
    return str(tmp_path)


def test_the_top_mount_at_each_point_asked_for_is_found(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    points = ["/scratch", "/data", "/etc/hosts", "/etc/resolv.conf", "/with space", "/data"]
    assert container_mounts(7, points, proc) == (
        ContainerMount("/scratch", 33),  # mounted over mount 31
        ContainerMount("/data", 30),
        ContainerMount("/etc/hosts", 32),
        ContainerMount("/with space", 34),
    )


def test_a_process_gone_has_no_mounts(tmp_path: Path) -> None:
    assert container_mounts(8, ["/data"], str(tmp_path)) == ()


def test_a_mount_is_opened_only_when_the_path_leads_to_that_very_mount() -> None:
    here = mount_id(os.open("/", os.O_PATH | os.O_CLOEXEC))
    assert here is not None
    pid = os.getpid()
    fd = open_mount(pid, ContainerMount("/", here))
    assert fd is not None
    os.close(fd)
    assert open_mount(pid, ContainerMount("/", here + 100_000)) is None
    assert open_mount(pid, ContainerMount("/no/such/path", here)) is None
