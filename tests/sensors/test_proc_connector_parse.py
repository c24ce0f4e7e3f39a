"""Proc connector messages, parsed from datagrams captured on this machine.

The captures (tests/sensors/data/pc_*.bin) come from one run of
``sh -c '/bin/true; exit 3'`` (sh = pid 26891, forked by python = 26889, true = 26892) with a
proc connector socket listening, plus a thread start and exit of another process (26893).
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.sensors.proc_connector import (
    PROC_CN_MCAST_LISTEN,
    ExecEvent,
    ExitEvent,
    ForkEvent,
    MalformedMessage,
    ProcConnector,
    ProcEvent,
    SequenceGaps,
    control_message,
    parse_datagram,
)

DATA = Path(__file__).parent / "data"


def capture(name: str) -> bytes:
    return (DATA / f"pc_{name}.bin").read_bytes()


def test_fork_names_parent_and_child():
    (event,) = parse_datagram(capture("fork"))
    assert isinstance(event, ForkEvent)
    assert (event.parent_pid, event.parent_tgid) == (26889, 26889)
    assert (event.child_pid, event.child_tgid) == (26891, 26891)
    assert not event.is_thread


def test_exec_names_the_process():
    (event,) = parse_datagram(capture("exec"))
    assert isinstance(event, ExecEvent)
    assert (event.pid, event.tgid) == (26891, 26891)


def test_exit_decodes_the_wait_status_and_the_parent():
    (event,) = parse_datagram(capture("exit_code3"))
    assert isinstance(event, ExitEvent)
    assert (event.tgid, event.code, event.signal) == (26891, 3, 0)
    assert event.exit_signal == 17  # SIGCHLD
    assert (event.parent_pid, event.parent_tgid) == (26889, 26889)
    assert not event.is_thread


def test_a_new_thread_is_a_fork_within_one_thread_group():
    (event,) = parse_datagram(capture("fork_thread"))
    assert isinstance(event, ForkEvent)
    assert event.is_thread
    assert event.child_tgid == 26893


def test_a_thread_exit_carries_no_signal_for_the_parent():
    (event,) = parse_datagram(capture("exit_thread"))
    assert isinstance(event, ExitEvent)
    assert event.is_thread
    assert event.exit_signal == -1


def test_the_listen_acknowledgement_is_no_event():
    assert parse_datagram(capture("listen_ack")) == []


def test_the_cpu_and_its_sequence_number_are_read_for_loss_counting():
    (fork,) = parse_datagram(capture("fork"))
    (exec_,) = parse_datagram(capture("exec"))
    assert (fork.cpu, fork.seq) == (1, 1)  # the child then ran on the other CPU
    assert (exec_.cpu, exec_.seq) == (0, 0)


def test_several_messages_in_one_datagram_are_all_parsed():
    events = parse_datagram(capture("fork") + capture("exec") + capture("exit_code3"))
    assert [type(e) for e in events] == [ForkEvent, ExecEvent, ExitEvent]


@pytest.mark.parametrize("cut", [20, 40, 56, 60])
def test_a_truncated_message_is_malformed(cut: int):
    data = capture("exit_code3")[:cut]
    data = struct.pack("=I", len(data)) + data[4:]
    with pytest.raises(MalformedMessage):
        parse_datagram(data)


def test_a_length_past_the_datagram_is_malformed():
    data = capture("exec")
    with pytest.raises(MalformedMessage):
        parse_datagram(struct.pack("=I", len(data) + 8) + data[4:])


def test_another_connector_is_malformed():
    data = bytearray(capture("exec"))
    data[16:20] = struct.pack("=I", 7)  # cn_msg.id.idx
    with pytest.raises(MalformedMessage):
        parse_datagram(bytes(data))


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_malformed(data: bytes):
    with contextlib.suppress(MalformedMessage):
        parse_datagram(data)


def test_listen_message_layout():
    msg = control_message(PROC_CN_MCAST_LISTEN)
    length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", msg)
    assert (length, kind) == (len(msg), 3)  # NLMSG_DONE, as the kernel documentation sends
    assert struct.unpack_from("=IIIIHHI", msg, 16) == (1, 1, 0, 0, 4, 0, 1)


def test_gaps_in_one_cpus_sequence_count_lost_events():
    gaps = SequenceGaps()
    assert [gaps.see(0, s) for s in (10, 11, 15, 16)] == [0, 0, 3, 0]
    assert gaps.lost == 3


def test_each_cpu_has_its_own_sequence():
    gaps = SequenceGaps()
    for cpu, seq in [(0, 5), (1, 900), (0, 6), (1, 901)]:
        gaps.see(cpu, seq)
    assert gaps.lost == 0


def test_the_sequence_wraps_around_without_a_gap():
    gaps = SequenceGaps()
    gaps.see(0, 0xFFFFFFFF)
    assert gaps.see(0, 0) == 0


def test_a_listener_that_raises_is_counted_and_the_others_still_run():
    seen: list[ProcEvent] = []

    def broken(event: ProcEvent) -> None:
        raise RuntimeError("boom")

    connector = ProcConnector(broken)
    connector.add_listener(seen.append)
    connector.dispatch(capture("fork"))
    assert connector.counters.errors == 1
    assert len(seen) == 1


def test_a_malformed_datagram_is_counted_not_raised():
    connector = ProcConnector()
    connector.dispatch(b"garbage" * 5)
    connector.dispatch(struct.pack("=I", 4) + b"\x00" * 60)
    assert connector.counters.errors == 2
    assert connector.counters.events == 0
