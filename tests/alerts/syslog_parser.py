"""A strict RFC 5424 parser, for the tests' use: it refuses anything the grammar does not allow
(section 6), so a frame it accepts is one a conforming receiver reads the same way.

Stricter than the RFC in two ways that a frame of Garrison's must also pass: a backslash in a
PARAM-VALUE must start one of the three escapes (the RFC would take it literally), and the
frame holds no CR or LF at all (octet counting would carry them, a line-based reader would not).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

BOM = b"\xef\xbb\xbf"
_PRI = re.compile(rb"<(0|[1-9][0-9]{0,2})>")
_VERSION = re.compile(rb"[1-9][0-9]{0,2}")
_TIMESTAMP = re.compile(
    rb"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})"
)
_PRINTUSASCII = re.compile(rb"[!-~]+")
_SD_NAME = re.compile(rb"[!-~]{1,32}")


class SyslogSyntaxError(ValueError):
    pass


@dataclass
class SyslogFrame:
    pri: int
    version: int
    timestamp: dt.datetime | None
    hostname: str | None
    app_name: str | None
    procid: str | None
    msgid: str | None
    structured_data: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    msg: str | bytes | None = None
    bom: bool = False

    @property
    def facility(self) -> int:
        return self.pri // 8

    @property
    def severity(self) -> int:
        return self.pri % 8

    def params(self, sd_id: str) -> dict[str, str]:
        return dict(self.structured_data[sd_id])


def parse(data: bytes) -> SyslogFrame:
    if b"\n" in data or b"\r" in data:
        raise SyslogSyntaxError("CR or LF in the frame")
    reader = _Reader(data)
    pri, version = reader.pri_version()
    timestamp = reader.timestamp()
    hostname = reader.token(255)
    app_name = reader.token(48)
    procid = reader.token(128)
    msgid = reader.token(32)
    frame = SyslogFrame(pri, version, timestamp, hostname, app_name, procid, msgid)
    frame.structured_data = reader.structured_data()
    frame.msg, frame.bom = reader.msg()
    return frame


def octet_counted(stream: bytes) -> list[bytes]:
    """The frames of an RFC 6587 octet-counted TCP stream; refuses trailing or short data."""
    frames: list[bytes] = []
    while stream:
        match = re.match(rb"([1-9][0-9]*) ", stream)
        if match is None:
            raise SyslogSyntaxError(f"no MSG-LEN at {stream[:20]!r}")
        start = match.end()
        length = int(match.group(1))
        if len(stream) < start + length:
            raise SyslogSyntaxError("frame shorter than its MSG-LEN")
        frames.append(stream[start : start + length])
        stream = stream[start + length :]
    return frames


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> SyslogSyntaxError:
        return SyslogSyntaxError(
            f"{what} at byte {self.pos}: {self.data[self.pos : self.pos + 40]!r}"
        )

    def match(self, pattern: re.Pattern[bytes], what: str) -> re.Match[bytes]:
        found = pattern.match(self.data, self.pos)
        if found is None:
            raise self.fail(f"expected {what}")
        self.pos = found.end()
        return found

    def space(self) -> None:
        if self.data[self.pos : self.pos + 1] != b" ":
            raise self.fail("expected SP")
        self.pos += 1

    def pri_version(self) -> tuple[int, int]:
        pri = int(self.match(_PRI, "PRI").group(1))
        if pri > 191:
            raise self.fail("PRIVAL above 191")
        version = int(self.match(_VERSION, "VERSION").group())
        self.space()
        return pri, version

    def timestamp(self) -> dt.datetime | None:
        if self.nil():
            return None
        found = self.match(_TIMESTAMP, "TIMESTAMP")
        text = found.group().decode().replace("Z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise self.fail(f"impossible TIMESTAMP ({exc})") from exc
        self.space()
        return moment

    def nil(self) -> bool:
        if self.data[self.pos : self.pos + 2] in (b"- ", b"-"):
            self.pos += 1
            if self.pos < len(self.data):
                self.space()
            return True
        return False

    def token(self, limit: int) -> str | None:
        if self.nil():
            return None
        found = self.match(_PRINTUSASCII, "PRINTUSASCII token")
        if len(found.group()) > limit:
            raise self.fail(f"token longer than {limit}")
        self.space()
        return found.group().decode("ascii")

    def structured_data(self) -> dict[str, list[tuple[str, str]]]:
        if self.data[self.pos : self.pos + 1] == b"-":
            self.pos += 1
            return {}
        elements: dict[str, list[tuple[str, str]]] = {}
        while self.data[self.pos : self.pos + 1] == b"[":
            self.pos += 1
            sd_id = self.sd_name()
            if sd_id in elements:
                raise self.fail(f"SD-ID {sd_id} twice")
            elements[sd_id] = self.params()
        if not elements:
            raise self.fail("expected STRUCTURED-DATA")
        return elements

    def sd_name(self) -> str:
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos] not in b'= ]"':
            if not 33 <= self.data[self.pos] <= 126:
                raise self.fail("SD-NAME outside PRINTUSASCII")
            self.pos += 1
        name = self.data[start : self.pos]
        if not 1 <= len(name) <= 32:
            raise self.fail("SD-NAME of 1 to 32 characters expected")
        return name.decode("ascii")

    def params(self) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        while True:
            char = self.data[self.pos : self.pos + 1]
            if char == b"]":
                self.pos += 1
                return params
            self.space()
            name = self.sd_name()
            if self.data[self.pos : self.pos + 2] != b'="':
                raise self.fail('expected ="')
            self.pos += 2
            params.append((name, self.param_value()))

    def param_value(self) -> str:
        out = bytearray()
        while self.pos < len(self.data):
            byte = self.data[self.pos : self.pos + 1]
            self.pos += 1
            if byte == b'"':
                try:
                    return out.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self.fail("PARAM-VALUE not UTF-8") from exc
            if byte == b"]":
                raise self.fail("unescaped ] in PARAM-VALUE")
            if byte == b"\\":
                escaped = self.data[self.pos : self.pos + 1]
                if escaped not in (b'"', b"\\", b"]"):
                    raise self.fail("backslash not starting an escape")
                self.pos += 1
                byte = escaped
            out += byte
        raise self.fail("unterminated PARAM-VALUE")

    def msg(self) -> tuple[str | bytes | None, bool]:
        if self.pos == len(self.data):
            return None, False
        self.space()
        rest = self.data[self.pos :]
        if not rest.startswith(BOM):
            return rest, False
        try:
            return rest[len(BOM) :].decode("utf-8"), True
        except UnicodeDecodeError as exc:
            raise self.fail("MSG after a BOM not UTF-8") from exc
