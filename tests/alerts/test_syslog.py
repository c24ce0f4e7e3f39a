"""RFC 5424 frames: each parses strictly, carries the right PRI and structured data, and stays
one frame whatever the audit holds; sent for real over UDP, TCP and a unix datagram socket."""

from __future__ import annotations

import dataclasses
import os
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.alerts.channel import Channel
from garrison.alerts.render import FIELD_NAMES, Message, inert, render
from garrison.alerts.send import deliver
from garrison.alerts.syslog import MAX_FRAME, SD_ID, frame, send_syslog, severity_of
from garrison.errors import DeliveryFailed
from tests.alerts import receivers
from tests.alerts.conftest import ANY_CHAR, HOSTILE, PLAIN
from tests.alerts.syslog_parser import SyslogSyntaxError, octet_counted, parse

NOW = 1764763200.25


def _frame(message: Message, **kw) -> bytes:
    return frame(message, hostname=kw.pop("hostname", "node-7"), now=NOW, **kw)


@pytest.mark.parametrize(
    ("effect", "severity"), [("block", 2), ("prevent", 3), ("alert", 4), ("allow", 5), ("", 5)]
)
def test_severity_follows_the_effect(effect, severity):
    assert severity_of(effect) == severity


def test_plain_frame_parses_with_pri_header_structured_data_and_title():
    message = render(PLAIN)
    parsed = parse(_frame(message, severity=3, procid="4242"))
    assert (parsed.pri, parsed.facility, parsed.severity) == (131, 16, 3)
    assert parsed.version == 1
    assert parsed.timestamp is not None
    assert parsed.timestamp.timestamp() == NOW
    assert (parsed.hostname, parsed.app_name, parsed.procid) == ("node-7", "garrison", "4242")
    assert parsed.msgid == "unexpectedProcess"
    assert list(parsed.structured_data) == [SD_ID]
    expected = {name: value for name, value in message.fields.items() if value}
    assert parsed.params(SD_ID) == expected
    assert parsed.bom
    assert parsed.msg == message.title


def test_nil_values_where_there_is_nothing_to_say():
    message = Message(title="", body="", fields={})
    parsed = parse(frame(message, hostname="", now=NOW, severity=5))
    assert (parsed.hostname, parsed.procid, parsed.msgid) == (None, None, None)
    assert parsed.structured_data == {SD_ID: []}
    assert parsed.msg == ""


def test_hostile_audit_is_exactly_one_frame_with_its_text_escaped():
    message = render(HOSTILE)
    data = _frame(message, severity=3)
    assert b"\n" not in data
    assert b"\r" not in data
    # The injected header stays inside values, after a visible "\n" rather than a newline.
    assert data.count(b"<13>1") == data.count(b"\\\\n<13>1") == 2  # in msg and in command
    parsed = parse(data)
    params = parsed.params(SD_ID)
    assert params["command"] == message.fields["command"]
    assert params["container"] == "web-1\\r\\nBcc: evil2@example.test"
    assert parsed.msg == message.title


def test_header_tokens_are_printable_ascii_and_cut_to_their_limits():
    fields = dict.fromkeys(FIELD_NAMES, "")
    fields["attackType"] = "weird type é\t" + "x" * 40
    message = Message(title="t", body="", fields=fields)
    parsed = parse(frame(message, hostname="höst name\n" + "h" * 300, now=NOW, severity=9))
    assert parsed.msgid == ("weirdtype" + "x" * 40)[:32]
    assert parsed.hostname == ("hstname" + "h" * 300)[:255]
    assert parsed.severity == 7  # clamped


def test_huge_values_are_cut_until_the_frame_fits():
    fields = dict.fromkeys(FIELD_NAMES, '界"]\\' * 2000)
    message = Message(title="界" * 500, body="", fields=fields)
    data = _frame(message, severity=2)
    assert len(data) <= MAX_FRAME
    params = parse(data).params(SD_ID)
    assert set(params) == set(FIELD_NAMES)
    assert all(value.endswith("…") for value in params.values())


