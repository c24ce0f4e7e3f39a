"""The tracker's bookkeeping, driven by the in-memory FakeRuntime (races made deterministic)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from garrison.errors import RuntimeUnavailable
from garrison.runtime import (
    Backoff,
    ContainerInfo,
    ContainerTracker,
    FakeRuntime,
    ListenerBase,
    RestartPolicy,
)
from tests.runtime.runtime_helpers import Recorder, eventually

FAST = Backoff(initial=0.01, cap=0.05)
Scenario = Callable[[FakeRuntime, ContainerTracker, Recorder], Awaitable[None]]


def play(scenario: Scenario, fake: FakeRuntime | None = None) -> None:
    async def main() -> None:
        runtime = fake or FakeRuntime()
        recorder = Recorder()
        tracker = ContainerTracker(runtime, [recorder], backoff=FAST)
        await tracker.start()
        try:
            await scenario(runtime, tracker, recorder)
        finally:
            await tracker.stop()

    asyncio.run(main())


def test_running_containers_are_adopted_at_start():
    fake = FakeRuntime()
    fake.run("a" * 64, name="old")

    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        assert set(tracker.containers()) == {"a" * 64}
        assert [i.name for i in rec.starts("a" * 64)] == ["old"]

    play(scenario, fake)


def test_start_exec_and_die_reach_listeners_in_order():
    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        fake.run("b1")
        await eventually(lambda: rec.starts("b1"), "the start of b1")
        fake.exec("b1", "/bin/sh -c id")
        fake.exit("b1")
        await eventually(lambda: rec.stops("b1"), "the stop of b1")
        assert [kind for kind, _ in rec.calls] == ["start", "exec", "stop"]
        assert rec.execs("b1") == ["/bin/sh -c id"]
        assert tracker.containers() == {}

    play(scenario)


def test_container_gone_between_event_and_inspect_is_treated_as_stopped():
    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        fake.run("c1")
        await eventually(lambda: rec.starts("c1"), "the start of c1")
        fake.vanish_on_inspect.add("c1")
        fake.emit("update", "c1")
        await eventually(lambda: rec.stops("c1"), "the stop of c1")
        assert tracker.stats.gone_on_inspect == 1
        fake.run("c2")  # the tracker still follows events
        await eventually(lambda: rec.starts("c2"), "the start of c2")

    play(scenario)


def test_restart_policy_update_is_reported_as_update():
    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        fake.run("d1")
        await eventually(lambda: rec.starts("d1"), "the start of d1")
        fake.set_restart_policy("d1", RestartPolicy("always"))
        await eventually(lambda: rec.updates("d1"), "the update of d1")
        assert rec.updates("d1")[0].restart_policy.name == "always"
        assert rec.stops("d1") == 0

    play(scenario)


def test_daemon_loss_reconciles_gone_new_and_restarted_containers():
    fake = FakeRuntime()
    fake.run("kept")
    fake.run("lost")

    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        old_pid = tracker.containers()["kept"].pid
        fake.go_down()  # "kept" gets a new pid, as with restart policy "always"
        fake.remove("lost")  # gone while the daemon was away: no event reaches the tracker
        await eventually(lambda: tracker.stats.failed_connects >= 2, "failed reconnects")
        fake.come_up()
        fake.run("new")
        await eventually(lambda: rec.starts("new"), "the start of the new container")
        await tracker.wait_synced()
        assert rec.stops("lost") == 1
        assert rec.stops("kept") == 1
        assert [i.pid != old_pid for i in rec.starts("kept")] == [False, True]
        assert set(tracker.containers()) == {"kept", "new"}
        assert tracker.stats.reconnects == 1
        assert tracker.stats.connected

    play(scenario, fake)


def test_a_failing_listener_is_counted_and_others_still_hear():
    class Broken(ListenerBase):
        def on_start(self, info: ContainerInfo) -> None:
            raise ValueError("listener bug")

    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        tracker.add_listener(Broken())
        tracker.add_listener(second := Recorder())
        fake.run("e1")
        await eventually(lambda: second.starts("e1"), "the start seen by the second listener")
        assert tracker.stats.listener_errors == 1

    play(scenario)


def test_start_without_runtime_raises_unless_told_to_wait():
    fake = FakeRuntime()
    fake.up = False

    async def main() -> None:
        with pytest.raises(RuntimeUnavailable):
            await ContainerTracker(fake).start()
        recorder = Recorder()
        tracker = ContainerTracker(fake, [recorder], backoff=FAST)
        await tracker.start(wait_for_runtime=True)
        try:
            fake.run("late")
            fake.come_up()
            await eventually(lambda: recorder.starts("late"), "adoption once the runtime is up")
        finally:
            await tracker.stop()

    asyncio.run(main())


def test_a_container_that_exits_before_its_inspect_is_never_reported():
    async def scenario(fake: FakeRuntime, tracker: ContainerTracker, rec: Recorder) -> None:
        fake.run("short")
        fake.exit("short")  # start and die are queued; the inspect for "start" sees it exited
        fake.run("marker")
        await eventually(lambda: rec.starts("marker"), "the start of the marker container")
        assert rec.starts("short") == []
        assert rec.stops("short") == 0

    play(scenario)


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(initial=0.2, cap=5.0)
    assert [backoff.delay(n) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
