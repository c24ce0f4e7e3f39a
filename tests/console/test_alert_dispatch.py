"""The dispatcher's own logic, with channels that are functions (the real senders are tested
against real receivers in tests/alerts and tests/defender/test_alerts_delivery.py): each
delivery sent once, failures retried with backoff, a slow channel delaying no other."""

from __future__ import annotations

import threading
import time

from garrison.alerts.channel import Channel
from garrison.alerts.dispatch import BACKOFF, Dispatcher, backoff
from garrison.alerts.profiles import load_profiles
from garrison.alerts.render import Message
from garrison.alerts.send import DeliveryFailed
from garrison.store import MemoryStore
from garrison.store.base import ChannelRecord
from tests.store.test_store_contract import audit
from tests.support import wait_for


def test_backoff_grows_then_stays_at_its_last_step() -> None:
    assert [backoff(n) for n in (1, 2, len(BACKOFF), len(BACKOFF) + 5)] == [
        BACKOFF[0], BACKOFF[1], BACKOFF[-1], BACKOFF[-1],
    ]  # fmt: skip


def test_a_failing_channel_is_retried_and_a_slow_one_delays_no_other() -> None:
    store = MemoryStore()
    for name in ("slow", "fast", "flaky"):
        store.add_channel(ChannelRecord(name, f"json://127.0.0.1:1/{name}", 0.0))
    store.add_audits([audit()])
    sent: dict[str, list[Message]] = {"slow": [], "fast": [], "flaky": []}
    release = threading.Event()
    to_fail = {"flaky": 1}

    def send(channel: Channel, message: Message) -> None:
        if channel.name == "slow":
            release.wait(30)
        if to_fail.get(channel.name):
            to_fail[channel.name] -= 1
            raise DeliveryFailed("connection refused")
        sent[channel.name].append(message)

    dispatcher = Dispatcher(store, "h", send=send, poll=0.05).start()
    try:
        wait_for("the fast channel's alert", lambda: sent["fast"])
        assert not sent["slow"], "the premise: the slow channel is still sending"
        (flaky,) = wait_for("the flaky channel's retry scheduled", lambda: [
            d for d in store.list_deliveries() if d.channel == "flaky" and d.attempts == 1
        ])  # fmt: skip
        assert (flaky.state, flaky.error) == ("pending", "connection refused")
        assert flaky.next_try >= time.time() + BACKOFF[0] - 1
        release.set()
        wait_for("the slow channel's alert", lambda: sent["slow"])
    finally:
        release.set()
        dispatcher.stop()
    assert [len(sent[n]) for n in ("slow", "fast")] == [1, 1]
    assert dispatcher.counters()["failures"] == 1
    states = {d.channel: d.state for d in store.list_deliveries()}
    assert states == {"slow": "sent", "fast": "sent", "flaky": "pending"}


def test_a_thousand_identical_findings_are_one_alert_and_one_summary_per_channel() -> None:
    store = MemoryStore()
    for name in ("mail", "hook"):
        store.add_channel(ChannelRecord(name, f"json://127.0.0.1:1/{name}", 0.0))
    profiles = "profiles: [{name: all, channels: [mail, hook], aggregation: 1s}]"
    store.set_policy("alertProfiles", load_profiles(profiles).model_dump(mode="json"))
    sent: list[tuple[str, Message]] = []
    dispatcher = Dispatcher(store, "h", send=lambda c, m: sent.append((c.name, m)), poll=0.05)
    store.add_audits([audit()])
    dispatcher.start()
    try:
        wait_for("the first alerts", lambda: len(sent) == 2)
        for _ in range(999):
            store.add_audits([audit()])
        wait_for("the summaries", lambda: len(sent) == 4)
        time.sleep(1.5)  # a second period with nothing new: nothing more is sent
    finally:
        dispatcher.stop()
    assert sorted((name, m.summary) for name, m in sent) == [
        ("hook", False), ("hook", True), ("mail", False), ("mail", True),
    ]  # fmt: skip
    summary = next(m for _, m in sent if m.summary)
    assert summary.fields["count"] == "1000"
    assert "999 more like it" in summary.body
    assert store.list_audits()[0].count == 1000


def test_a_channel_no_profile_names_gets_nothing_and_the_outbox_says_why() -> None:
    store = MemoryStore()
    for name in ("mail", "hook"):
        store.add_channel(ChannelRecord(name, f"json://127.0.0.1:1/{name}", 0.0))
    profiles = "profiles: [{name: mail only, channels: [mail]}]"
    store.set_policy("alertProfiles", load_profiles(profiles).model_dump(mode="json"))
    sent: list[str] = []
    dispatcher = Dispatcher(store, "h", send=lambda c, m: sent.append(c.name), poll=0.05)
    store.add_audits([audit()])
    dispatcher.start()
    try:
        wait_for("the hook delivery skipped", lambda: store.list_deliveries("skipped"))
        wait_for("the mail alert", lambda: sent)
    finally:
        dispatcher.stop()
    assert sent == ["mail"]
