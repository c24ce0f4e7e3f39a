"""Alerts as RFC 5424 syslog frames, sent over UDP, TCP (RFC 6587 octet counting) or a unix
datagram socket.

A frame is one line by construction: every text in it went through ``inert``, the header
fields are restricted to printable US-ASCII, and the structured data escapes ``"``, ``\\``
and ``]`` as RFC 5424 section 6.3.3 requires, so a command line cannot end the element early
or start a second frame.
"""

from __future__ import annotations

import datetime as dt
import socket

from garrison.alerts._redact import redacted
from garrison.alerts.channel import Channel, SyslogTarget, syslog_target
from garrison.alerts.render import FIELD_MAX, TITLE_MAX, Message, inert
from garrison.errors import DeliveryFailed, InvalidInput

FACILITY_LOCAL0 = 16
APP_NAME = "garrison"
# 32473 is the private enterprise number RFC 5612 reserves for examples and documentation.
SD_ID = "garrison@32473"
NIL = "-"
BOM = "\ufeff".encode()

# rsyslog and syslog-ng take 8 KiB frames by default, and a UDP datagram stays far below its
# 64 KiB ceiling: values are cut further until the frame fits.
MAX_FRAME = 8192
_VALUE_CAPS = (FIELD_MAX, 256, 64)

_HOSTNAME_MAX = 255
_MSGID_MAX = 32
_SD_NAME_MAX = 32
_PROCID_MAX = 128


def severity_of(effect: str) -> int:
    """Block 2 (critical), prevent 3 (error), alert 4 (warning), anything else 5 (notice)."""
    return {"block": 2, "prevent": 3, "alert": 4}.get(effect, 5)


def frame(
    message: Message,
    *,
    hostname: str,
    now: float,
    severity: int,
    procid: str = NIL,
    max_bytes: int = MAX_FRAME,
) -> bytes:
    """One RFC 5424 frame: ``<PRI>1 TIMESTAMP HOSTNAME garrison PROCID MSGID [SD] BOM TITLE``.

    The MSGID is the message's attackType field; the structured data holds its non-empty
    fields. Values are cut (1000, then 256, then 64 characters) until the frame fits in
    ``max_bytes``.
    """
    header = _header(message, hostname=hostname, now=now, severity=severity, procid=procid)
    msg = BOM + inert(message.title, TITLE_MAX).encode()
    data = b""
    for cap in _VALUE_CAPS:
        data = f"{header} {_structured_data(message.fields, cap)} ".encode() + msg
        if len(data) <= max_bytes:
            break
    return data


def send_syslog(channel: Channel, data: bytes, timeout: float) -> None:
    """Send one frame; DeliveryFailed (naming the redacted URL) when it cannot be sent.

    UDP and unix datagrams are fire and forget: a receiver that is down is only noticed when
    the kernel refuses the datagram (a unix socket path with nobody bound to it).
    """
    try:
        target = syslog_target(channel.url)
    except InvalidInput as exc:
        raise DeliveryFailed(str(exc)) from exc
    try:
        _send(target, data, timeout)
    except OSError as exc:
        raise DeliveryFailed(f"{redacted(channel.url)}: {_reason(exc)}") from exc


def _send(target: SyslogTarget, data: bytes, timeout: float) -> None:
    if target.transport == "tcp":
        with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
            # RFC 6587 section 3.4.1: octet counting, "MSG-LEN SP SYSLOG-MSG".
            sock.sendall(b"%d " % len(data) + data)
        return
    if target.transport == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(data, target.path)
        return
    family, kind, proto, _, address = socket.getaddrinfo(
        target.host, target.port, type=socket.SOCK_DGRAM
    )[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, address)


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    return exc.strerror or str(exc) or type(exc).__name__


def _header(message: Message, *, hostname: str, now: float, severity: int, procid: str) -> str:
    pri = FACILITY_LOCAL0 * 8 + min(max(severity, 0), 7)
    return " ".join(
        (
            f"<{pri}>1",
            _timestamp(now),
            _ascii_token(hostname, _HOSTNAME_MAX),
            APP_NAME,
            _ascii_token(procid, _PROCID_MAX),
            _ascii_token(message.fields.get("attackType", ""), _MSGID_MAX),
        )
    )


def _timestamp(now: float) -> str:
    try:
        moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return NIL  # a clock beyond what a datetime holds: the receiver stamps it instead
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ascii_token(text: str, limit: int) -> str:
    """Printable US-ASCII without spaces (RFC 5424 PRINTUSASCII), or the NILVALUE."""
    kept = "".join(char for char in text if "!" <= char <= "~")[:limit]
    return kept or NIL


def _structured_data(fields: dict[str, str], cap: int) -> str:
    params = [
        f'{_sd_name(name)}="{_sd_value(value, cap)}"'
        for name, value in fields.items()
        if value and _sd_name(name)
    ]
    return "[" + " ".join((SD_ID, *params)) + "]"


def _sd_name(name: str) -> str:
    kept = "".join(char for char in name if "!" <= char <= "~" and char not in '="]')
    return kept[:_SD_NAME_MAX]


def _sd_value(value: str, cap: int) -> str:
    text = inert(value, cap)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
