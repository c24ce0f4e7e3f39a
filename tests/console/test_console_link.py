"""The in-process link: reports never wait on the store, and close() loses none of them."""

from __future__ import annotations

import math
import threading

import pytest

from garrison.audit.record import Audit
from garrison.console import InProcessLink
from garrison.errors import StoreError
from garrison.store import MemoryStore, SQLiteStore


def audit(n: int, time: float = 1.0) -> Audit:
    return Audit(time, "h", "processes", "unexpectedProcess", "alert", f"/bin/p{n} launched")


@pytest.fixture
def store(tmp_path):
    made = SQLiteStore.in_dir(tmp_path)
    yield made
    made.close()


def test_close_stores_every_reported_audit_merged_by_key(store):
    link = InProcessLink(store, flush_interval=60)
    for i in range(1000):
        link.report_audit(audit(i % 10, time=float(i)))
    link.close()
    audits = store.list_audits()
    assert sorted(a.count for a in audits) == [100] * 10
    assert max(a.time for a in audits) == 999.0
    assert link.stats.written_audits == 10


def test_flush_waits_for_the_writer(store):
    link = InProcessLink(store, flush_interval=60)
    link.report_audit(audit(1))
    link.save_models([{"profileId": "p1", "n": 1}])
    link.save_models([{"profileId": "p1", "n": 2}])
    link.report_status({"events": 5})
    assert link.flush(timeout=30)
    assert [a.count for a in store.list_audits()] == [1]
    assert store.load_models() == [{"profileId": "p1", "n": 2}]
    assert store.get_status() == {"events": 5}
    link.delete_models(["p1"])
    assert link.flush(timeout=30)
    assert store.load_models() == []
    link.close()


def test_reports_from_many_threads_are_all_counted(store):
    link = InProcessLink(store, flush_interval=0.01)

    def report() -> None:
        for _ in range(500):
            link.report_audit(audit(1))

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    link.close()
    assert [a.count for a in store.list_audits()] == [2000]


def test_a_bad_model_document_is_dropped_and_the_others_are_saved(store):
    link = InProcessLink(store, flush_interval=60)
    link.save_models([{"profileId": "good"}, {"profileId": "bad", "x": math.nan}])
    link.report_audit(audit(1))
    link.close()
    assert [d["profileId"] for d in store.load_models()] == ["good"]
    assert len(store.list_audits()) == 1
    assert link.stats.write_errors == 1


class StoreFailingOnce(MemoryStore):
    """A store whose database is unavailable for one write (a locked or full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def add_audits(self, audits, spool_mark=None):
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        return super().add_audits(audits, spool_mark)


def test_a_failed_write_is_retried_not_lost():
    store = StoreFailingOnce()
    link = InProcessLink(store, flush_interval=0.01)
    link.report_audit(audit(1))
    link.report_audit(audit(1))
    link.close()
    assert [a.count for a in store.list_audits()] == [2]
    assert link.stats.write_errors == 1


def test_a_full_buffer_drops_and_counts_new_findings_only():
    link = InProcessLink(MemoryStore(), flush_interval=60)
    link.max_pending = 2
    for n in (1, 2, 3, 1):
        link.report_audit(audit(n))
    assert link.stats.dropped_audits == 1
    link.close()
    assert sorted(a.msg for a in link.store.list_audits()) == [
        "/bin/p1 launched",
        "/bin/p2 launched",
    ]


def test_reports_after_close_are_refused(store):
    link = InProcessLink(store)
    link.close()
    with pytest.raises(StoreError, match="closed"):
        link.report_audit(audit(1))
    link.close()


class StoreAlwaysFailing(MemoryStore):
    def add_audits(self, audits):
        raise StoreError("disk full")


def test_close_says_how_many_audits_it_could_not_store():
    link = InProcessLink(StoreAlwaysFailing(), flush_interval=0.01)
    link.report_audit(audit(1))
    link.report_audit(audit(2))
    with pytest.raises(StoreError, match="2 audit"):
        link.close(timeout=0.2)


def test_the_link_records_its_host_among_those_that_saved_each_model(store):
    link = InProcessLink(store, flush_interval=60, host="node-7")
    link.save_models([{"profileId": "good"}, {"profileId": "bad", "x": math.nan}])
    assert link.flush(timeout=30)
    assert [h.host for h in store.model_hosts("good")] == ["node-7"]
    assert store.model_host_counts() == {"good": 1}, "none for the model not saved"
    link.close()
    anonymous = InProcessLink(store, flush_interval=60)  # no host name: none recorded
    anonymous.save_models([{"profileId": "other"}])
    anonymous.close()
    assert store.model_hosts("other") == []


class StoreRecordingHostsFailingOnce(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def record_model_hosts(self, host, profile_ids, when):
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        super().record_model_hosts(host, profile_ids, when)


def test_a_failed_host_record_is_retried_without_saving_the_model_again():
    store = StoreRecordingHostsFailingOnce()
    link = InProcessLink(store, flush_interval=0.01, host="node-7")
    link.save_models([{"profileId": "p1"}])
    link.close()
    assert [h.host for h in store.model_hosts("p1")] == ["node-7"]
    assert link.stats.write_errors == 1