@given(
    title=st.text(ANY_CHAR),
    values=st.dictionaries(st.text(ANY_CHAR, max_size=40), st.text(ANY_CHAR), max_size=15),
    hostname=st.text(ANY_CHAR),
    severity=st.integers(min_value=-3, max_value=12),
    now=st.floats(min_value=0, max_value=4102444800),
)
def test_any_message_makes_one_frame_that_parses(title, values, hostname, severity, now):
    message = Message(title=title, body="", fields=values)
    data = frame(message, hostname=hostname, now=now, severity=severity)
    parsed = parse(data)
    assert len(data) <= MAX_FRAME
    assert parsed.msg == inert(title, 200)


def test_the_parser_is_strict():
    good = _frame(render(PLAIN), severity=3)
    parse(good)
    for bad in (
        good.replace(b"<131>", b"<192>"),
        good.replace(b"<131>1", b"<131>"),
        good.replace(b'host="node-7"', b'host="node]7"'),
        good.replace(b'host="node-7"', b'host="node\\7"'),
        good.replace(b"[garrison@32473", b"[garrison@32473 ="),
        good + b"\n",
        good.replace(b"Z node-7", b"Z  node-7"),
    ):
        with pytest.raises(SyslogSyntaxError):
            parse(bad)


# --- sending ----------------------------------------------------------------------------


def test_udp_channel_receives_one_parsable_datagram():
    with receivers.udp_receiver() as sock:
        port = sock.getsockname()[1]
        deliver(Channel("s", f"syslog://127.0.0.1:{port}"), render(HOSTILE), hostname="node-7")
        data, _ = sock.recvfrom(65536)
        parsed = parse(data)
        assert parsed.pri == 16 * 8 + 3
        assert parsed.procid == str(os.getpid())
        assert parsed.params(SD_ID)["effect"] == "prevent"
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recvfrom(65536)  # and nothing more


def test_tcp_channel_sends_one_octet_counted_frame():
    message = render(HOSTILE)
    with receivers.tcp_receiver() as receiver:
        deliver(Channel("s", f"syslog+tcp://127.0.0.1:{receiver.port}"), message, hostname="n")
        frames = octet_counted(receiver.wait_stream())
    assert len(frames) == 1
    assert parse(frames[0]).params(SD_ID)["command"] == message.fields["command"]


def test_unix_channel_sends_one_datagram(short_dir):
    path = short_dir / "log"
    with receivers.unix_receiver(path) as sock:
        deliver(Channel("s", f"syslog+unix://{path}"), render(PLAIN), hostname="node-7")
        parsed = parse(sock.recv(65536))
    assert parsed.msg == render(PLAIN).title


def test_block_effect_is_critical_on_the_wire():
    blocked = render(dataclasses.replace(PLAIN, effect="block"))
    with receivers.udp_receiver() as sock:
        port = sock.getsockname()[1]
        deliver(Channel("s", f"syslog://127.0.0.1:{port}"), blocked, hostname="node-7")
        assert parse(sock.recv(65536)).severity == 2


def test_tcp_dead_port_fails():
    channel = Channel("s", f"syslog+tcp://127.0.0.1:{receivers.dead_port()}")
    with pytest.raises(DeliveryFailed, match=r"^syslog\+tcp://127\.0\.0\.1:\d+: .*refused"):
        send_syslog(channel, b"x", timeout=2)


def test_unix_socket_nobody_bound_to_fails(short_dir):
    channel = Channel("s", f"syslog+unix://{short_dir}/nobody")
    with pytest.raises(DeliveryFailed, match="No such file"):
        send_syslog(channel, b"x", timeout=2)


def test_unix_stream_socket_is_refused_clearly(short_dir):
    path = short_dir / "stream"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        with pytest.raises(DeliveryFailed, match="Protocol wrong type"):
            send_syslog(Channel("s", f"syslog+unix://{path}"), b"x", timeout=2)


def test_malformed_syslog_channel_fails_delivery_not_with_invalid_input():
    with pytest.raises(DeliveryFailed, match="HOST:PORT"):
        send_syslog(Channel("s", "syslog://nohost"), b"x", timeout=2)
