"""The engine: resolved policies cached per container, rule sets swapped whole, a version
that moves only when the rules do."""

from __future__ import annotations

import threading

from garrison.policy import Collection, PolicyEngine, RuleSet, RuntimeRule, Subject

WEB = Subject(image="nginx:1", container="web-1", labels={"env": "prod"})


def rules(*names: str) -> RuleSet:
    return RuleSet(
        rules=[RuntimeRule(name=n, scope=[Collection(images=["nginx*"])]) for n in names]
    )


def test_resolving_the_same_container_twice_returns_the_cached_policy() -> None:
    engine = PolicyEngine(rules("web"))
    assert engine.resolve(WEB) is engine.resolve(Subject(**vars_of(WEB)))


def vars_of(subject: Subject) -> dict[str, object]:
    return {k: getattr(subject, k) for k in ("image", "container", "host", "labels", "namespace")}


def test_a_swap_reaches_a_container_already_resolved() -> None:
    engine = PolicyEngine(rules("old"))
    assert engine.resolve(WEB).rule_name == "old"
    assert engine.swap(rules("new"))
    assert engine.resolve(WEB).rule_name == "new"


def test_the_version_moves_with_the_rules_and_only_with_them() -> None:
    engine = PolicyEngine(rules("a"))
    before = engine.version
    assert not engine.swap(rules("a"))
    assert engine.version == before
    assert engine.swap(rules("b"))
    assert engine.version != before
    assert engine.version == rules("b").digest()


def test_resolving_while_rules_are_swapped_sees_one_rule_set_or_the_other() -> None:
    engine = PolicyEngine(rules("a"))
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(engine.resolve(WEB).rule_name)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            engine.swap(rules("a" if i % 2 else "b"))
    finally:
        stop.set()
        thread.join()
    assert seen <= {"a", "b"}
