"""Audit retention as ``garrison run`` applies it: the console's rules on its store, on a
thread that prunes at start and then every interval, and survives a store error."""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.audit.retention import MAX_COUNT, Retention
from garrison.console import Console
from garrison.console.pruner import AuditPruner
from garrison.errors import InvalidInput, StoreError
from garrison.model import FakeClock

DAY = 86400.0


def audit(n: int, when: float) -> Audit:
    return Audit(when, "h", "processes", "unexpectedProcess", "alert", f"/bin/p{n} launched")


@pytest.mark.parametrize("max_age", [0.0, -1.0, math.nan, math.inf])
def test_a_retention_that_is_not_a_positive_time_is_refused(max_age):
    with pytest.raises(InvalidInput, match="audit retention must be positive"):
        Retention(max_age=max_age)


@pytest.mark.parametrize("max_count", [-1, MAX_COUNT + 1])
def test_a_count_cap_out_of_range_is_refused(max_count):
    with pytest.raises(InvalidInput, match=f"keep must be 0 \\(no cap\\) to {MAX_COUNT:,}"):
        Retention(max_count=max_count)


def test_the_console_prunes_by_its_own_retention_unless_told_another(tmp_path):
    clock = FakeClock()
    now = clock()
    console = Console.open(tmp_path / "data", clock=clock, retention=Retention(30 * DAY, 0))
    console.store.add_audits([audit(1, now - 40 * DAY), audit(2, now - 20 * DAY),
                              audit(3, now - 10 * DAY), audit(4, now)])  # fmt: skip
    assert console.prune_audits(now) == 1
    assert console.prune_audits(now, Retention(15 * DAY, 0)) == 1
    assert console.prune_audits(now, Retention(365 * DAY, 1)) == 1
    assert [a.msg for a in console.list_audits(AuditFilter(limit=0))] == ["/bin/p4 launched"]
    console.close()


def test_the_pruner_prunes_at_start_without_waiting_an_interval_and_stops_at_once(tmp_path):
    console = Console.open(tmp_path / "data", retention=Retention(DAY, 0))
    console.store.add_audits([audit(1, time.time() - 2 * DAY), audit(2, time.time())])
    pruner = console.audit_pruner(interval=3600.0).start()
    deadline = time.monotonic() + 30
    while pruner.deleted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    pruner.stop()
    assert time.monotonic() - started < 10.0, "stopped at once, not after its hour's interval"
    assert pruner.deleted == 1
    assert len(console.list_audits()) == 1
    console.close()


def test_a_store_error_is_logged_and_the_next_interval_tries_again(caplog):
    results = [StoreError("store /x: database is locked"), 3]
    done = threading.Event()

    def prune(_now):
        result = results.pop(0) if results else 0
        if not results:
            done.set()
        if isinstance(result, StoreError):
            raise result
        return result

    with caplog.at_level(logging.INFO, logger="garrison.console.pruner"):
        pruner = AuditPruner(prune, interval=0.01).start()
        assert done.wait(30)
        pruner.stop()
    assert (pruner.failures, pruner.deleted) == (1, 3)
    assert "audit retention: store /x: database is locked; trying again" in caplog.text
    assert "audit retention: 3 audits deleted" in caplog.text
