"""``garrison status``'s line per container that some sensors do not watch, from the
``unwatched`` maps of the sensors' status (one line per container, sensors grouped by why)."""

from __future__ import annotations

from garrison.cli.status import _unwatched_lines

VFS = "5ebcda773f1a" + "0" * 52
GONE = "0652396bd5e2" + "1" * 52
NO_ROOT = "the runtime names no root file system for it (no MergedDir: not overlay2)"


def test_one_line_per_container_with_the_sensors_that_share_a_reason() -> None:
    sensors = {
        "exec": {"running": True, "unwatched": {VFS: NO_ROOT}},
        "files": {"running": True, "unwatched": {VFS: NO_ROOT, GONE: "container is gone"}},
        "processes": {"running": True, "unwatched": {GONE: "no cgroup v2"}},
        "network": {"running": True, "unwatched": {}},
    }
    assert _unwatched_lines(sensors) == [
        "container 0652396bd5e2 not watched by files: container is gone; processes: no cgroup v2",
        f"container 5ebcda773f1a not watched by exec, files: {NO_ROOT}",
    ]


def test_a_status_from_before_the_key_prints_nothing() -> None:
    assert _unwatched_lines({"exec": {"running": True}, "files": {}}) == []
