"""The defender's book of models: containers map to models, commands and time move them."""

from __future__ import annotations

from garrison.model import FakeClock, LearningConfig, ModelBook, ModelCommand, State
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import ProcessEvent


def container(cid, image="busybox:latest", image_id="sha256:" + "11" * 32):
    return ContainerInfo(cid, f"name-{cid}", image, image_id, running=True, cmd=("sh",))


def exec_(cid, path):
    return ProcessEvent(cid, 5, 1, path, (path,), 0, "root", "/bin/sh", 0.0)


def make_book(clock, **config):
    return ModelBook(clock=clock, config=LearningConfig(learning_period=10, **config))


def test_containers_of_one_image_share_one_model():
    book = make_book(FakeClock())
    first = book.container_started(container("a"))
    second = book.container_started(container("b"))
    assert first is second
    assert book.for_container("a") is book.for_container("b") is first
    assert len(book) == 1
    assert first.static.cmd == ("sh",)
    book.container_stopped("a")
    assert book.for_container("a") is None
    assert first.life.running == {"b"}


def test_changed_returns_each_change_once_and_running_learners_every_time():
    clock = FakeClock()
    book = make_book(clock)
    model = book.container_started(container("a"))
    assert [d["profileId"] for d in book.changed()] == [model.profile_id]
    assert len(book.changed()) == 1  # learning with a container running: time moves on
    clock.advance(10)
    book.tick()
    assert book.changed()[0]["state"] == "active"
    assert book.changed() == []


def test_a_model_that_turned_active_on_the_hot_path_is_saved_as_active():
    clock = FakeClock()
    book = make_book(clock)
    model = book.container_started(container("a"))
    book.changed()
    clock.advance(11)
    assert not model.is_learning()  # the verdict path ends learning, before any tick
    docs = book.changed()
    assert [d["state"] for d in docs] == ["active"]
    assert book.changed() == []


def test_commands_reach_the_model_they_name():
    clock = FakeClock()
    book = make_book(clock)
    model = book.container_started(container("a"))
    clock.advance(10)
    book.tick()
    assert book.apply(ModelCommand("learn-start", model.profile_id))
    model.observe_process(exec_("a", "/bin/ls"), container("a"), "h")
    assert book.apply(ModelCommand("learn-stop", model.profile_id))
    assert model.state is State.ACTIVE
    assert model.knows_process("/bin/ls")
    assert book.apply(ModelCommand("extend", model.profile_id, seconds=5))
    assert model.is_learning()
    assert book.apply(ModelCommand("relearn", model.profile_id))
    assert not model.knows_process("/bin/ls")
    assert not book.apply(ModelCommand("relearn", "sha256:unknown"))


def test_expired_models_are_removed_and_reported():
    clock = FakeClock()
    book = make_book(clock, archive_after=5, retention=50)
    model = book.container_started(container("a"))
    book.container_stopped("a")
    clock.advance(5)
    assert book.tick() == []
    assert model.state is State.ARCHIVED
    clock.advance(50)
    assert book.tick() == [model.profile_id]
    assert book.get(model.profile_id) is None


def test_stored_models_load_back_and_broken_ones_are_skipped():
    clock = FakeClock()
    book = make_book(clock)
    model = book.container_started(container("a"))
    model.observe_process(exec_("a", "/bin/ls"), container("a"), "h")
    docs = book.changed()
    again = make_book(clock)
    errors = again.load([*docs, {"profileId": "broken", "v": 1}])
    assert len(errors) == 1
    assert "broken" in str(errors[0])
    loaded = again.get(model.profile_id)
    assert loaded is not None
    assert loaded.knows_process("/bin/ls")
    assert again.changed() == []
    assert again.container_started(container("b")) is loaded
