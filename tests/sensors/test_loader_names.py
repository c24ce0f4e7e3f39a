"""The ``loader_ok`` map as LoaderNames keeps it, in the kernel (the program loaded, not
attached): names written before a container is armed, stale ones deleted, and a container
whose names do not all fit disarmed rather than armed with fewer."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.sensors.bpf.build import build
from garrison.sensors.bpf.libbpf import BpfObject, library
from garrison.sensors.bpf.loader_names import LoaderNames, _Key

CGROUP = 4242
MAP_ENTRIES = 65536  # loader_ok's max_entries


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("proc_events", tmp_path_factory.mktemp("bpf"))


@pytest.fixture
def names(program: Path) -> Iterator[LoaderNames]:
    obj = BpfObject(str(program))
    kept = LoaderNames()
    kept.fd = obj.map_fd("loader_ok")
    try:
        yield kept
    finally:
        obj.close()


def in_map(names: LoaderNames, name: str) -> bool:
    value = ctypes.c_uint8()
    key = _Key(CGROUP, name.encode())
    return library().bpf_map_lookup_elem(names.fd, ctypes.byref(key), ctypes.byref(value)) == 0


def test_the_names_wanted_are_written_and_stale_ones_deleted(names: LoaderNames) -> None:
    names.want("c1", frozenset({"/usr/bin/true", "/app/server"}))
    names.sync("c1", CGROUP)
    assert names.armed("c1")
    assert in_map(names, "/usr/bin/true")
    assert in_map(names, "/app/server")
    assert not in_map(names, "/usr/bin/tru"), "a prefix is another name"

    names.want("c1", frozenset({"/app/server"}))
    names.sync("c1", CGROUP)
    assert not in_map(names, "/usr/bin/true")
    assert in_map(names, "/app/server")

    names.drop("c1", CGROUP)
    assert not names.armed("c1")
    assert not in_map(names, "/app/server")


def test_a_name_too_long_for_the_key_is_never_written(names: LoaderNames) -> None:
    long = "/opt/" + "x" * 300
    names.want("c1", frozenset({long, "/ok"}))
    names.sync("c1", CGROUP)
    assert in_map(names, "/ok")
    assert names.armed("c1")


def test_names_that_do_not_fit_the_map_disarm_the_container(names: LoaderNames) -> None:
    too_many = frozenset(f"/n/{i}" for i in range(MAP_ENTRIES + 10))
    names.want("c1", too_many)
    names.sync("c1", CGROUP)
    assert not names.armed("c1"), "armed with fewer names than it was given"
    assert not in_map(names, "/n/0"), "what was written is taken back"
    assert names.armed_count == 0
