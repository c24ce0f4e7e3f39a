"""The defender polls the stored rules each second, and parses them (pydantic, every custom
expression compiled) only when the stored document changed (issue 12: a large rule set
re-parsed each second took a tenth of a core)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import garrison.defender.core as defender_core
from garrison.config import Settings
from garrison.console import Console
from garrison.defender.core import Defender
from garrison.policy import RuleSet, load_rules
from garrison.policy.stored import RUNTIME_KIND
from garrison.runtime.fake import FakeRuntime


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    made = Console.open(tmp_path / "data")
    yield made
    made.close()


@pytest.fixture
def defender(console: Console, tmp_path: Path) -> Iterator[Defender]:
    link = console.link(flush_interval=60)
    yield Defender(Settings(data_dir=tmp_path / "data", hostname="h"), FakeRuntime(), link)
    link.close()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The documents the defender parsed, in order."""
    seen: list[Any] = []
    parse = defender_core.rules_from_doc

    def counting(doc: Any) -> RuleSet:
        seen.append(doc)
        return parse(doc)

    monkeypatch.setattr(defender_core, "rules_from_doc", counting)
    return seen


def test_unchanged_rules_are_not_parsed_again(
    console: Console, defender: Defender, parses: list[Any]
) -> None:
    console.apply_runtime_rules(load_rules("- name: web\n  processes: {effect: block}\n"))
    for _ in range(5):
        defender._sync_rules()
    assert len(parses) == 1
    assert defender.policies.engine.version == console.runtime_rules().digest()


def test_changed_rules_are_parsed_and_put_in_force_at_the_next_poll(
    console: Console, defender: Defender, parses: list[Any]
) -> None:
    defender._sync_rules()
    console.apply_runtime_rules(load_rules("- name: web\n"))
    defender._sync_rules()
    defender._sync_rules()
    assert len(parses) == 2
    assert defender.policies.engine.version == console.runtime_rules().digest()


def test_refused_stored_rules_are_logged_once_and_the_rules_in_force_stay(
    console: Console, defender: Defender, parses: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    console.apply_runtime_rules(load_rules("- name: web\n"))
    defender._sync_rules()
    in_force = defender.policies.engine.version
    console.store.set_policy(RUNTIME_KIND, {"rules": [{"name": "x", "bogus": 1}]})
    for _ in range(3):
        defender._sync_rules()
    assert len(parses) == 2
    assert caplog.text.count("the rules in force stay") == 1
    assert defender.policies.engine.version == in_force
