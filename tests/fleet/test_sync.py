"""The long-polled sync (``garrison.fleet.sync``) against a real console listener: a host
that holds what the console has is kept waiting until something changes for it, answered at
once when it lacks something, and refused for a malformed request; statuses that say nothing
new are paced."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.console import runtime_rules
from garrison.fleet import link as link_module
from garrison.fleet import wire
from garrison.fleet.client import ConsoleClient, ConsoleRefused
from garrison.fleet.sync import SyncAsk
from garrison.fleet.tls import client_context
from garrison.model.commands import ModelCommand
from garrison.runtime.base import RestartPolicy
from garrison.runtime.fake import FakeRuntime
from garrison.store.base import BlockedContainer
from tests.fleet.remote_support import Console, linked, listening
from tests.support import wait_for

BLOCKED = BlockedContainer("c" * 64, "web", "nginx", RestartPolicy("always"), None, 1.0)
KEPT = BlockedContainer("d" * 64, "db", "postgres", RestartPolicy("no"), None, 2.0)
RULES = {"rules": [{"name": "no-nc", "effect": "alert", "processes": {"deny": ["nc"]}}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    with listening(request, tmp_path) as made:
        yield made


def client_of(console: Console, tmp_path: Path, host: str = "node-1") -> ConsoleClient:
    console.enrol(tmp_path / host, host)
    folder = tmp_path / host / "console"
    context = client_context(folder / "host.pem", folder / "host-key.pem",
                             (folder / "ca.pem").read_bytes())  # fmt: skip
    return ConsoleClient(console.url, context, timeout=40.0)


def ask(client: ConsoleClient, held: SyncAsk) -> tuple[Any, float]:
    start = time.monotonic()
    answer = client.get(wire.SYNC, held.query())
    return answer, time.monotonic() - start


def test_a_host_lacking_the_rules_is_answered_at_once_and_one_holding_them_waits(
    console, tmp_path
) -> None:
    console.store.set_policy("runtime", RULES)
    with client_of(console, tmp_path) as client:
        first, _ = ask(client, SyncAsk(wait=20.0))
        assert first["policies"]["runtime"] == RULES
        held, took = ask(client, SyncAsk(first["policiesTag"], wait=1.0))
        assert took >= 1.0, "nothing new: held for its whole wait"
        assert held["policiesTag"] == first["policiesTag"]


def test_a_held_sync_is_answered_when_the_rules_change(console, tmp_path) -> None:
    with client_of(console, tmp_path) as client:
        first, _ = ask(client, SyncAsk(wait=20.0))
        changed = threading.Timer(1.0, console.store.set_policy, ("runtime", RULES))
        changed.start()
        try:
            answer, took = ask(client, SyncAsk(first["policiesTag"], wait=25.0))
        finally:
            changed.cancel()
        assert answer["policies"]["runtime"] == RULES
        assert answer["policiesTag"] != first["policiesTag"]
        assert took < 20.0, "woken by the change, not by the end of its wait"


def test_a_held_sync_is_answered_with_a_new_command_and_models_after_its_cursor(
    console, tmp_path
) -> None:
    with client_of(console, tmp_path) as client:
        first, _ = ask(client, SyncAsk(models=0.0, wait=20.0))
        tag, cursor = first["policiesTag"], first["cursor"]
        command = console.store.add_model_command(ModelCommand("relearn", "p1", time=time.time()))
        answer, _ = ask(client, SyncAsk(tag, cursor, wait=25.0))
        assert [c["id"] for c in answer["commands"]] == [command.id]
        given = frozenset([command.id or 0])
        console.store.save_models([{"profileId": "p1", "state": "learning"}])
        answer, _ = ask(client, SyncAsk(tag, cursor, given, wait=25.0))
        assert [m["profileId"] for m in answer["models"]] == ["p1"]
        assert answer["cursor"] > cursor


@pytest.mark.parametrize(
    "query",
    [{"wait": "soon"}, {"wait": "31"}, {"wait": "-1"}, {"models": "nan"}, {"commands": "1,x"}],
)
def test_a_malformed_sync_is_400(console, tmp_path, query) -> None:
    with client_of(console, tmp_path) as client, pytest.raises(ConsoleRefused) as refused:
        client.get(wire.SYNC, query)
    assert refused.value.status == 400


def test_a_status_saying_nothing_new_waits_its_turn_and_new_rules_go_at_once(
    console, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(link_module, "STATUS_EVERY", 3600.0)
    console.enrol(tmp_path / "h1", "node-1")
    source = "defender:node-1"
    with linked(console, tmp_path / "h1") as link:
        link.report_status({"rules": "r1", "state": "running", "n": 1})
        wait_for("the first status", lambda: console.store.get_status(source))
        link.report_status({"rules": "r1", "state": "running", "n": 2})
        time.sleep(2.0)  # rounds of the sender, and of the console's writer, pass
        assert console.store.get_status(source)["n"] == 1, "nothing new: not sent yet"
        link.report_status({"rules": "r2", "state": "running", "n": 3})
        wait_for("the status naming the new rules",
                 lambda: console.store.get_status(source)["rules"] == "r2")  # fmt: skip
    assert console.store.get_status(source)["host"] == "node-1"


def test_what_a_host_asks_reads_back_as_it_was_asked() -> None:
    held = SyncAsk("ab" * 16, 1234.5, frozenset({3, 1, 2}), 25.0)
    assert SyncAsk.parse(held.query()) == held
    assert SyncAsk.parse({}) == SyncAsk()


def test_a_block_ended_at_the_console_is_handed_back_to_the_host_to_restore(
    console, tmp_path
) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    record, kept = BLOCKED, KEPT
    with linked(console, tmp_path / "h1") as link:
        link.sync_wait = 1.0  # its held syncs end soon: the test waits less
        link.add_blocked(record)
        link.add_blocked(kept)
        wait_for("the console's records",
                 lambda: len(console.store.list_blocked(host="node-1")) == 2)  # fmt: skip
        time.sleep(2.5)  # syncs that name both blocks as the console's
        assert link.unblocked_at_console() == []
        runtime = FakeRuntime()
        unblocked = runtime_rules.unblock(console.store, runtime, "c" * 12)  # as the console
        assert unblocked.container_id == record.container_id
        assert runtime.calls == [], "another host's container: that host restores it"
        found = wait_for("the host told of the unblock", link.unblocked_at_console)
        assert [r.container_id for r in found] == [record.container_id]
        assert [r.container_id for r in link.list_blocked()] == [kept.container_id]
    saved = json.loads((tmp_path / "h1" / "console" / "blocked.json").read_text())
    assert "c" * 64 not in json.dumps(saved), "the host's own record forgot it too"


def acked_on_disk(data_dir: Path) -> list[str]:
    saved = json.loads((data_dir / "console" / "blocked.json").read_text())
    found: list[str] = saved.get("acked", [])
    return found


def test_a_block_ended_at_the_console_while_its_host_was_down_stays_ended(
    console, tmp_path
) -> None:
    # The restarted defender sends its blocks again: one the console took before goes as an
    # update, which the console refuses to make anew once a user unblocked it meanwhile.
    console.enrol(tmp_path / "h1", "node-1")
    record, kept = BLOCKED, KEPT
    with linked(console, tmp_path / "h1") as link:
        link.add_blocked(record)
        link.add_blocked(kept)
        wait_for("the console to take both",
                 lambda: len(acked_on_disk(tmp_path / "h1")) == 2)  # fmt: skip
    runtime_rules.unblock(console.store, FakeRuntime(), "c" * 12)  # the host is down
    with linked(console, tmp_path / "h1") as link:
        found = wait_for("the host told of the unblock", link.unblocked_at_console)
        assert [r.container_id for r in found] == [record.container_id]
        assert [r.container_id for r in link.list_blocked()] == [kept.container_id]
        assert link.flush(timeout=30.0), "the kept block sent again"
    assert [r.container_id for r in console.store.list_blocked()] == [kept.container_id]
    assert acked_on_disk(tmp_path / "h1") == [kept.container_id]


def test_a_block_updated_by_its_host_after_an_unblock_at_the_console_is_not_made_again(
    console, tmp_path
) -> None:
    # The host's sync forgot the block; before its defender restores the container, the
    # block's capture ends and the defender saves the record with it: not kept, not sent.
    console.enrol(tmp_path / "h1", "node-1")
    record = dataclasses.replace(BLOCKED, capture="pending")
    with linked(console, tmp_path / "h1") as link:
        link.sync_wait = 1.0
        link.add_blocked(record)
        wait_for("the console to take it", lambda: acked_on_disk(tmp_path / "h1"))
        runtime_rules.unblock(console.store, FakeRuntime(), "c" * 12)
        wait_for("the host to forget it", lambda: not link.list_blocked())
        link.add_blocked(dataclasses.replace(record, capture="done"))  # its bundle was made
        assert link.list_blocked() == []
        assert link.flush(timeout=30.0)
        assert console.store.list_blocked() == []
        found = link.unblocked_at_console()
        assert [r.container_id for r in found] == [record.container_id]
