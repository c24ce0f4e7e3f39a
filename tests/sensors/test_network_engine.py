"""NetworkSensor against the real engine: listeners and connections inside containers."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from garrison.runtime.base import ContainerInfo
from garrison.sensors.cgroup import container_pids
from garrison.sensors.events import NetEvent
from garrison.sensors.network import NetworkSensor
from tests.support import WAIT, became_true

pytestmark = pytest.mark.engine

DEBIAN = "garrison-test/debian:12"
NGINX = "garrison-test/nginx:latest"

# A listener on 127.0.0.1:9000 and a client holding a connection to it, then ready.
TCP_PAIR = """
import socket, time
server = socket.create_server(("127.0.0.1", 9000))
client = socket.create_connection(("127.0.0.1", 9000))
peer, _ = server.accept()
print("ready", flush=True)
time.sleep(120)
"""
UDP_LISTENER = """
import socket, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 5353))
print("ready", flush=True)
time.sleep(120)
"""


def info(container: Any) -> ContainerInfo:
    container.reload()
    return ContainerInfo(container.id, container.name, "", "", pid=container.attrs["State"]["Pid"])


def wait_for(predicate: Callable[[], bool]) -> bool:
    return became_true(predicate, WAIT, step=0.05)


def python_container(run_container: Callable[..., Any], script: str) -> Any:
    container = run_container(DEBIAN, ["python3", "-c", script])
    assert wait_for(lambda: b"ready" in container.logs())
    return container


def poll_until(sensor: NetworkSensor, found: Callable[[NetEvent], bool]) -> list[NetEvent]:
    """Poll until an event matches; all events seen on the way."""
    seen: list[NetEvent] = []
    assert wait_for(lambda: (seen.extend(sensor.poll_once()), any(map(found, seen)))[1])
    return seen


def test_nginx_listens_on_tcp_80_owned_by_nginx(run_container):
    container = run_container(NGINX)
    sensor = NetworkSensor(lambda e: None)
    sensor.watch(info(container))
    seen = poll_until(sensor, lambda e: e.kind == "listen" and e.local_port == 80)
    (event,) = [e for e in seen if e.local_port == 80]
    assert (event.container_id, event.protocol) == (container.id, "tcp")
    assert event.pid in container_pids(container.id)
    assert event.process_path == "/usr/sbin/nginx"


def test_a_listening_port_is_reported_once(run_container):
    container = run_container(NGINX)
    sensor = NetworkSensor(lambda e: None)
    sensor.watch(info(container))
    poll_until(sensor, lambda e: e.local_port == 80)
    assert [e for e in sensor.poll_once() if e.local_port == 80] == []


def test_an_outbound_connection_names_the_remote_end_and_its_process(run_container):
    container = python_container(run_container, TCP_PAIR)
    sensor = NetworkSensor(lambda e: None)
    sensor.watch(info(container))
    seen = poll_until(sensor, lambda e: e.kind == "connect")
    connects = [e for e in seen if e.kind == "connect"]
    assert [(e.protocol, e.remote_ip, e.remote_port) for e in connects] == [
        ("tcp", "127.0.0.1", 9000)
    ]
    assert connects[0].process_path.startswith("/usr/bin/python3")
    assert ("listen", 9000) in {(e.kind, e.local_port) for e in seen}


def test_a_bound_udp_socket_is_a_udp_listener(run_container):
    container = python_container(run_container, UDP_LISTENER)
    sensor = NetworkSensor(lambda e: None)
    sensor.watch(info(container))
    seen = poll_until(sensor, lambda e: e.protocol == "udp")
    assert [(e.kind, e.local_ip, e.local_port) for e in seen] == [("listen", "0.0.0.0", 5353)]


def test_only_watched_containers_are_reported(run_container):
    watched = run_container(NGINX)
    other = python_container(run_container, UDP_LISTENER)
    sensor = NetworkSensor(lambda e: None)
    sensor.watch(info(watched))
    seen = poll_until(sensor, lambda e: e.local_port == 80)
    assert {e.container_id for e in seen} == {watched.id}
    assert other.id not in sensor.watched()


def test_the_polling_thread_sends_events_to_the_sink_until_stopped(run_container):
    container = run_container(NGINX)
    received: list[NetEvent] = []
    sensor = NetworkSensor(received.append, interval=0.05)
    sensor.watch(info(container))
    sensor.start()
    try:
        assert wait_for(lambda: any(e.local_port == 80 for e in received))
    finally:
        sensor.stop()
    assert sensor.counters.events == len(received)
    assert sensor.counters.errors == 0


HOST_LISTENER = """
import socket, time
server = socket.create_server(("127.0.0.1", 0))
print("ready", server.getsockname()[1], flush=True)
time.sleep(120)
"""


def test_on_the_host_network_only_the_containers_own_sockets_are_reported(run_container):
    # This test's own listener is a host socket in the same namespace: never the container's.
    with socket.create_server(("127.0.0.1", 0)) as host_listener:
        container = run_container(DEBIAN, ["python3", "-c", HOST_LISTENER], network_mode="host")
        assert wait_for(lambda: b"ready" in container.logs())
        port = int(container.logs().split()[1])
        sensor = NetworkSensor(lambda e: None)
        sensor.watch(info(container))
        seen = poll_until(sensor, lambda e: e.local_port == port)
        assert host_listener.getsockname()[1] not in {e.local_port for e in seen}
    pids = container_pids(container.id)
    assert all(e.pid in pids for e in seen)


def test_with_tcp_events_the_tcp_tables_are_read_once_and_events_reported_once(run_container):
    """Reading /proc/PID/net/tcp walks the host's whole TCP table: with the TCP events of the
    BPF source, a container's TCP tables are read at its first poll only."""
    container = python_container(run_container, TCP_PAIR)
    sent: list[NetEvent] = []
    sensor = NetworkSensor(sent.append)
    sensor.watch(info(container))
    sensor.tcp_events(container.id)
    reads: list[bool] = []
    real_read = sensor._read_sockets

    def counting(pid: int, tcp: bool = True):
        reads.append(tcp)
        return real_read(pid, tcp)

    sensor._read_sockets = counting  # type: ignore[method-assign]
    first = sensor.poll_once()
    assert {(e.kind, e.remote_port or e.local_port) for e in first} == {
        ("listen", 9000),
        ("connect", 9000),
    }
    sensor.poll_once()
    assert reads == [True, False]
    me = os.getpid()
    event = NetEvent(container.id, "connect", "tcp", "0.0.0.0", 0, "127.0.0.1", 7000, pid=me)
    sensor.on_tcp(event)
    sensor.on_tcp(event)
    (reported,) = [e for e in sent if e.remote_port == 7000]
    assert reported.process_path == os.readlink(f"/proc/{me}/exe")
