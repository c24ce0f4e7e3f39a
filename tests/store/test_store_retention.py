"""Audit retention, on the real SQLite file and on the in-memory fake alike: the oldest go
first, by age and by count; an audit not yet forwarded to a channel stays, as does the one a
blocked container names; a pruned audit's deliveries go with it."""

from __future__ import annotations

from garrison.audit.query import AuditFilter
from garrison.runtime.base import RestartPolicy
from garrison.store import BlockedContainer
from garrison.store.base import ChannelRecord
from tests.store.test_store_contract import audit


def add(store, *times):
    """One audit per time, stored in that order (ids rising)."""
    return [store.add_audits([audit(time=t, msg=f"m{t:g}")])[0] for t in times]


def left(store):
    return sorted(int(a.time) for a in store.list_audits(AuditFilter(limit=0)))


def send_all(store, channel="mail"):
    for delivery in store.due_deliveries(channel, 1e12, 1000):
        store.delivered(delivery.id, when=1.0)


def test_audits_last_seen_before_the_cutoff_are_deleted_and_counted(store):
    add(store, 10, 20, 30, 40)
    assert store.prune_audits(before=30.0, keep=0) == 2
    assert left(store) == [30, 40]
    assert store.prune_audits(before=30.0, keep=0) == 0


def test_an_audit_seen_again_is_as_old_as_its_last_occurrence(store):
    add(store, 10, 20, 30)
    store.add_audits([audit(time=35.0, msg="m10")])  # m10 again: its time moves to 35
    assert store.prune_audits(before=30.0, keep=0) == 1
    assert left(store) == [30, 35]


def test_the_count_cap_keeps_the_newest_and_deletes_the_oldest_first(store):
    add(store, 40, 10, 30, 20, 50)  # stored out of time order: time decides, not id
    assert store.prune_audits(before=None, keep=3) == 2
    assert left(store) == [30, 40, 50]
    assert store.prune_audits(before=None, keep=0) == 0, "0: no cap"
    assert store.prune_audits(before=None, keep=3) == 0


def test_age_and_count_apply_together(store):
    add(store, 10, 20, 30, 40, 50)
    assert store.prune_audits(before=25.0, keep=2) == 3
    assert left(store) == [40, 50]


def test_an_audit_not_yet_forwarded_is_never_pruned(store):
    add(store, 10, 11)  # stored before there was a channel: owed to none
    store.add_channel(ChannelRecord("mail", "mailto://u:p@127.0.0.1:2525", 1.0))
    add(store, 12, 50)  # each owed to the channel: a pending delivery
    assert store.prune_audits(before=30.0, keep=0) == 2
    assert left(store) == [12, 50]
    assert store.prune_audits(before=None, keep=1) == 0, "the cap spares it too"
    send_all(store)
    assert store.prune_audits(before=30.0, keep=0) == 1, "sent: now it goes"
    assert left(store) == [50]


def test_a_pruned_audit_takes_its_deliveries_with_it(store):
    store.add_channel(ChannelRecord("mail", "mailto://u:p@127.0.0.1:2525", 1.0))
    old, new = add(store, 10, 50)
    send_all(store)
    delivery = next(d for d in store.list_deliveries() if d.audit.id == old.id)
    store.skip(delivery.id, "no profile")
    assert store.prune_audits(before=30.0, keep=0) == 1
    assert {d.audit.id for d in store.list_deliveries()} == {new.id}
    assert store.outbox_totals() == {("mail", "sent"): 1}


def test_the_audit_a_blocked_container_names_stays(store):
    intent = BlockedContainer("c9", "web", "nginx", RestartPolicy("always"), None, 10.0)
    store.begin_block(intent, audit(time=10.0, effect="block", containerId="c9"))
    add(store, 20, 50)
    assert store.prune_audits(before=30.0, keep=0) == 1
    assert left(store) == [10, 50]
    store.remove_blocked("c9")
    assert store.prune_audits(before=30.0, keep=0) == 1


def test_the_audit_stored_last_stays_so_its_id_is_never_given_again(store):
    first, last = add(store, 50, 10)  # the last stored is the oldest
    assert store.prune_audits(before=30.0, keep=0) == 0
    assert store.prune_audits(before=None, keep=1) == 0
    third = add(store, 60)[0]
    assert third.id is not None
    assert last.id is not None
    assert third.id > last.id > (first.id or 0)
    assert store.prune_audits(before=30.0, keep=0) == 1


def test_a_finding_pruned_then_seen_again_is_a_new_audit(store):
    old = add(store, 10)[0]
    add(store, 50)
    assert store.prune_audits(before=30.0, keep=0) == 1
    store.add_channel(ChannelRecord("mail", "mailto://u:p@127.0.0.1:2525", 1.0))
    again = add(store, 10)[0]
    assert (again.count, again.id != old.id) == (1, True)
    assert [d.audit.id for d in store.list_deliveries("pending")] == [again.id]


def test_the_audit_totals_count_pruned_occurrences_so_metrics_never_go_down(store):
    store.add_audits([
        audit(time=10.0, msg="a", count=4),
        audit(time=11.0, msg="b", count=2),
        audit(time=12.0, msg="c", effect="prevent"),
        audit(time=50.0, msg="d"),
    ])  # fmt: skip
    before = store.audit_totals()
    assert store.prune_audits(before=30.0, keep=0) == 3
    assert before == {("processes", "alert"): 7, ("processes", "prevent"): 1}
    assert store.audit_totals() == before
    store.add_audits([audit(time=60.0, msg="a", count=5)])  # a new audit now: counted on top
    assert store.audit_totals()["processes", "alert"] == 12
