"""``garrison run`` with no Docker engine answering at the address it was given (by option,
environment or default): it stops at once with one line saying how to start an engine, and
installs nothing and starts nothing (``garrison engine up`` is the helper that does).

The real command runs as a user runs it, in a process of its own. Its PATH begins with a
folder of tripwires named as what the development engine runs (``dpkg-query``, ``apt-get``,
``dockerd``, ``docker``): each that is run leaves its name in a file, and none may be run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_run import GARRISON, private_dir

TRIPWIRES = ("dpkg-query", "apt-get", "apt", "dockerd", "docker", "mmdebstrap", "containerd",
             "ctr")  # fmt: skip
QUICK = 10.0  # seconds: asking a socket that is not there costs a fraction of one
DEFAULT_SOCKET = Path("/var/run/docker.sock")
CONTAINERD_SOCKET = Path("/run/containerd/containerd.sock")
COMMAND = [str(GARRISON)] if GARRISON.exists() else [sys.executable, "-m", "garrison"]


def tripwires(folder: Path) -> Path:
    """A folder of executables that log their own name to ``folder/ran`` and fail."""
    folder.mkdir()
    for name in TRIPWIRES:
        wire = folder / name
        wire.write_text(f'#!/bin/sh\necho {name} >> "{folder}/ran"\nexit 1\n')
        wire.chmod(0o755)
    return folder


def run_garrison(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``garrison run ARGS``, killed with its process group if it outlives 60 s."""
    started = time.monotonic()
    with subprocess.Popen(
        [*COMMAND, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, start_new_session=True,
    ) as child:  # fmt: skip
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
        done = subprocess.CompletedProcess(child.args, child.returncode, out, err)
    return done, time.monotonic() - started


def clean_env(path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without anything that names an engine or a setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GARRISON_", "DOCKER_"))}
    # 80 columns: the line is long, and must still be one line (never wrapped).
    env.update(PATH=f"{path}:{os.environ['PATH']}", COLUMNS="80", NO_COLOR="1", **extra)
    return env


@pytest.mark.parametrize("named_by", ["--docker-host", "GARRISON_DOCKER_HOST", "DOCKER_HOST"])
def test_run_with_no_engine_answering_says_how_to_start_one_in_one_line_and_starts_nothing(
    named_by: str, tmp_path: Path
) -> None:
    wires = tripwires(tmp_path / "bin")
    data = private_dir(tmp_path / "data")
    nowhere = "unix:///nonexistent/docker.sock"
    args = ["--data-dir", str(data)]
    if named_by == "--docker-host":
        args += ["--docker-host", nowhere]
        env = clean_env(wires)
    else:
        env = clean_env(wires, **{named_by: nowhere})

    ran, seconds = run_garrison(args, env)

    assert_refused_with_the_way_to_an_engine(ran, nowhere)
    assert seconds < QUICK, f"{seconds:.1f} s"
    assert not (wires / "ran").exists(), (wires / "ran").read_text()
    assert list(data.iterdir()) == []  # refused before the store was opened


def test_run_with_nothing_named_asks_docker_then_containerd_at_their_sockets_and_says_so(
    tmp_path: Path,
) -> None:
    for socket in (DEFAULT_SOCKET, CONTAINERD_SOCKET):
        if socket.exists():
            pytest.skip(f"{socket} exists here: a runtime may answer there")
    wires = tripwires(tmp_path / "bin")

    ran, seconds = run_garrison(
        ["--data-dir", str(private_dir(tmp_path / "data"))], clean_env(wires)
    )

    assert ran.returncode == 1, ran
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith(f"garrison: no Docker engine answers at unix://{DEFAULT_SOCKET}, "
                               f"nor containerd at {CONTAINERD_SOCKET}; "), lines[0]  # fmt: skip
    assert "start Docker or containerd, or a private development engine with `" in lines[0]
    assert lines[0].endswith(
        "engine up`, then give its address with --docker-host or DOCKER_HOST "
        "(containerd's: --containerd-address)"
    ), lines[0]
    assert seconds < QUICK, f"{seconds:.1f} s"
    assert not (wires / "ran").exists(), (wires / "ran").read_text()


@pytest.mark.parametrize("named_by", ["--containerd-address", "GARRISON_CONTAINERD_ADDRESS"])
def test_run_on_containerd_with_none_answering_says_how_to_start_it_in_one_line(
    named_by: str, tmp_path: Path
) -> None:
    wires = tripwires(tmp_path / "bin")
    data = private_dir(tmp_path / "data")
    nowhere = "/nonexistent/containerd.sock"
    args = ["--data-dir", str(data), "--runtime", "containerd"]
    if named_by.startswith("--"):
        args += [named_by, nowhere]
        env = clean_env(wires)
    else:
        env = clean_env(wires, **{named_by: nowhere})

    ran, seconds = run_garrison(args, env)

    assert ran.returncode == 1, ran
    assert ran.stdout == "", ran
    assert ran.stderr.splitlines() == [
        f"garrison: no containerd answers at {nowhere} (or its client ctr is not installed); "
        "start containerd (Debian's package containerd has both), then give its socket with "
        "--containerd-address"
    ], ran.stderr
    assert seconds < QUICK, f"{seconds:.1f} s"
    assert not (wires / "ran").exists(), (wires / "ran").read_text()
    assert list(data.iterdir()) == []


def assert_refused_with_the_way_to_an_engine(
    ran: subprocess.CompletedProcess[str], address: str
) -> None:
    """Exit status 1 (as every refusal of the CLI), nothing on stdout, one line on stderr."""
    assert ran.returncode == 1, ran
    assert ran.stdout == "", ran
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith(f"garrison: no Docker engine answers at {address}; "), lines[0]
    assert "start Docker, or a private development engine with `" in lines[0], lines[0]
    assert "engine up`" in lines[0], lines[0]
    assert lines[0].endswith("then give its address with --docker-host or DOCKER_HOST"), lines[0]
