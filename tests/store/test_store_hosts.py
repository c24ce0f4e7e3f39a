"""Many hosts on one store, on SQLite, PostgreSQL and the in-memory fake alike: hosts enrolled
(again: a new certificate), revoked and heard from; one-time enrolment tokens spent once, also
by two hosts racing through two connections; each host's audit spool stored once even when a
batch comes again; model commands applied per host since its enrolment; blocks by host; the
models saved since a time; status documents by source prefix."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from garrison.errors import InvalidInput
from garrison.fleet.enroll import TokenRecord, TokenRefused, make_token, spend
from garrison.model import ModelCommand
from garrison.runtime.base import RestartPolicy
from garrison.store import BlockedContainer
from garrison.store.base import AuditBatch, HostRecord
from garrison.store.tokenbook import StoreTokenBook
from tests.store.stores import two_stores
from tests.store.test_store_contract import audit

# -- hosts ----------------------------------------------------------------------------------


def test_hosts_round_trip_listed_by_name(store) -> None:
    store.enrol_host(HostRecord("web-2", "1001", 10.0))
    store.enrol_host(HostRecord("db-1", "1002", 20.0, last_seen=25.0))
    assert store.get_host("db-1") == HostRecord("db-1", "1002", 20.0, None, 25.0)
    assert store.get_host("nobody") is None
    assert [h.name for h in store.list_hosts()] == ["db-1", "web-2"]
    with pytest.raises(InvalidInput):
        store.enrol_host(HostRecord("", "1003", 30.0))


def test_a_host_as_json_has_camel_case_keys() -> None:
    assert HostRecord("h", "77", 1.0, 2.0, 3.0).to_json() == {
        "name": "h", "serial": "77", "enrolled": 1.0, "revoked": 2.0, "lastSeen": 3.0,
    }  # fmt: skip


def test_a_host_enrolled_again_takes_its_new_serial_and_is_no_longer_revoked(store) -> None:
    big = str(2**158 + 1)  # a serial has up to 159 bits: kept as decimal text
    store.enrol_host(HostRecord("web", big, 10.0))
    store.host_seen("web", 15.0)
    assert store.revoke_host("web", 20.0)
    store.enrol_host(HostRecord("web", "42", 30.0))
    assert store.get_host("web") == HostRecord("web", "42", 30.0, None, 15.0), "seen kept"
    assert store.list_hosts() == [HostRecord("web", "42", 30.0, None, 15.0)]


def test_revoking_says_whether_the_host_exists_and_keeps_the_first_time(store) -> None:
    assert not store.revoke_host("web", 20.0)
    store.enrol_host(HostRecord("web", "1", 10.0))
    assert store.revoke_host("web", 20.0)
    assert store.revoke_host("web", 40.0)
    found = store.get_host("web")
    assert found is not None
    assert found.revoked == 20.0


def test_last_seen_only_moves_forward_and_an_unknown_host_is_ignored(store) -> None:
    store.enrol_host(HostRecord("web", "1", 10.0))
    store.host_seen("web", 50.0)
    store.host_seen("web", 40.0)
    assert store.get_host("web") == HostRecord("web", "1", 10.0, None, 50.0)
    store.host_seen("web", 60.0)
    assert store.get_host("web") == HostRecord("web", "1", 10.0, None, 60.0)
    store.host_seen("nobody", 70.0)
    assert store.get_host("nobody") is None


def test_delete_host_says_whether_there_was_one(store) -> None:
    store.enrol_host(HostRecord("web", "1", 10.0))
    assert store.delete_host("web")
    assert not store.delete_host("web")
    assert store.list_hosts() == []


# -- enrolment tokens -----------------------------------------------------------------------


def enrol_token(token_id: str, created: float = 100.0) -> TokenRecord:
    return TokenRecord(token_id, "ab" * 32, created, created + 600.0)


def test_enrol_tokens_round_trip_newest_first(store) -> None:
    for n, token_id in enumerate(["aaa", "ccc", "bbb"]):
        store.add_enrol_token(enrol_token(token_id, 100.0 + n))
    assert store.get_enrol_token("ccc") == enrol_token("ccc", 101.0)
    assert store.get_enrol_token("nope") is None
    assert [t.id for t in store.list_enrol_tokens()] == ["bbb", "ccc", "aaa"]
    assert store.delete_enrol_token("ccc")
    assert not store.delete_enrol_token("ccc")
    assert [t.id for t in store.list_enrol_tokens()] == ["bbb", "aaa"]


def test_a_second_enrol_token_of_one_id_is_refused_keeping_the_first(store) -> None:
    store.add_enrol_token(enrol_token("aaa"))
    with pytest.raises(InvalidInput, match="enrolment token aaa exists already"):
        store.add_enrol_token(enrol_token("aaa", 500.0))
    assert store.list_enrol_tokens() == [enrol_token("aaa")]


def test_an_enrol_token_is_marked_used_once(store) -> None:
    store.add_enrol_token(enrol_token("aaa"))
    assert not store.mark_enrol_token_used("nope", 200.0)
    assert store.mark_enrol_token_used("aaa", 200.0)
    assert not store.mark_enrol_token_used("aaa", 300.0)
    found = store.get_enrol_token("aaa")
    assert found is not None
    assert found.used == 200.0


def test_a_token_kept_in_the_store_is_spent_by_its_first_use_only(store) -> None:
    book = StoreTokenBook(store)
    text, record = make_token(600.0, now=1000.0)
    book.add(record)
    assert spend(book, text, 1010.0).used == 1010.0
    with pytest.raises(TokenRefused, match="used already"):
        spend(book, text, 1020.0)
    assert book.get(record.id) == TokenRecord(
        record.id, record.secret_hash, 1000.0, 1600.0, 1010.0, max_uses=1, uses=1
    )
    with pytest.raises(InvalidInput):
        book.add(record)


class RacingBook(StoreTokenBook):
    """A book whose readers wait for each other: both hosts have read the token unused
    before either marks it, so only the store's own check can stop the second."""

    def __init__(self, store, barrier: threading.Barrier) -> None:
        super().__init__(store)
        self.barrier = barrier

    def get(self, token_id: str) -> TokenRecord | None:
        found = super().get(token_id)
        self.barrier.wait(10)
        return found


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_hosts_spending_one_token_at_once_enrol_one(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with two_stores(kind, request, tmp_path) as (first, second):
        text, record = make_token(600.0, now=1000.0)
        first.add_enrol_token(record)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def present(store) -> None:
            try:
                spend(RacingBook(store, barrier), text, 1010.0)
                outcomes.append("enrolled")
            except TokenRefused as exc:
                outcomes.append(str(exc))

        threads = [threading.Thread(target=present, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == sorted(
            ["enrolled", f"enrolment token {record.id} refused: it was used already"]
        )


# -- spool marks ----------------------------------------------------------------------------


def test_a_spool_batch_sent_again_is_not_counted_twice(store) -> None:
    batch = [audit(count=2), audit(msg="other")]
    stored = store.add_audits(batch, spool_mark=5, spool="audits:web")
    assert [a.count for a in stored] == [2, 1]
    assert store.add_audits(batch, spool_mark=5, spool="audits:web") == []
    assert store.add_audits(batch, spool_mark=3, spool="audits:web") == [], "older still"
    assert sorted(a.count for a in store.list_audits()) == [1, 2]
    assert store.spool_mark("audits:web") == 5
    assert store.audit_totals() == {("processes", "alert"): 3}


def test_batches_of_several_spools_are_stored_together_each_once(store) -> None:
    web = AuditBatch("audits:web", 2, [audit(), audit(msg="web only")])
    db = AuditBatch("audits:db", 1, [audit(count=3)])  # the same finding as web's first
    store.add_audit_batches([web, db])
    assert sorted((a.msg, a.count) for a in store.list_audits()) == [
        (audit().msg, 4), ("web only", 1)]  # fmt: skip
    store.add_audit_batches([web, AuditBatch("audits:db", 2, [audit(msg="db next")])])
    assert sorted(a.msg for a in store.list_audits())[-1] == "web only"
    assert len(store.list_audits()) == 3, "web's batch again adds nothing, db's next is stored"
    assert (store.spool_mark("audits:web"), store.spool_mark("audits:db")) == (2, 2)


def test_each_spool_has_its_own_mark(store) -> None:
    store.add_audits([audit()], spool_mark=7, spool="audits:web")
    assert store.add_audits([audit()], spool_mark=2, spool="audits:db") != []
    assert store.add_audits([audit()], spool_mark=3)  # the default spool, "audits"
    assert (store.spool_mark("audits:web"), store.spool_mark("audits:db")) == (7, 2)
    assert store.spool_mark() == 3
    assert store.spool_mark("audits:new") == 0
    assert [a.count for a in store.list_audits()] == [3]
    assert store.add_audits([audit()], spool_mark=8, spool="audits:web")[0].count == 4
    assert store.add_audits([audit()])[0].count == 5, "without a mark: always stored"


# -- model commands per host ----------------------------------------------------------------


def test_each_host_applies_the_commands_queued_since_it_enrolled(store) -> None:
    old = store.add_model_command(ModelCommand("relearn", "p1", time=5.0))
    new = store.add_model_command(ModelCommand("extend", "p1", seconds=60.0, time=15.0))
    store.enrol_host(HostRecord("early", "1", 1.0))
    store.enrol_host(HostRecord("late", "2", 10.0))
    assert store.pending_model_commands("early") == [old, new]
    assert store.pending_model_commands("late") == [new], "no replay of older commands"
    assert store.pending_model_commands("nobody") == [], "a host not enrolled has none"
    store.finish_model_commands([new.id], host="late")
    store.finish_model_commands([new.id], host="late")  # applied twice: no error
    assert store.pending_model_commands("late") == []
    assert store.pending_model_commands("early") == [old, new], "done elsewhere: still due"
    assert store.pending_model_commands() == [old], "done once any host applied it"
    store.finish_model_commands([old.id, new.id, 9999], host="early")
    assert store.pending_model_commands("early") == []
    assert store.pending_model_commands() == []


def test_a_host_enrolled_again_gets_the_commands_queued_since(store) -> None:
    store.enrol_host(HostRecord("web", "1", 1.0))
    first = store.add_model_command(ModelCommand("relearn", "p1", time=5.0))
    store.finish_model_commands([first.id], host="web")
    second = store.add_model_command(ModelCommand("relearn", "p1", time=20.0))
    store.enrol_host(HostRecord("web", "2", 10.0))
    assert store.pending_model_commands("web") == [second]
    assert store.delete_host("web")
    store.enrol_host(HostRecord("web", "3", 1.0))
    assert store.pending_model_commands("web") == [first, second], "acks gone with the host"


def test_without_a_host_a_finished_command_is_done_as_before(store) -> None:
    first = store.add_model_command(ModelCommand("relearn", "p1", time=5.0))
    second = store.add_model_command(ModelCommand("learn-stop", "p2", time=6.0))
    store.finish_model_commands([first.id])
    store.finish_model_commands([])
    assert store.pending_model_commands() == [second]
    store.enrol_host(HostRecord("web", "1", 1.0))
    assert store.pending_model_commands("web") == [first, second]


# -- blocks, models, status -----------------------------------------------------------------


def blocked(container_id: str, host: str, when: float) -> BlockedContainer:
    return BlockedContainer(
        container_id, "web", "nginx", RestartPolicy("always"), None, when, host=host
    )


def test_blocks_carry_their_host(store) -> None:
    store.add_blocked(blocked("c1", "web", 10.0))
    store.add_blocked(blocked("c2", "db", 20.0))
    store.add_blocked(blocked("c3", "", 30.0))
    assert [b.container_id for b in store.list_blocked()] == ["c1", "c2", "c3"]
    assert store.list_blocked("db") == [blocked("c2", "db", 20.0)]
    assert store.list_blocked("") == [blocked("c3", "", 30.0)]
    assert store.list_blocked("nobody") == []
    store.add_blocked(blocked("c2", "web", 40.0))
    assert [b.container_id for b in store.list_blocked("web")] == ["c1", "c2"]


def test_a_block_as_json_names_its_host_and_reads_without_one() -> None:
    doc = blocked("c1", "web", 10.0).to_json()
    assert doc["host"] == "web"
    assert BlockedContainer.from_json(doc) == blocked("c1", "web", 10.0)
    del doc["host"]
    assert BlockedContainer.from_json(doc).host == ""


def test_models_since_are_those_saved_after_oldest_first(store) -> None:
    assert store.models_since(0.0) == []
    store.save_models([{"profileId": "p1", "n": 1}])
    time.sleep(0.01)
    store.save_models([{"profileId": "p2", "n": 1}])
    (t1, d1), (t2, d2) = store.models_since(0.0)
    assert (d1, d2) == ({"profileId": "p1", "n": 1}, {"profileId": "p2", "n": 1})
    assert t1 < t2 <= time.time()
    assert store.models_since(t1) == [(t2, d2)]
    assert store.models_since(t2) == []
    time.sleep(0.01)
    store.save_models([{"profileId": "p1", "n": 2}])
    assert [d for _, d in store.models_since(t1)] == [d2, {"profileId": "p1", "n": 2}]


def test_status_is_listed_by_source_prefix_taken_literally(store) -> None:
    for source in ("defender:web", "defender:db", "defender", "alerts", "defender:w_b"):
        store.set_status({"source": source}, source=source)
    store.set_status({"up": True}, source="defender:web")
    assert store.list_status("defender:") == [
        ("defender:db", {"source": "defender:db"}),
        ("defender:w_b", {"source": "defender:w_b"}),
        ("defender:web", {"up": True}),
    ]
    assert [s for s, _ in store.list_status("defender:w_")] == ["defender:w_b"]
    assert [s for s, _ in store.list_status("defender:%")] == []
    assert len(store.list_status("")) == 5


def test_the_sync_marks_move_with_each_policy_model_and_command(store) -> None:
    start = store.sync_marks()
    store.set_policy("runtime", {"rules": []})
    after_policy = store.sync_marks()
    assert after_policy.policies != start.policies
    assert after_policy[1:] == start[1:]
    time.sleep(0.01)  # a model's update time is the clock's
    store.save_models([{"profileId": "p1", "state": "learning"}])
    after_model = store.sync_marks()
    assert after_model.models > after_policy.models
    assert after_model.policies == after_policy.policies
    command = store.add_model_command(ModelCommand("relearn", "p1", time=5.0))
    assert store.sync_marks().commands == command.id != after_model.commands
