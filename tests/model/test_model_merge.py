"""One image's model learned on several hosts: merging two documents keeps what each learned,
settles whatever the order (idempotent, commutative on what was learned), lets a user's
command win over what was learned before it, and a host takes in what others learned without
losing its own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from garrison.model.book import ModelBook
from garrison.model.commands import ModelCommand, apply
from garrison.model.lifecycle import LearningConfig, State
from garrison.model.merge import merge_contents, merge_docs
from garrison.model.runtime_model import RuntimeModel
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import NetEvent, ProcessEvent

IMAGE = ContainerInfo("c1" + "0" * 62, "web", "nginx:1", "sha256:" + "ab" * 32)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def host_model(paths: list[str], ports: list[int], clock: Clock) -> RuntimeModel:
    """A model as one host learned it: its containers ran ``paths`` and listened on ``ports``."""
    book = ModelBook(clock=clock, config=LearningConfig(learning_period=60.0))
    model = book.container_started(IMAGE)
    for path in paths:
        event = ProcessEvent(IMAGE.id, 7, 1, path, (path,), 0, "root", "/bin/sh", clock())
        model.observe_process(event, IMAGE, "h")
    for port in ports:
        model.observe_net(
            NetEvent(IMAGE.id, "listen", "tcp", "0.0.0.0", port, time=clock()), IMAGE, "h"
        )
    return model


def learned(doc: dict) -> tuple[set[str], set[int]]:
    return {p["path"] for p in doc["processes"]}, {p["port"] for p in doc["listening"]}


def test_two_hosts_learning_one_image_make_one_model_with_both() -> None:
    clock = Clock()
    a = host_model(["/usr/sbin/nginx"], [80], clock).to_doc()
    b = host_model(["/usr/bin/curl"], [443], clock).to_doc()
    merged = merge_docs(a, b)
    assert learned(merged) == ({"/usr/sbin/nginx", "/usr/bin/curl"}, {80, 443})
    assert learned(merge_docs(merged, a)) == learned(merged), "a host's own again: no change"
    assert merge_docs(merged, merged) == merged


paths = st.lists(st.sampled_from(["/bin/a", "/bin/b", "/bin/c", "/usr/bin/d"]), max_size=4)
ports = st.lists(st.integers(1, 5), max_size=3)


@given(st.lists(st.tuples(paths, ports), min_size=3, max_size=3))
def test_the_merge_settles_whatever_the_order(hosts) -> None:
    clock = Clock()
    a, b, c = (host_model(p, q, clock).to_doc() for p, q in hosts)
    assert merge_contents(a, b) == merge_contents(b, a)
    left = merge_contents(merge_docs(a, b), c)
    right = merge_contents(a, merge_docs(b, c))
    assert left == right
    assert merge_contents(merge_docs(a, b), merge_docs(a, b)) == merge_contents(a, b)


def test_a_relearn_wins_over_what_was_learned_before_it() -> None:
    clock = Clock()
    model = host_model(["/usr/sbin/nginx"], [80], clock)
    before = model.to_doc()
    apply(model, ModelCommand("relearn", model.profile_id, 0.0, clock(), 7))
    after = model.to_doc()
    assert after["generation"] == 7
    assert learned(merge_docs(after, before)) == (set(), set()), "the stale document loses"
    assert learned(merge_docs(before, after)) == (set(), set())


def test_active_somewhere_is_active() -> None:
    clock = Clock()
    learning = host_model(["/bin/a"], [], clock)
    active = host_model(["/bin/b"], [], clock)
    active.learn_stop()
    active.generation = learning.generation = 0
    merged = merge_docs(learning.to_doc(), active.to_doc())
    assert merged["state"] == "active"
    assert merge_docs(active.to_doc(), learning.to_doc())["state"] == "active"


def test_a_host_takes_in_a_model_it_lacks_and_merges_one_it_runs() -> None:
    clock = Clock()
    elsewhere = host_model(["/bin/elsewhere"], [8080], clock)
    elsewhere.learn_stop()
    here = ModelBook(clock=clock, config=LearningConfig(learning_period=60.0))
    assert here.absorb(elsewhere.to_doc())
    assert here.get(elsewhere.profile_id).state is State.ACTIVE, "learned elsewhere: active"
    model = here.container_started(IMAGE)
    assert model.contents.knows_process("/bin/elsewhere")
    other = host_model(["/bin/third"], [], clock)
    other.generation = model.generation
    assert here.absorb(other.to_doc())
    assert model.contents.knows_process("/bin/third")
    assert model.contents.knows_process("/bin/elsewhere"), "its own kept"
    assert not here.absorb({"profileId": "x", "v": 99}), "unreadable: refused, not fatal"
