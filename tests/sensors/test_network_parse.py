"""/proc/net tables captured in a Debian container on this machine, and how they are read.

The capture (tests/sensors/data/net_*.txt) holds, in one network namespace: a TCP listener on
127.0.0.1:9000 with a client connected to it; a dual-stack listener on [::]:8080 with one
IPv4 client (seen as ::ffff:127.0.0.1 on the server side) and one ::1 client; UDP sockets
bound to 0.0.0.0:5353 and [::]:5354; UDP sockets connected to 127.0.0.1:5353 and [::1]:5354.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.sensors.network import (
    SocketEntry,
    classify,
    decode_address,
    event_key,
    listening_ports,
    parse_proc_net,
)

DATA = Path(__file__).parent / "data"


def table(name: str) -> list[SocketEntry]:
    protocol = "tcp" if name.startswith("tcp") else "udp"
    return parse_proc_net((DATA / f"net_{name}.txt").read_bytes(), protocol)


def all_entries() -> list[SocketEntry]:
    return [e for name in ("tcp", "tcp6", "udp", "udp6") for e in table(name)]


def classified() -> set[tuple[str | int, ...]]:
    entries = all_entries()
    ports = listening_ports(entries)
    return {event_key(kind, e) for e in entries if (kind := classify(e, ports)) is not None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0100007F:2328", ("127.0.0.1", 9000)),
        ("00000000:0000", ("0.0.0.0", 0)),
        ("00000000000000000000000001000000:1F90", ("::1", 8080)),
        ("00000000000000000000000000000000:14EA", ("::", 5354)),
        ("0000000000000000FFFF00000100007F:EC22", ("127.0.0.1", 60450)),  # v4-mapped
    ],
)
def test_addresses_are_host_order_words(text: str, expected: tuple[str, int]):
    assert decode_address(text) == expected


def test_every_line_of_the_tables_is_parsed():
    assert [len(table(n)) for n in ("tcp", "tcp6", "udp", "udp6")] == [4, 4, 2, 2]


def test_a_listener_and_its_socket_inode():
    listener = table("tcp")[0]
    assert (listener.local_ip, listener.local_port, listener.state) == ("127.0.0.1", 9000, 0x0A)
    assert listener.inode == 39176


def test_tcp_listeners_of_both_families_are_listen_events():
    found = classified()
    assert ("listen", "tcp", 9000) in found
    assert ("listen", "tcp", 8080) in found


def test_outbound_tcp_connections_name_the_remote_end():
    found = classified()
    assert ("connect", "tcp", "127.0.0.1", 9000) in found
    assert ("connect", "tcp", "127.0.0.1", 8080) in found
    assert ("connect", "tcp", "::1", 8080) in found


def test_accepted_connections_are_not_outbound():
    # The server side of each connection has the listening port as its local port.
    tcp = [k for k in classified() if k[:2] == ("connect", "tcp")]
    assert sorted(k[3] for k in tcp) == [8080, 8080, 9000]


def test_bound_udp_sockets_listen_and_connected_ones_connect():
    found = classified()
    assert {("listen", "udp", 5353), ("listen", "udp", 5354)} <= found
    assert {("connect", "udp", "127.0.0.1", 5353), ("connect", "udp", "::1", 5354)} <= found


def test_the_whole_capture_gives_exactly_these_events():
    assert len(classified()) == 9


def test_an_unconnected_udp_socket_on_an_ephemeral_port_is_a_client_not_a_listener():
    client = SocketEntry("udp", "0.0.0.0", 45000, "0.0.0.0", 0, 0x07, 1)
    assert classify(client, set()) is None


def test_a_client_that_closed_first_still_shows_its_connection_in_time_wait():
    closed = SocketEntry("tcp", "127.0.0.1", 50000, "127.0.0.1", 9000, 0x06, 0)
    assert classify(closed, {9000}) == "connect"


def test_an_accepted_socket_whose_listener_closed_stays_inbound_when_the_port_is_remembered():
    accepted = SocketEntry("tcp", "127.0.0.1", 9000, "127.0.0.1", 50000, 0x01, 7)
    assert classify(accepted, {9000}) is None


def test_malformed_lines_are_skipped():
    raw = (DATA / "net_tcp.txt").read_bytes()
    broken = raw + b"   9: ZZZZ:0000 00000000:0000 0A 0 0 0 0 0 12\n  10: short\n"
    assert len(parse_proc_net(broken, "tcp")) == 4
