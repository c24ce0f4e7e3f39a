"""Zip bombs, made in a moment: a deflate block that ends in a full flush refers to nothing
before it, so the same few bytes repeated inflate to any size without deflating it all.

The zip is written by hand (APPNOTE.TXT 4.3: local headers, central directory, end record),
so that a member may declare a size other than the one its data inflates to.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
DEFLATED = 8
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01


def deflated_spaces(size: int) -> bytes:
    """Raw deflate data that inflates to ``size`` spaces (a multiple of 1 MiB), which is
    JSON's whitespace: only a size limit can refuse it."""
    assert size % CHUNK == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(b" " * CHUNK) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty last block
    return block * (size // CHUNK) + final


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes  # raw deflate data
    declared_size: int  # what the headers say it inflates to
    crc: int = 0


def deflated(name: str, body: bytes) -> Member:
    """An honest member."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(body) + compressor.flush()
    return Member(name, data, len(body), zlib.crc32(body))


def write_zip(path: Path, members: list[Member]) -> Path:
    central, offset = b"", 0
    with path.open("wb") as out:
        for m in members:
            name = m.name.encode()
            sizes = (m.crc, len(m.data), m.declared_size, len(name))
            local = struct.pack("<4s5H3I2H", b"PK\3\4", 20, 0, DEFLATED, 0, DOS_DATE, *sizes, 0)
            out.write(local + name + m.data)
            central += struct.pack(
                "<4s6H3I5H2I", b"PK\1\2", 20, 20, 0, DEFLATED, 0, DOS_DATE, *sizes,
                0, 0, 0, 0, 0, offset,
            ) + name  # fmt: skip
            offset += len(local) + len(name) + len(m.data)
        out.write(central)
        count = len(members)
        out.write(struct.pack("<4s4H2IH", b"PK\5\6", 0, 0, count, count, len(central), offset, 0))
    return path
