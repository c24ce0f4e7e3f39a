"""The verdict latency histogram: fixed buckets, cumulative as Prometheus wants them, sum and
count; and on a real fanotify group, one observation per permission answer written — a
notification group, which no process waits on, records nothing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from garrison.sensors import fanotify as fan
from garrison.sensors.latency import BOUNDS_SECONDS, LatencyHistogram, upper_bound


def test_buckets_are_cumulative_inclusive_of_their_bound_with_sum_and_count() -> None:
    h = LatencyHistogram()
    for ns in (10_000, 50_000, 50_001, 3_000_000, 2_000_000_000):  # 10 us … 2 s
        h.observe(ns)
    snap = h.snapshot()
    assert snap["le"] == list(BOUNDS_SECONDS)
    by_bound = dict(zip(snap["le"], snap["buckets"], strict=True))
    assert by_bound[50e-6] == 2  # 10 us and exactly 50 us (le is inclusive)
    assert by_bound[100e-6] == 3
    assert by_bound[2.5e-3] == 3
    assert by_bound[5e-3] == 4
    assert by_bound[1.0] == 4  # 2 s is only in +Inf
    assert snap["count"] == 5
    assert snap["buckets"] == sorted(snap["buckets"])
    assert abs(snap["sum"] - 2.003110001) < 1e-9


def test_an_empty_histogram_reads_zero_everywhere_and_has_no_quantile() -> None:
    snap = LatencyHistogram().snapshot()
    assert (snap["count"], snap["sum"], set(snap["buckets"])) == (0, 0.0, {0})
    assert upper_bound(snap, 0.5) is None


def test_a_quantile_is_the_bound_of_the_first_bucket_that_holds_it() -> None:
    h = LatencyHistogram()
    for _ in range(98):
        h.observe(80_000)  # under 100 us
    h.observe(4_000_000)  # under 5 ms
    h.observe(3_000_000_000)  # above every bound
    snap = h.snapshot()
    assert upper_bound(snap, 0.5) == 100e-6
    assert upper_bound(snap, 0.99) == 5e-3
    assert upper_bound(snap, 1.0) == float("inf")


def test_a_real_permission_answer_is_observed_once_and_a_notification_never(
    tmp_path: Path,
) -> None:
    target = tmp_path / "guarded"
    target.write_text("x")
    latency, notified = LatencyHistogram(), LatencyHistogram()
    perm = fan.FanotifyGroup(fan.FAN_CLASS_CONTENT, latency=latency)
    notif = fan.FanotifyGroup(fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK, latency=notified)
    try:
        perm.mark(fan.FAN_MARK_ADD, fan.FAN_OPEN_PERM, str(target))
        notif.mark(fan.FAN_MARK_ADD, fan.FAN_OPEN, str(target))
        opener = threading.Thread(target=target.read_text)  # waits for our answer
        opener.start()
        [event] = perm.read()
        assert event.is_permission
        assert latency.snapshot()["count"] == 0, "read, not answered yet: nothing counted"
        perm.respond(event.fd, fan.FAN_ALLOW)
        os.close(event.fd)
        opener.join(10)
        assert not opener.is_alive()
        for raw in notif.read():
            os.close(raw.fd)
    finally:
        perm.close()
        notif.close()
    snap = latency.snapshot()
    assert snap["count"] == 1
    assert snap["sum"] > 0
    assert notified.snapshot()["count"] == 0
