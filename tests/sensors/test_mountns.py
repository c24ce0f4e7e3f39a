"""The read-only mount helper's reading of a container's mount table, fed the mountinfo of a
real container of this machine before and after ``mountns PID /etc /usr/bin``."""

from __future__ import annotations

from pathlib import Path

from garrison.sensors.mountinfo import parse_mountinfo
from garrison.sensors.mountns import stacked_on_itself, supported, top_mount

DATA = Path(__file__).parent / "data"
BEFORE = parse_mountinfo((DATA / "mountinfo_container.txt").read_text())
AFTER = parse_mountinfo((DATA / "mountinfo_readonly_etc.txt").read_text())


def test_the_mount_table_is_parsed_whole_with_mount_points_and_read_only_flags() -> None:
    assert len(BEFORE) == 28
    root = top_mount(BEFORE, "/")
    assert root is not None
    assert not root.read_only
    assert root.fstype == "overlay"
    assert {m.fstype for m in BEFORE if m.point == "/proc"} == {"proc"}
    hosts = top_mount(BEFORE, "/etc/hosts")
    assert hosts is not None
    assert hosts.root.endswith("/hosts")
    assert not hosts.read_only


def test_the_read_only_etc_is_the_visible_mount_and_is_recognised_as_stacked_on_itself() -> None:
    etc = top_mount(AFTER, "/etc")
    assert etc is not None
    assert etc.read_only
    assert etc.root == "/etc"
    assert stacked_on_itself(AFTER, etc)
    usr_bin = top_mount(AFTER, "/usr/bin")
    assert usr_bin is not None
    assert stacked_on_itself(AFTER, usr_bin)
    # Docker's own bind mounts came along, read-only, on top of the writable ones.
    hosts = top_mount(AFTER, "/etc/hosts")
    assert hosts is not None
    assert hosts.read_only
    assert hosts.parent == etc.id


def test_docker_mounts_are_not_taken_for_garrisons_except_its_proc_masks() -> None:
    ours = {m.point for m in AFTER if stacked_on_itself(AFTER, m)}
    assert {"/etc", "/usr/bin"} <= ours
    # Docker's read-only binds of /proc/sys and others look the same: they are never
    # touched, being neither supported paths nor listed in the helper's state.
    assert all(p in {"/etc", "/usr/bin"} or p.startswith("/proc/") for p in ours)
    assert not any(stacked_on_itself(BEFORE, m) for m in BEFORE if supported(m.point))


def test_paths_the_helper_refuses_to_make_read_only() -> None:
    for path in ("/", "/proc", "/proc/sys", "/sys/fs", "/dev", "/dev/shm"):
        assert not supported(path), path
    for path in ("/etc", "/usr/bin", "/devices", "/system", "/etc/passwd"):
        assert supported(path), path


def test_escaped_mount_points_are_unescaped() -> None:
    line = r"70 60 0:5 /a\040b /mnt/a\040b ro,relatime - tmpfs tmpfs rw"
    (mount,) = parse_mountinfo(line)
    assert mount.point == "/mnt/a b"
    assert mount.root == "/a b"
    assert mount.read_only
