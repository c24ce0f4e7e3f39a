"""Helpers shared by tests (not fixtures): waiting without timing assertions, checked execs."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.models.containers
import pytest

from garrison.runtime.base import ContainerInfo


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


WAIT = 60.0  # the most a test waits for something to happen; not a timing assertion


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``probe`` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def exec_ok(container: docker.models.containers.Container, cmd: list[str], **kw: Any) -> str:
    """Run ``cmd`` in the container; fail the test unless it exits 0. Returns its output."""
    code, output = container.exec_run(cmd, **kw)
    assert code == 0, output
    return bytes(output).decode()


def became_true(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` for up to ``timeout`` seconds; whether it became true (for
    ``assert became_true(...)`` where the assertion itself names what is awaited)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def rootfs_info(container: docker.models.containers.Container) -> ContainerInfo:
    """The container as a sensor needs it: id, name and its overlay MergedDir."""
    container.reload()
    data = container.attrs["GraphDriver"]["Data"]
    return ContainerInfo(container.id, container.name, "", "", merged_dir=data["MergedDir"])


def fill(disk: Path) -> Path:
    """Take every free byte of the file system ``disk``; the filler file, to remove."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def grow(disk: Path, size: str = "64m") -> None:
    """Give a tmpfs (``small_disk``) room again, as an operator growing a volume would."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """``root`` served over HTTP on 127.0.0.1 (a bucket for downloads); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
