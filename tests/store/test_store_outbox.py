"""The alerting outbox, on SQLite, PostgreSQL and the in-memory fake alike: an audit
stored new makes one pending delivery per channel in the same transaction; a finding seen
again does not; deliveries are sent once, retried until then, and go with their channel."""

from __future__ import annotations

import pytest

from garrison.errors import InvalidInput
from garrison.runtime.base import RestartPolicy
from garrison.store import BlockedContainer
from garrison.store.base import ChannelRecord
from tests.conftest import made_store
from tests.store.test_store_contract import audit


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request, tmp_path):
    with made_store(request, tmp_path) as made:
        made.add_channel(ChannelRecord("mail", "mailto://u:p@127.0.0.1:2525", 1.0))
        made.add_channel(ChannelRecord("hook", "json://127.0.0.1:8080/x", 2.0))
        yield made


def test_a_new_audit_is_one_pending_delivery_per_channel_and_seen_again_adds_none(store):
    first = store.add_audits([audit()])[0]
    store.add_audits([audit(time=2000.0, count=5)])
    pending = store.list_deliveries("pending")
    assert sorted(d.channel for d in pending) == ["hook", "mail"]
    assert {d.audit.id for d in pending} == {first.id}
    assert all(d.audit.count == 6 for d in pending), "the audit as it is now"
    assert [d.channel for d in store.due_deliveries("mail", 1e12, 10)] == ["mail"]


def test_a_finding_twice_in_one_batch_is_one_delivery_per_channel(store):
    first, _ = store.add_audits([audit(), audit(time=2000.0)])
    pending = store.list_deliveries("pending")
    assert sorted(d.channel for d in pending) == ["hook", "mail"]
    assert {d.audit.id for d in pending} == {first.id}


def test_a_block_audit_is_forwarded_like_any_other(store):
    record = BlockedContainer("c" * 64, "web", "nginx", RestartPolicy("always"), None, 1.0)
    stored = store.begin_block(record, audit(effect="block"))
    assert {d.audit.id for d in store.list_deliveries()} == {stored.audit_id}


def test_a_delivery_is_sent_once_and_retried_until_then(store):
    store.add_audits([audit()])
    (mail,) = store.due_deliveries("mail", 1e12, 10)
    store.retry_later(mail.id, next_try=5e12, error="connection refused")
    assert store.due_deliveries("mail", 1e12, 10) == []
    (later,) = store.due_deliveries("mail", 6e12, 10)
    assert (later.attempts, later.error) == (1, "connection refused")
    store.delivered(mail.id, when=7.0)
    assert store.due_deliveries("mail", 1e13, 10) == []
    (sent,) = store.list_deliveries("sent")
    assert (sent.state, sent.sent, sent.attempts, sent.error) == ("sent", 7.0, 2, "")
    store.retry_later(mail.id, next_try=1.0, error="late failure")  # no effect once sent
    assert store.list_deliveries("sent")[0].state == "sent"


def test_a_removed_channel_takes_its_pending_deliveries_and_a_name_is_unique(store):
    store.add_audits([audit()])
    assert store.remove_channel("mail")
    assert not store.remove_channel("mail")
    assert [d.channel for d in store.list_deliveries()] == ["hook"]
    assert [c.name for c in store.list_channels()] == ["hook"]
    with pytest.raises(InvalidInput, match="channel name 'hook'"):
        store.add_channel(ChannelRecord("hook", "json://127.0.0.1:1/y", 3.0))
    store.add_audits([audit(msg="another finding")])
    assert len(store.list_deliveries("pending")) == 2


def test_audits_stored_before_a_channel_existed_are_not_sent_to_it(store):
    store.add_audits([audit()])
    store.add_channel(ChannelRecord("late", "json://127.0.0.1:9/z", 3.0))
    assert store.due_deliveries("late", 1e12, 10) == []


def test_a_first_alert_sent_starts_summaries_of_what_is_seen_after_it(store):
    store.add_audits([audit()])
    (first,) = store.due_deliveries("mail", 1e12, 10)
    store.delivered(first.id, when=100.0, period=10.0)
    store.add_audits([audit(count=999)])
    assert store.make_summaries("mail", 105.0) == 0, "the period is not over"
    assert store.make_summaries("mail", 110.0) == 1
    (summary,) = store.due_deliveries("mail", 1e12, 10)
    assert (summary.folded, summary.audit.count) == (999, 1000)
    assert store.make_summaries("mail", 1e6) == 0, "nothing more was seen"
    store.add_audits([audit(count=5)])
    assert store.make_summaries("mail", 115.0) == 0, "a new period started at 110"
    assert store.make_summaries("mail", 120.0) == 1
    assert store.due_deliveries("hook", 1e12, 10)[0].folded == 0, "hook never sent: no summary"


def test_a_skipped_delivery_is_not_sent_and_starts_no_summary(store):
    store.add_audits([audit()])
    (hook,) = store.due_deliveries("hook", 1e12, 10)
    store.skip(hook.id, "no alert profile sends it to this channel")
    assert store.due_deliveries("hook", 1e12, 10) == []
    store.add_audits([audit(count=3)])
    assert store.make_summaries("hook", 1e12) == 0
    (skipped,) = store.list_deliveries("skipped")
    assert skipped.error == "no alert profile sends it to this channel"


def test_totals_count_occurrences_by_type_and_effect_and_deliveries_by_state(store):
    store.add_audits([audit(), audit(time=2000.0, count=4)])
    store.add_audits([audit(msg="other", effect="prevent")])
    (mail, _other) = store.due_deliveries("mail", 1e12, 10)
    store.delivered(mail.id, when=7.0)
    totals = store.audit_totals()
    assert sum(totals.values()) == 6
    assert {effect for (_type, effect) in totals} == {"alert", "prevent"}
    assert store.outbox_totals() == {("mail", "sent"): 1, ("mail", "pending"): 1,
                                     ("hook", "pending"): 2}  # fmt: skip
