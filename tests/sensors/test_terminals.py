"""The process that relays a shell's pty to a network socket, found on real ptys and sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from garrison.sensors.terminals import pty_driver
from tests.support import WAIT, became_true

# pty.spawn of a shell that waits: the relay (python) holds the pty's master.
SPAWN = "import pty, sys; pty.spawn(['/bin/sh', '-c', 'sleep 30'])"
# The same master, relayed by a process that holds a unix socket only (as tmux does).
UNIX_RELAY = (
    "import pty, socket, sys; keep = socket.socketpair(); pty.spawn(['/bin/sh', '-c', 'sleep 30'])"
)


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        yield client, peer
    finally:
        for s in (client, peer, server):
            s.close()


def shell_under(relay: subprocess.Popen[bytes]) -> int:
    """The pid of the shell the relay spawned."""

    def child() -> int:
        try:
            with open(f"/proc/{relay.pid}/task/{relay.pid}/children") as text:
                pids = [int(p) for p in text.read().split()]
        except OSError:
            return 0
        return pids[0] if pids else 0

    assert became_true(lambda: child() != 0 and _runs_sh(child()), WAIT)
    return child()


def _runs_sh(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe").endswith(("dash", "sh", "bash"))
    except OSError:
        return False


def spawn(code: str, **stdio: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], **stdio)  # type: ignore[call-overload]


def stop(relay: subprocess.Popen[bytes]) -> None:
    relay.kill()
    relay.wait(10)
    for pipe in (relay.stdin, relay.stdout):
        if pipe is not None:
            pipe.close()


def test_a_shell_on_a_pty_relayed_to_a_tcp_socket_is_found(tcp_pair) -> None:
    client, _peer = tcp_pair
    relay = spawn(SPAWN, stdin=client, stdout=client)
    try:
        shell = shell_under(relay)
        assert pty_driver(shell, relay.pid) == relay.pid
    finally:
        stop(relay)


def test_a_shell_on_a_pty_relayed_to_a_pipe_is_not(tcp_pair) -> None:
    relay = spawn(SPAWN, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        shell = shell_under(relay)
        time.sleep(0.1)
        assert pty_driver(shell, relay.pid) == 0
    finally:
        stop(relay)


def test_a_relay_holding_unix_sockets_only_is_not_a_reverse_shell() -> None:
    relay = spawn(UNIX_RELAY, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        shell = shell_under(relay)
        assert pty_driver(shell, relay.pid) == 0
    finally:
        stop(relay)


def test_a_process_without_a_terminal_or_gone_has_no_driver() -> None:
    assert pty_driver(os.getpid() if not os.isatty(0) else 0, os.getppid()) == 0
    assert pty_driver(2**22 + 7, 1) == 0
