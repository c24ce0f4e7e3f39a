"""Directory-entry events, parsed from real bytes; deletes judged like writes by the policy.

``data/fan_dirents_batch.bin`` is one read() of a FAN_REPORT_DFID_NAME group with inode marks
on ``/tmp`` and ``/etc`` of a Debian container, while it ran the command saved beside it in
``fan_dirents_batch.json`` (with the handles ``encode_fid`` gave for those two directories and
the overlay's fsid). Captured on this machine, kernel 6.18.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from garrison.errors import SensorError
from garrison.policy import AttackType, RuntimeRule, StaticModel, evaluate_file
from garrison.policy.compiled import compile_rule
from garrison.sensors import fanotify as fan
from garrison.sensors.events import FileEvent

DATA = Path(__file__).parent / "data"
BATCH = (DATA / "fan_dirents_batch.bin").read_bytes()
META = json.loads((DATA / "fan_dirents_batch.json").read_text())
TMP, ETC = bytes.fromhex(META["/tmp"]), bytes.fromhex(META["/etc"])
FSID = bytes.fromhex(META["fsid"])


def named(event: fan.RawEvent) -> list[tuple[int, bytes, str]]:
    return [(r.info_type, r.handle, r.name) for r in fan.parse_fid_records(event.info)]


def test_each_entry_change_is_one_event_naming_its_directory_handle_and_entry() -> None:
    events = list(fan.parse_events(BATCH))
    assert [e.mask for e in events] == [
        fan.FAN_CREATE,  # echo x > /tmp/x
        fan.FAN_RENAME,  # mv /tmp/x /etc/x
        fan.FAN_DELETE,  # rm /etc/issue
        fan.FAN_CREATE | fan.FAN_ONDIR,  # mkdir /etc/newdir
        fan.FAN_CREATE,  # ln -s /bin/sh /etc/lnk
        fan.FAN_DELETE | fan.FAN_ONDIR,  # rmdir /etc/newdir
    ]
    assert all(e.fd == fan.FAN_NOFD and e.pid > 0 for e in events)
    assert named(events[0]) == [(fan.FAN_EVENT_INFO_TYPE_DFID_NAME, TMP, "x")]
    assert named(events[2]) == [(fan.FAN_EVENT_INFO_TYPE_DFID_NAME, ETC, "issue")]
    assert named(events[3])[0][2] == "newdir"


def test_a_rename_carries_the_old_and_the_new_directory_and_name() -> None:
    rename = list(fan.parse_events(BATCH))[1]
    assert named(rename) == [
        (fan.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, TMP, "x"),
        (fan.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, ETC, "x"),
    ]


def test_every_record_names_the_container_overlay_by_its_fsid() -> None:
    records = [r for e in fan.parse_events(BATCH) for r in fan.parse_fid_records(e.info)]
    assert {r.fsid for r in records} == {FSID}


def test_events_of_a_group_without_fid_reporting_have_no_info() -> None:
    batch = (DATA / "fan_events_batch.bin").read_bytes()
    assert all(e.info == b"" for e in fan.parse_events(batch))


def test_a_truncated_info_record_is_refused() -> None:
    event = next(fan.parse_events(BATCH))
    with pytest.raises(SensorError, match="malformed"):
        fan.parse_fid_records(event.info[:-8])  # its header still counts the 8 bytes cut


def test_a_directory_handle_is_the_one_fanotify_reports(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fan.encode_fid(fd) == fan.encode_fid(fd)
        assert len(fan.fsid_of(fd)) == 8
    finally:
        os.close(fd)


MODEL = StaticModel(
    state="active",
    processes=frozenset(),
    listening=frozenset(),
    outbound_ports=frozenset(),
    outbound_addresses=frozenset(),
    written=frozenset({"/etc"}),
)


def test_a_delete_under_a_denied_path_is_judged_like_a_write_and_worded_as_a_delete() -> None:
    policy = compile_rule(
        RuntimeRule(name="r", filesystem={"denied": {"effect": "prevent", "paths": ["/etc"]}})
    )
    delete = FileEvent("c1", "/etc/passwd", "delete", 7, "/usr/bin/rm", 0.0)
    found = evaluate_file(policy, MODEL, delete)
    assert [(d.effect, d.attackType) for d in found] == [
        ("prevent", AttackType.DENIED_FILE),
        ("alert", AttackType.ADMIN_ACCOUNTS),
    ]
    assert found[0].msg.startswith("/usr/bin/rm deleted /etc/passwd, explicitly denied")
