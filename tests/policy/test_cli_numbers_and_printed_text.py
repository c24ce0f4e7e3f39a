"""Issue 12, the command line: a number out of range is refused in one line (exit 1, no
``OverflowError``), and text that came from containers or files is printed with its control,
bidi and markup characters escaped, never acted on."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.audit.query import MAX_LIMIT, AuditFilter
from garrison.audit.record import Audit
from garrison.store import SQLiteStore
from tests.cli_run import assert_refused_in_one_line, garrison, private_dir

HOSTILE = "sh -c 'x'\x1b[2J\x00\u202eexe.sh\n[/x][bold red]boom"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return private_dir(tmp_path / "data")


def store_audit(data_dir: Path, **fields: str) -> None:
    audit = Audit(time=1.0e9, hostname="h", type="processes", attackType="t", effect="alert",
                  msg=fields.get("msg", "m"), containerName=fields.get("name", "c"))  # fmt: skip
    store = SQLiteStore.in_dir(data_dir)
    try:
        store.add_audits([audit])
    finally:
        store.close()


def audit_count(data_dir: Path) -> int:
    store = SQLiteStore.in_dir(data_dir)
    try:
        return len(store.list_audits(AuditFilter(limit=0)))
    finally:
        store.close()


@pytest.mark.parametrize("limit", ["99999999999999999999", str(MAX_LIMIT + 1), "-1"])
def test_an_audit_limit_out_of_range_is_refused_in_one_line(data_dir: Path, limit: str) -> None:
    store_audit(data_dir)
    ran = garrison("audits", "list", "--limit", limit, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, f"limit must be 0 (no limit) to {MAX_LIMIT:,}")
    assert audit_count(data_dir) == 1


def test_the_largest_audit_limit_is_taken(data_dir: Path) -> None:
    store_audit(data_dir)
    ran = garrison("audits", "list", "--limit", str(MAX_LIMIT), "--json", "--data-dir", data_dir)
    assert ran.code == 0, ran


@pytest.mark.parametrize("code", ["256", "-1", "99999999999999999999"])
def test_an_exit_code_that_no_process_can_have_is_refused_before_scanning(code: str) -> None:
    ran = garrison("scan", "image", "x", "--exit-code", code, "--docker-host", "tcp://127.0.0.1:1")
    assert_refused_in_one_line(ran, "an exit status is 0 to 255")


@pytest.mark.parametrize("timeout", ["nan", "inf", "1e400", "0", "-5", "3601"])
def test_a_download_timeout_out_of_range_is_refused_before_downloading(
    data_dir: Path, timeout: str
) -> None:
    ran = garrison("vulndb", "update", "--url", "http://127.0.0.1:1", "--timeout", timeout,
                   "--data-dir", data_dir)  # fmt: skip
    assert_refused_in_one_line(ran, "give seconds above 0, at most 3600")
    assert not (data_dir / "vulndb.sqlite").exists()


def test_audit_text_from_a_container_is_printed_escaped(data_dir: Path) -> None:
    store_audit(data_dir, msg=HOSTILE, name="[red]web\u2066")
    ran = garrison("audits", "list", "--data-dir", data_dir)
    assert ran.code == 0, ran
    for acted_on in ("\x1b", "\x00", "\u202e", "\u2066"):
        assert acted_on not in ran.out
    for shown in ("\\x1b[2J", "\\x00", "\\u202eexe.sh", "\\n[/x][bold red]boom", "[red]web\\u2066"):
        assert shown in ran.out.replace("\n", ""), ran.out  # the table may wrap a cell


def test_an_error_naming_hostile_input_is_one_escaped_line(data_dir: Path) -> None:
    ran = garrison("rules", "delete", "[/x]\x1b[31m\u202e\n", "--data-dir", data_dir)
    line = assert_refused_in_one_line(ran, "no runtime rule named '[/x]\\x1b[31m\\u202e\\n'")
    assert "\x1b" not in line
    assert "\u202e" not in line
