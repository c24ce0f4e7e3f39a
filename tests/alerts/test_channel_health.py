"""Each channel's health, as the dispatcher reports it in the store's ``alerts`` status: a real
webhook receiver on loopback that answers 500 makes the channel down (failed attempts, the last
error without the URL's secret, ``garrison status`` in red); once it answers 200 the retry
succeeds and the channel is up again, its failure kept in the totals. A worker goes on at once
after a full batch sent, and pauses after a failing one."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

from garrison.alerts.channel import Channel
from garrison.alerts.dispatch import BATCH, Dispatcher
from garrison.alerts.health import STATUS_SOURCE
from garrison.alerts.render import Message
from garrison.alerts.send import DeliveryFailed
from garrison.cli.status import _channel_lines
from garrison.store import MemoryStore
from garrison.store.base import ChannelRecord
from tests.alerts import receivers
from tests.alerts.conftest import PLAIN
from tests.support import wait_for

SECRET = "Hx9HealthSecretToken3"


def hook_health(store: MemoryStore) -> dict[str, Any]:
    doc = store.get_status(STATUS_SOURCE) or {}
    return dict((doc.get("channels") or {}).get("hook") or {})


def test_a_failing_receiver_marks_the_channel_down_and_a_success_brings_it_back() -> None:
    store = MemoryStore()
    with receivers.webhook_server(status=500) as server:
        url = f"json://127.0.0.1:{server.port}/in?token={SECRET}"
        store.add_channel(ChannelRecord("hook", url, 0.0))
        store.add_audits([PLAIN])
        dispatcher = Dispatcher(store, "node-7", poll=0.05).start()
        try:
            wait_for("the failed attempt reported", lambda: hook_health(store).get("failures"))
            failing = hook_health(store)
            failing_lines = _channel_lines(store.get_status(STATUS_SOURCE) or {})
            server.status = 200  # the receiver is fixed: the retry (after 2 s) goes through
            wait_for("the retry reported sent", lambda: hook_health(store).get("sent"))
            working = hook_health(store)
        finally:
            dispatcher.stop()
        posts = len(server.posts)
    assert failing["up"] is False
    # one failed attempt, or two on a machine slow enough to reach the first retry meanwhile
    assert failing["sent"] == 0
    assert failing["consecutiveFailures"] == failing["failures"] >= 1
    assert "500" in failing["lastError"]
    assert failing["lastSuccessAt"] is None
    assert failing["url"] == f"json://127.0.0.1:{server.port}/in?token=***"
    assert SECRET not in json.dumps(store.get_status(STATUS_SOURCE))
    [line] = failing_lines
    assert line.startswith("[red]alert channel hook")
    assert "FAILING" in line
    assert working["up"] is True
    failures = working["failures"]
    assert (working["sent"], working["consecutiveFailures"]) == (1, 0)
    assert failures >= failing["failures"]
    assert working["lastSuccessAt"] >= working["lastFailureAt"]
    assert working["lastError"] == failing["lastError"], "the last error stays for the record"
    assert posts == failures + 1
    [line] = _channel_lines(store.get_status(STATUS_SOURCE) or {})
    assert "[red]" not in line
    assert f"up, 1 sent, {failures} failed attempts" in line
    final = store.get_status(STATUS_SOURCE) or {}
    assert (final["state"], final["sent"], final["failures"]) == ("stopped", 1, failures)


def test_a_removed_channel_leaves_the_report() -> None:
    store = MemoryStore()
    store.add_channel(ChannelRecord("hook", "json://127.0.0.1:1/in", 0.0))
    dispatcher = Dispatcher(store, "node-7", send=lambda c, m: None, poll=0.05).start()
    try:
        wait_for("the channel reported", lambda: hook_health(store))
        store.remove_channel("hook")
        wait_for("the channel gone from the report", lambda: not hook_health(store))
    finally:
        dispatcher.stop()


class _Pass:
    """What ``Dispatcher.work`` reads of a channel's worker (no thread of its own here)."""

    def __init__(self, name: str) -> None:
        self.channel = Channel(name, "json://127.0.0.1:1/in")
        self.stopping = threading.Event()


def test_a_full_batch_sent_goes_on_at_once_and_a_failing_one_waits() -> None:
    store = MemoryStore()
    store.add_channel(ChannelRecord("hook", "json://127.0.0.1:1/in", 0.0))
    store.add_audits([dataclasses.replace(PLAIN, msg=f"finding {i}") for i in range(BATCH + 5)])
    fail = {"now": False}

    def send(channel: Channel, message: Message) -> None:
        if fail["now"]:
            raise DeliveryFailed("connection refused")

    dispatcher = Dispatcher(store, "node-7", send=send)
    dispatcher.health.track("hook", "json://127.0.0.1:1/in")
    worker = _Pass("hook")
    assert dispatcher.work(worker) is True  # 20 sent, more due: no pause
    assert dispatcher.work(worker) is False  # the last 5: the worker pauses
    store.add_audits([dataclasses.replace(PLAIN, msg=f"later {i}") for i in range(BATCH)])
    fail["now"] = True
    assert dispatcher.work(worker) is False  # a full batch, but the channel is down
    assert len(store.list_deliveries("sent")) == BATCH + 5
    assert dispatcher.health.channels["hook"].consecutive_failures == BATCH
