"""Which program an exec runs: busybox applets, files run through the loader, fileless files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.sensors.program import (
    HASH_LIMIT,
    absolute,
    applet_name,
    applet_program,
    fileless_name,
    is_loader,
    loader_target,
    sha256_of,
    sha256_of_path,
)


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A container root with busybox and two applet links, /bin/ls and /usr/bin/env."""
    for path in ("bin/busybox", "bin/ls", "bin/nc", "usr/bin/env"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    return str(tmp_path)


def test_the_applet_is_argv0_or_after_the_binarys_own_name() -> None:
    assert applet_name(["nc", "-l"]) == "nc"
    assert applet_name(["/bin/ls"]) == "ls"
    assert applet_name(["busybox", "nc", "-l"]) == "nc"
    assert applet_name(["/bin/busybox", "/bin/nc"]) == "nc"
    assert applet_name(["busybox", "--list"]) is None
    assert applet_name(["busybox"]) is None
    assert applet_name([]) is None


def test_a_learned_name_running_another_applet_is_that_applet(root: str) -> None:
    # exec -a nc /bin/ls: the file asked for is /bin/ls, the program busybox's nc
    assert applet_program(root, "/bin/ls", "/bin/busybox", ["nc", "-h"]) == "/bin/nc"
    assert applet_program(root, "/bin/busybox", "/bin/busybox", ["busybox", "nc"]) == "/bin/nc"
    # an applet with no link of its own is named beside the binary
    assert applet_program(root, "/bin/ls", "/bin/busybox", ["telnet"]) == "/bin/telnet"


def test_an_applet_called_by_its_own_name_keeps_the_name_asked_for(root: str) -> None:
    assert applet_program(root, "/usr/bin/env", "/bin/busybox", ["env"]) == "/usr/bin/env"
    assert applet_program(root, "/bin/ls", "/bin/busybox", ["/bin/ls", "-l"]) == "/bin/ls"
    assert applet_program(root, "/bin/busybox", "/bin/busybox", ["busybox", "--list"]) == (
        "/bin/busybox"
    )


def test_a_binary_that_is_not_multi_call_is_what_was_asked_for(root: str) -> None:
    assert applet_program(root, "/usr/bin/dash", "/usr/bin/dash", ["nc"]) == "/usr/bin/dash"


def test_the_loader_loads_its_first_argument_past_its_options() -> None:
    assert is_loader("/lib64/ld-linux-x86-64.so.2")
    assert is_loader("/lib/ld-musl-x86_64.so.1")
    assert not is_loader("/usr/bin/ld")
    assert loader_target(["ld.so", "/tmp/x", "-c", "id"]) == "/tmp/x"
    args = ["ld.so", "--library-path", "/lib", "--argv0", "x", "--inhibit-cache", "./p", "-v"]
    assert loader_target(args) == "./p"
    assert loader_target(["ld.so", "--preload", "/tmp/evil.so", "--", "/bin/true"]) == "/bin/true"
    assert loader_target(["ld.so", "--verify", "/bin/true"]) == "/bin/true"
    assert loader_target(["ld.so", "--help"]) is None
    assert loader_target(["ld.so", "--library-path"]) is None
    assert loader_target(["ld.so"]) is None


@given(st.lists(st.text(max_size=12), max_size=8))
def test_the_loader_target_is_one_of_the_arguments_never_an_option(argv: list[str]) -> None:
    found = loader_target(["ld.so", *argv])
    assert found is None or (found in argv and (not found.startswith("--") or "--" in argv))


def test_relative_names_are_made_absolute_against_the_working_directory() -> None:
    assert absolute("./p", "/tmp") == "/tmp/p"
    assert absolute("../bin/x", "/tmp/a") == "/tmp/bin/x"
    assert absolute("/bin/x", "/tmp") == "/bin/x"


def test_a_fileless_program_is_named_by_the_file_it_was_or_its_memfd() -> None:
    assert fileless_name("/tmp/vanish (deleted)", "vanish", "/proc/self/fd/3") == "/tmp/vanish"
    assert fileless_name("/memfd:payload (deleted)", "memfd:payload", "x") == "/memfd:payload"
    assert fileless_name("", "memfd:payload", "/proc/self/fd/3") == "/memfd:payload"
    assert fileless_name("", "vanish", "/proc/self/fd/3") == "/proc/self/fd/3"


def test_a_memfds_bytes_are_hashed_through_its_descriptor_or_proc() -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    fd = os.memfd_create("garrison-test", 0)
    try:
        os.write(fd, data)
        want = hashlib.sha256(data).hexdigest()
        assert sha256_of(fd) == want
        assert sha256_of_path(f"/proc/self/fd/{fd}") == want
    finally:
        os.close(fd)
    assert sha256_of_path("/proc/self/fd/99999") == ""


def test_a_program_larger_than_the_limit_is_not_hashed() -> None:
    fd = os.memfd_create("garrison-big", 0)
    try:
        os.ftruncate(fd, HASH_LIMIT + 1)
        assert sha256_of(fd) == ""
    finally:
        os.close(fd)
