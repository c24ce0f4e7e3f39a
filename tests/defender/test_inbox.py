"""The inbox between the sensor threads and the defender's loop: never blocks a sensor,
drops past its bound and counts it, wakes the loop for urgent events, and counts what the
loop took (what a block's capture waits on)."""

from __future__ import annotations

import asyncio
import threading
import time

from garrison.defender.inbox import Inbox


def test_events_are_taken_oldest_first_and_counted():
    inbox: Inbox[int] = Inbox()
    for n in range(5):
        inbox.put(n)
    assert (len(inbox), inbox.received, inbox.taken) == (5, 5, 0)
    assert inbox.drain(limit=3) == [0, 1, 2]
    assert inbox.drain() == [3, 4]
    assert (len(inbox), inbox.taken) == (0, 5)


def test_past_its_bound_events_are_dropped_and_counted_not_waited_for():
    inbox: Inbox[int] = Inbox(maxlen=2)
    for n in range(4):
        inbox.put(n)
    assert (inbox.received, inbox.dropped) == (2, 2)
    assert inbox.drain() == [0, 1]


def test_an_urgent_event_from_another_thread_wakes_the_loop_at_once():
    async def scenario() -> float:
        inbox: Inbox[str] = Inbox()
        inbox.bind(asyncio.get_running_loop())
        threading.Timer(0.1, inbox.put_urgent, ["block"]).start()
        began = time.monotonic()
        await inbox.wait(30.0)
        assert inbox.drain() == ["block"]
        return time.monotonic() - began

    assert asyncio.run(scenario()) < 30.0  # woken, not timed out
