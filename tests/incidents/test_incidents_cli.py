"""``garrison incidents list|show|archive|reopen`` as a user runs them, on a real store: the
story printed in order with its tactics, state changes, clear one-line errors, and text a
container chose printed inert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from garrison.audit.record import Audit
from garrison.incidents.worker import Correlator
from garrison.store import SQLiteStore

HOSTILE = "web[red]\x1b[2J"


def garrison(*args: str) -> subprocess.CompletedProcess[str]:
    wide = os.environ | {"COLUMNS": "250"}  # a table row on one line
    command = [sys.executable, "-m", "garrison", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=wide, check=False
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = SQLiteStore.in_dir(tmp_path)
    common = {"hostname": "h", "effect": "alert", "containerId": "c" * 64,
              "containerName": HOSTILE, "imageName": "img"}  # fmt: skip
    store.add_audits([
        Audit(time=1001.0, type="processes", attackType="driftBinary", msg="ran /tmp/x",
              processPath="/tmp/x", **common),
        Audit(time=1000.0, type="filesystem", attackType="executableCreation",
              msg="cp wrote /tmp/x", processPath="/usr/bin/cp", filePath="/tmp/x", **common),
    ])  # fmt: skip
    Correlator(store).step()
    store.close()
    return tmp_path


def test_list_and_show_tell_the_story_in_order_with_its_tactics(data_dir: Path) -> None:
    listed = garrison("incidents", "list", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert "/tmp/x was written in the container, then run" in listed.stdout
    assert "\x1b" not in listed.stdout
    assert "web[red]" in listed.stdout
    shown = garrison("incidents", "show", "1", "--data-dir", str(data_dir))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.index("cp wrote /tmp/x") < shown.stdout.index("ran /tmp/x")
    assert "T1105 Ingress Tool Transfer" in shown.stdout
    doc = json.loads(
        garrison("incidents", "show", "#1", "--json", "--data-dir", str(data_dir)).stdout
    )
    assert [s["msg"] for s in doc["story"]] == ["cp wrote /tmp/x", "ran /tmp/x"]
    assert doc["containerName"] == HOSTILE, "JSON keeps the text as it was"


def test_archive_and_reopen_change_the_state(data_dir: Path) -> None:
    assert garrison("incidents", "archive", "1", "--data-dir", str(data_dir)).returncode == 0

    def states(state: str) -> list[int]:
        done = garrison(
            "incidents", "list", "--state", state, "--json", "--data-dir", str(data_dir)
        )
        return [i["id"] for i in json.loads(done.stdout)]

    assert (states("open"), states("archived")) == ([], [1])
    assert garrison("incidents", "reopen", "1", "--data-dir", str(data_dir)).returncode == 0
    assert (states("open"), states("archived")) == ([1], [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "x1"], "incident id must be a number, not 'x1'"),
        (["show", "99"], "incident 99: no such incident"),
        (["archive", "99"], "incident 99: no such incident"),
        (["list", "--state", "closed"], "incident state must be open or archived, not 'closed'"),
        (["list", "--limit", "-1"], "limit must be 0"),
    ],
)
def test_a_bad_request_is_one_clear_line(data_dir: Path, args: list[str], message: str) -> None:
    done = garrison("incidents", *args, "--data-dir", str(data_dir))
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
