"""Hosts' audit batches written together (``garrison.fleet.batches``): every batch of many
threads is stored once, and a batch the store refuses fails alone."""

from __future__ import annotations

import math
import threading

import pytest

from garrison.errors import InvalidInput
from garrison.fleet.batches import BatchWriter
from garrison.store.base import AuditBatch
from tests.conftest import made_store
from tests.store.test_store_contract import audit


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path):
    with made_store(request, tmp_path) as made:
        yield made


def test_batches_written_by_many_threads_at_once_are_each_stored_once(store) -> None:
    writer = BatchWriter(store)
    batches = [
        AuditBatch(f"audits:h{h}", 1, [audit(msg=f"h{h} {n}") for n in range(20)])
        for h in range(30)
    ]
    threads = [threading.Thread(target=writer.write, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    writer.write(batches[0])  # sent again: nothing more
    assert len(store.list_audits(limit_all())) == 600
    assert all(store.spool_mark(f"audits:h{h}") == 1 for h in range(30))


def test_a_batch_the_store_refuses_fails_alone(store) -> None:
    writer = BatchWriter(store)
    bad = AuditBatch("audits:bad", 1, [audit(time=math.inf)])
    good = [AuditBatch(f"audits:g{g}", 1, [audit(msg=f"g{g}")]) for g in range(5)]
    errors: list[Exception] = []

    def write(batch: AuditBatch) -> None:
        try:
            writer.write(batch)
        except InvalidInput as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in [*good[:2], bad, *good[2:]]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1
    assert "bad time" in str(errors[0])
    assert sorted(a.msg for a in store.list_audits()) == [f"g{g}" for g in range(5)]
    assert store.spool_mark("audits:bad") == 0


def limit_all():
    from garrison.audit.query import AuditFilter  # noqa: PLC0415

    return AuditFilter(limit=0)
