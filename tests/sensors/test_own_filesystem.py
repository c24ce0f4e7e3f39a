"""Which container roots may take a filesystem mark: fed the defender's mountinfo captured on
this machine with an overlay2 container (private engine) and a vfs one (its root the plain
directory ``vfs/dir/ID`` on ``/``'s ext4, 254:0), then real paths and mounts of this host."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.errors import NotOwnFilesystem, SensorError
from garrison.sensors.mountinfo import parse_mountinfo
from garrison.sensors.own_filesystem import Devices, own_root, why_not_own

DATA = Path(__file__).parent / "data"
MOUNTS = parse_mountinfo((DATA / "mountinfo_host_engines.txt").read_text())
EXT4 = os.makedev(254, 0)  # / and every engine's data root
OVERLAY = os.makedev(0, 60)
ENGINE = "/var/tmp/garrison-helper-a-engine/data"
LAYER = "cf82625f33cef7eb5ac718dbb76ef8fa1380874deeb1d95308f6dce7d3867f9f"
MERGED = f"{ENGINE}/overlay2/{LAYER}/merged"
VFS_ROOT = (
    "/var/tmp/garrison-vfs-engine/data/vfs/dir/"
    "0652396bd5e2cc7af4d4aaa05ef687e4d8f5ab03990c249b087243e49d931241"
)
CID = "c" * 64


def test_an_overlay2_merged_dir_is_the_containers_own_file_system() -> None:
    assert why_not_own(MERGED, MOUNTS, Devices(OVERLAY, EXT4, EXT4)) is None


def test_a_vfs_root_is_a_directory_on_the_hosts_file_system() -> None:
    why = why_not_own(VFS_ROOT, MOUNTS, Devices(EXT4, EXT4, EXT4))
    assert why == (
        f"{VFS_ROOT} is a directory on the host's file system (device 254:0, like /), "
        "not a file system of its own"
    )


def test_a_merged_dir_not_mounted_here_is_refused_even_on_another_device() -> None:
    # The overlay's directory with its overlay gone (unmounted, or mounted in the engine's
    # own mount namespace): a plain directory of the data root's file system.
    elsewhere = Devices(os.makedev(8, 17), os.makedev(8, 17), EXT4)
    why = why_not_own(MERGED.replace("cf82", "0000"), MOUNTS, elsewhere)
    assert why is not None
    assert "is a directory on the file system of" in why
    assert "(device 8:17)" in why
    # A device of its own but no mount point here (a btrfs subvolume, say): still refused.
    subvolume = Devices(os.makedev(0, 70), EXT4, EXT4)
    why = why_not_own(VFS_ROOT, MOUNTS, subvolume)
    assert why is not None
    assert "not a mount point in the defender's mount namespace (device 0:70)" in why


def test_a_mount_point_of_another_type_is_refused() -> None:
    # An engine's data root is a bind mount of the host's ext4 onto itself.
    why = why_not_own(ENGINE, MOUNTS, Devices(EXT4, EXT4, EXT4))
    assert why is not None
    assert why.startswith(f"{ENGINE} is a mount of ext4")
    assert why_not_own("/", MOUNTS, Devices(EXT4, EXT4, EXT4)) is not None


def test_an_overlay_mount_that_is_not_the_file_system_at_the_path_is_refused() -> None:
    # The mount table read after the stat no longer matches what the path resolved to.
    why = why_not_own(MERGED, MOUNTS, Devices(os.makedev(0, 61), EXT4, EXT4))
    assert why is not None
    assert "device 0:61, not the overlay mount there (0:60)" in why


def test_an_overlay_on_the_hosts_own_device_is_refused() -> None:
    lines = (DATA / "mountinfo_host_engines.txt").read_text().replace(" 0:60 ", " 254:0 ")
    why = why_not_own(MERGED, parse_mountinfo(lines), Devices(EXT4, EXT4, EXT4))
    assert why is not None
    assert "on device 254:0, like /" in why


def test_real_paths_of_this_host_are_refused_with_the_container_named(tmp_path: Path) -> None:
    for path in ("/", "/proc", str(tmp_path)):
        with pytest.raises(NotOwnFilesystem, match=f"container {CID[:12]}: ") as caught:
            own_root(CID, path)
        assert caught.value.container_id == CID
        assert caught.value.path == path
    with pytest.raises(NotOwnFilesystem, match="no root file system"):
        own_root(CID, None)
    with pytest.raises(SensorError, match="not a directory") as gone:
        own_root(CID, str(tmp_path / "gone"))
    assert not isinstance(gone.value, NotOwnFilesystem)


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    """An overlay mounted here, as overlay2 mounts a container's root."""
    dirs = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for path in dirs.values():
        path.mkdir()
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, dirs["merged"]], check=True)
    try:
        yield dirs["merged"]
    finally:
        subprocess.run(["umount", dirs["merged"]], check=True)


def test_an_overlay_mounted_here_is_accepted_with_its_own_device(overlay: Path) -> None:
    root, dev = own_root(CID, str(overlay))
    assert root == str(overlay)
    assert dev == overlay.stat().st_dev != Path("/").stat().st_dev
