"""Audits exported as JSON lines or CSV, streamed, and the file they are written to.

Both formats carry ``Audit.to_json()``: the field names users' scripts know. A command line is
whatever an attacker chose, so a CSV cell that a spreadsheet would read as a formula (``=``,
``+``, ``-``, ``@``, tab, CR first) gets a leading ``'``, which makes it text (OWASP, "CSV
Injection"). JSON lines are ASCII, with ``\\u`` escapes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from garrison.audit.record import Audit
from garrison.errors import ConfigError, InvalidInput
from garrison.text import clip

FORMATS = ("jsonl", "csv")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def fields() -> list[str]:
    """The CSV header: ``to_json``'s field names, in its order."""
    return list(Audit(0.0, "", "processes", "", "alert", "").to_json())


def chunks(fmt: str, audits: Iterable[Audit]) -> Iterator[str]:
    """The text of the export, a line at a time (CSV: the header first). ``fmt`` is checked
    now, before anything is written."""
    if check_format(fmt) == "jsonl":
        return (json.dumps(a.to_json()) + "\n" for a in audits)
    return _csv_lines(audits)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be {' or '.join(FORMATS)}, not {clip(repr(fmt), 40)}")
    return fmt


def _csv_lines(audits: Iterable[Audit]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    names = fields()
    writer.writerow(names)
    yield _taken(buffer)
    for audit in audits:
        doc = audit.to_json()
        writer.writerow([inert_cell(doc.get(name)) for name in names])
        yield _taken(buffer)


def _taken(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def inert_cell(value: Any) -> str:
    """A CSV cell no spreadsheet evaluates: text that starts like a formula gets a ``'``."""
    if isinstance(value, dict):  # labels: as JSON, not as Python writes a dict
        value = json.dumps(value, sort_keys=True)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def text_stream(binary: Any) -> io.TextIOWrapper:
    """UTF-8 over ``binary``, as the export wants it: lines left as written (CSV ends them
    CRLF itself), and a lone surrogate (a non-UTF-8 byte of a command line) written as
    ``\\udcff`` rather than failing the export."""
    return io.TextIOWrapper(binary, encoding="utf-8", errors="backslashreplace", newline="")


def write_file(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` to ``path`` atomically — a 0600 temporary file beside it, renamed over
    it once complete — so that a reader never sees half an export; how many lines.

    Raises ConfigError naming the file when it cannot be written (nothing is left behind)."""
    written = 0
    try:
        with _replacing(path) as out:
            for line in lines:
                out.write(line)
                written += 1
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return written


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[TextIO]:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)  # mkstemp's mode already, whatever the umask took
        with text_stream(os.fdopen(fd, "wb")) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
