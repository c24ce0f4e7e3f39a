"""Forensics against the real engine: a blocked container's bundle, captured after the kill,
holds its file system as ``docker export`` gives it (the binary it wrote, byte for byte), what
Garrison saw it do (the spawn chain), its audits and its process tree; an --rm container's
bundle keeps what could be kept and says the file system could not be exported."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.runtime import ContainerRuntime
from tests.defender.conftest import BOTH_RUNTIMES, DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    garrison,
    put_rules,
    state,
    wait_stopped,
    watched,
)
from tests.support import wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

BLOCK_DRIFT = """
rules:
  - name: block drift
    scope: [{containers: ["fx-*"]}]
    processes:
      detections: {drift: block}
"""
MARKER = b"garrison-forensics-marker-7f3c"
PAYLOAD = "/tmp/payload"
SCRIPT = f"cp /usr/bin/true {PAYLOAD} && printf {MARKER.decode()} >> {PAYLOAD} && {PAYLOAD}"


def bundles(defender: DefenderProcess) -> list[dict[str, Any]]:
    shown = garrison("forensics", "list", "--json", "--data-dir", str(defender.data_dir))
    assert shown.returncode == 0, shown.stderr
    found: list[dict[str, Any]] = json.loads(shown.stdout)
    return found


def bundle_of(defender: DefenderProcess, container_id: str) -> dict[str, Any]:
    def mine() -> list[dict[str, Any]]:
        return [b for b in bundles(defender) if b["containerId"] == container_id]

    [found] = wait_for(f"the bundle of {container_id[:12]}", mine)
    return found


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as bundle:
        return {m.name: _read(bundle, m) for m in bundle.getmembers()}


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    return b"" if handle is None else handle.read()


def file_in_tar(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return _read(archive, archive.getmember(name))


def journal(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


@BOTH_RUNTIMES
def test_a_blocked_container_s_bundle_holds_the_binary_it_wrote_and_the_chain_that_ran_it(
    start_defender: Start, run_container, defended_runtime: ContainerRuntime
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, BLOCK_DRIFT)
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="fx-drift"))
    box.exec_run(["/bin/sh", "-c", SCRIPT])
    wait_stopped(box, "blocked for running the binary it wrote")

    bundle = bundle_of(defender, box.id)
    assert bundle["complete"], bundle["missing"]
    verified = garrison("forensics", "verify", bundle["path"])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    held = members(Path(bundle["path"]))
    assert {"inspect.json", "audits.json", "journal.jsonl", "process-tree.json", "diff.json",
            "logs.txt", "filesystem.tar", "manifest.json"} <= set(held)  # fmt: skip

    # The binary, byte for byte as the export of the stopped container gives it.
    payload = file_in_tar(held["filesystem.tar"], PAYLOAD.lstrip("/"))
    assert payload.endswith(MARKER)
    export = b"".join(defended_runtime.export(box.id))  # docker export, or ctr's snapshot
    assert payload == file_in_tar(export, PAYLOAD.lstrip("/"))

    # The chain: the shell ran cp, cp wrote the payload, the shell ran the payload.
    entries = journal(held["journal.jsonl"])
    spawns = {e["path"]: e for e in entries if e["kind"] == "spawn"}
    shell, payload_run = spawns["/bin/sh"], spawns[PAYLOAD]
    assert spawns["/usr/bin/cp"]["ppid"] == shell["pid"]
    assert payload_run["ppid"] == shell["pid"]
    wrote = [e for e in entries if e["kind"] == "write"]
    assert any(e["path"] == PAYLOAD for e in wrote), (wrote, defender.status().get("sensors"))
    audited = [(e["attackType"], e["effect"]) for e in entries if e["kind"] == "audit"]
    assert ("driftBinary", "block") in audited  # with the writes' executableCreation alerts
    order = [e["kind"] for e in entries]
    assert order.index("start") < order.index("spawn") < order.index("audit")

    # The audit that blocked it names the bundle; so does the blocked record.
    audits = json.loads(held["audits.json"])
    [blocking] = [a for a in audits if a["effect"] == "block"]
    assert (blocking["attackType"], blocking["bundle"]) == ("driftBinary", bundle["id"])
    tree = json.loads(held["process-tree.json"])
    assert (tree[0]["argv"], tree[0]["pidInContainer"]) == (["sleep", "3600"], 1)
    diff = {c["Path"] for c in json.loads(held["diff.json"])}
    assert PAYLOAD in diff
    blocked = garrison("containers", "blocked", "--json", "--data-dir", str(defender.data_dir))
    [record] = [r for r in json.loads(blocked.stdout) if r["containerId"] == box.id]
    assert (record["bundle"], record["capture"]) == (bundle["id"], "done")


def test_an_rm_container_s_bundle_keeps_inspect_journal_and_audits_and_says_why_no_files(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, BLOCK_DRIFT)
    box = watched(
        defender, run_container(DEBIAN, ["sleep", "3600"], name="fx-rm", auto_remove=True)
    )
    container_id = box.id
    box.exec_run(["/bin/sh", "-c", SCRIPT])

    bundle = bundle_of(defender, container_id)
    assert not bundle["complete"]
    held = members(Path(bundle["path"]))
    assert json.loads(held["inspect.json"])["Id"] == container_id  # as it was at its start
    assert json.loads(held["inspect.json"])["HostConfig"]["AutoRemove"] is True
    spawned = [e["path"] for e in journal(held["journal.jsonl"]) if e["kind"] == "spawn"]
    assert PAYLOAD in spawned
    assert "driftBinary" in [a["attackType"] for a in json.loads(held["audits.json"])]
    assert "filesystem.tar" not in held
    missing = {m["name"]: m["why"] for m in json.loads(held["manifest.json"])["missing"]}
    assert "removed" in missing["filesystem.tar"], missing
    verified = garrison("forensics", "verify", bundle["path"])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_capture_cut_by_a_killed_defender_is_made_again_whole_by_the_next(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h", args=["--no-watchdog"])
    put_rules(defender, BLOCK_DRIFT)
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="fx-killed"))
    # Incompressible, so that the capture takes seconds: long enough to be killed in.
    box.exec_run(["dd", "if=/dev/urandom", "of=/big", "bs=1M", "count=300"])
    box.exec_run(["/bin/sh", "-c", SCRIPT])
    shelf = defender.data_dir / "forensics" / "bundles"
    wait_for("the capture to be under way", lambda: list(shelf.glob("*.partial")), timeout=30)
    defender.stop(signal.SIGKILL)
    assert bundles(defender) == [], "a half-written bundle is never listed"

    again = start_defender(learning="1h", data_dir=defender.data_dir, args=["--no-watchdog"])
    bundle = bundle_of(again, box.id)
    assert list(shelf.glob("*.partial")) == []
    assert bundle["missing"] == ["process-tree.json"]  # the processes are gone
    verified = garrison("forensics", "verify", bundle["path"])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    payload = file_in_tar(members(Path(bundle["path"]))["filesystem.tar"], PAYLOAD.lstrip("/"))
    assert payload.endswith(MARKER)
    blocked = garrison("containers", "blocked", "--json", "--data-dir", str(again.data_dir))
    [record] = [r for r in json.loads(blocked.stdout) if r["containerId"] == box.id]
    assert (record["bundle"], record["capture"]) == (bundle["id"], "done")


def test_any_container_is_exported_on_demand_and_keeps_running(
    start_defender: Start, run_container, engine
) -> None:
    defender = start_defender(learning="1h")
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="fx-export"))
    box.exec_run(["/bin/sh", "-c", f"printf {MARKER.decode()} > /tmp/note"])
    out = defender.data_dir.parent / "fx-export.tar.gz"
    where = ["--docker-host", engine.base_url, "--data-dir", str(defender.data_dir)]
    done = garrison("forensics", "export", "fx-export", "-o", str(out), *where)
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout
    assert state(box)["Running"]
    held = members(out)
    assert file_in_tar(held["filesystem.tar"], "tmp/note") == MARKER
    assert json.loads(held["manifest.json"])["subject"]["reason"] == "captured on demand"
    tree = json.loads(held["process-tree.json"])
    assert tree[0]["argv"] == ["sleep", "3600"]
    assert bundles(defender) == [], "an export on demand is not kept on the host"
    assert garrison("forensics", "verify", str(out)).returncode == 0


@pytest.fixture
def small_data_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs for the data directory: room for the store, not for a 64 MB export."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(mount)],
                   check=True)  # fmt: skip
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_disk_that_fills_keeps_the_small_members_and_says_the_file_system_did_not_fit(
    start_defender: Start, run_container, small_data_disk: Path
) -> None:
    defender = start_defender(learning="1h", data_dir=small_data_disk / "data")
    put_rules(defender, BLOCK_DRIFT)
    box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="fx-full"))
    box.exec_run(["dd", "if=/dev/urandom", "of=/big", "bs=1M", "count=64"])
    box.exec_run(["/bin/sh", "-c", SCRIPT])
    wait_stopped(box, "blocked")

    bundle = bundle_of(defender, box.id)
    assert bundle["missing"] == ["filesystem.tar"]
    held = members(Path(bundle["path"]))
    missing = {m["name"]: m["why"] for m in json.loads(held["manifest.json"])["missing"]}
    assert "No space left on device" in missing["filesystem.tar"], missing
    assert {"inspect.json", "journal.jsonl", "audits.json", "diff.json"} <= set(held)
    assert garrison("forensics", "verify", bundle["path"]).returncode == 0
    assert list((defender.data_dir / "forensics" / "bundles").glob("*.partial")) == []
    assert defender.status()["forensics"]["failed"] == 0  # a bundle, short of one member
