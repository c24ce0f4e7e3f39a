"""The SQLite store's audit queries and retention on a real file: a pruned audit leaves no row
naming it in any table, stores made before the retention indexes get them, pruning goes in
batches, and an export holds a batch of rows rather than all of them."""

from __future__ import annotations

import tracemalloc

import sqlalchemy as sa

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.store import SQLiteStore, schema
from garrison.store.base import ChannelRecord
from garrison.store.sql import PRUNE_BATCH
from garrison.store.sql_audits import DEPENDENTS


def audit(n: int, time: float) -> Audit:
    return Audit(time, "h", "processes", "unexpectedProcess", "alert", f"/bin/p{n} launched",
                 command=f"p{n} --verbose --output /tmp/out{n}.txt")  # fmt: skip


def rows_naming(store: SQLiteStore, audit_id: int) -> dict[str, int]:
    with store._engine.connect() as conn:
        return {
            table.name: conn.execute(
                sa.select(sa.func.count()).where(table.c.audit_id == audit_id)
            ).scalar_one()
            for table in schema.metadata.sorted_tables
            if "audit_id" in table.c
        }


def test_every_table_with_an_audit_id_is_one_retention_cleans():
    naming = {t.name for t in schema.metadata.sorted_tables if "audit_id" in t.c}
    assert naming == {t.name for t in DEPENDENTS}


def test_a_pruned_audit_leaves_no_row_that_names_it(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    store.add_channel(ChannelRecord("mail", "mailto://u:p@127.0.0.1:2525", 1.0))
    old = store.add_audits([audit(1, 10.0)])[0]
    store.add_audits([audit(2, 50.0)])
    for delivery in store.due_deliveries("mail", 1e12, 10):
        store.delivered(delivery.id, when=1.0)  # sent, and a summary mark made
    with store._engine.begin() as conn:
        incident = conn.execute(schema.incidents.insert().values(
            container_id="c", anchor="a", state="open", last=10.0, doc="{}"
        )).inserted_primary_key[0]  # fmt: skip
        conn.execute(schema.incident_audits.insert().values(
            incident_id=incident, audit_id=old.id, time=10.0
        ))  # fmt: skip
    assert old.id is not None
    assert all(rows_naming(store, old.id).values()), "every dependent table has a row"
    assert store.prune_audits(before=30.0, keep=0) == 1
    assert set(rows_naming(store, old.id).values()) == {0}
    store.close()


def test_pruning_more_than_a_batch_deletes_them_all_oldest_first(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    total = 2 * PRUNE_BATCH + 500
    store.add_audits([audit(n, float(n)) for n in range(total)])
    assert store.prune_audits(before=None, keep=300) == total - 300
    kept = store.list_audits(AuditFilter(limit=0))
    assert [a.time for a in kept] == [float(n) for n in reversed(range(total - 300, total))]
    store.close()


def test_an_export_holds_a_batch_of_rows_not_the_whole_list(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    store.add_audits([audit(n, float(n)) for n in range(5000)])
    query = AuditFilter(limit=0)

    def peak(read) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streamed = peak(lambda: sum(1 for _ in store.iter_audits(query)))
    listed = peak(lambda: store.list_audits(query))
    assert streamed * 4 < listed, (streamed, listed)
    store.close()
