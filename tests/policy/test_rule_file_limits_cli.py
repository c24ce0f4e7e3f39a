"""Issue 12, rule files: each oversize or hostile input to ``garrison rules apply`` and
``garrison policies … apply``, run as the real command, is refused in one line (exit 1, no
traceback) at a bounded peak memory, and the rules stored before stay as they were."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from garrison.console import Console
from garrison.policy import load_rules
from garrison.policy.limits import MAX_DEPTH, MAX_RULES, MAX_TEXT
from garrison.policy.stored import RUNTIME_KIND
from garrison.scan.rules import save_policy
from garrison.store import SQLiteStore
from tests.cli_run import assert_refused_in_one_line, garrison, private_dir

MB = 1_000_000
GOOD_RULES = "- name: web\n  processes: {effect: block}\n"
GOOD_POLICY = "rules: [{name: gate}]\n"

# Each writes its file in pieces: the test process's own peak memory stays small (a child's
# peak is measured apart, but other tests' children may start from this process's peak).


def million_rules_in_50_mb(file: BinaryIO) -> None:
    rule = "- name: rule-{:07d}\n  notes: " + "n" * 24 + "\n"
    for start in range(0, 1_000_000, 10_000):
        file.write("".join(rule.format(i) for i in range(start, start + 10_000)).encode())


def one_rule_with_a_50_mb_note(file: BinaryIO) -> None:
    file.write(b"- name: big\n  notes: ")
    for _ in range(50):
        file.write(b"n" * MB)
    file.write(b"\n")


def nested_100_000_deep(file: BinaryIO) -> None:
    file.write(b"- name: deep\n  notes: " + b"[" * 100_000 + b"]" * 100_000 + b"\n")


def billion_laughs(file: BinaryIO) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    file.write(("\n".join(lines) + "\nrules: [{name: laughs, scope: [{images: *a9}]}]\n").encode())


def expression_in_3000_parentheses(file: BinaryIO) -> None:
    expression = "(" * 3000 + 'proc.name = "sh"' + ")" * 3000
    file.write(f"- name: parens\n  custom: [{{name: c, expression: '{expression}'}}]\n".encode())


def one_rule_too_many(file: BinaryIO) -> None:
    file.write("".join(f"- name: r{i}\n" for i in range(MAX_RULES + 1)).encode())


def notes_one_character_too_long(file: BinaryIO) -> None:
    file.write(b"- name: long\n  notes: " + b"n" * (MAX_TEXT + 1) + b"\n")


def name_with_bidi_override(file: BinaryIO) -> None:
    file.write(b'- name: "invoice\\u202Eexe.sh"\n')


def name_with_nul(file: BinaryIO) -> None:
    file.write(b'- name: "web\\0"\n')


def written(path: Path, make: Callable[[BinaryIO], None]) -> Path:
    with path.open("wb") as file:
        make(file)
    return path


RULE_FILES: dict[str, tuple[Callable[[BinaryIO], None], tuple[str, ...]]] = {
    "50 MB, a million rules": (million_rules_in_50_mb, ("MiB", "at most 4 MiB")),
    "a 50 MB note": (one_rule_with_a_50_mb_note, ("at most 4 MiB",)),
    "nested 100,000 deep": (nested_100_000_deep, (f"nested deeper than {MAX_DEPTH} levels",)),
    "billion laughs": (billion_laughs, ("alias", "refused")),
    "3,000 parentheses": (expression_in_3000_parentheses, ("nested deeper than 64 levels",)),
    "1,001 rules": (one_rule_too_many, (f"at most {MAX_RULES}",)),
    "notes of 4,097": (notes_one_character_too_long, ("at most 4096 characters",)),
    "U+202E in a name": (name_with_bidi_override, ("U+202E", "RIGHT-TO-LEFT OVERRIDE")),
    "NUL in a name": (name_with_nul, ("U+0000",)),
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return private_dir(tmp_path / "data")


def stored(data_dir: Path, kind: str) -> dict[str, Any] | None:
    store = SQLiteStore.in_dir(data_dir)
    try:
        return store.get_policy(kind)
    finally:
        store.close()


@pytest.mark.parametrize("case", RULE_FILES)
def test_an_oversize_rule_file_is_refused_in_one_line_and_nothing_is_stored(
    case: str, data_dir: Path, tmp_path: Path
) -> None:
    make, needles = RULE_FILES[case]
    with Console.open(data_dir) as console:
        console.apply_runtime_rules(load_rules(GOOD_RULES))
    before = stored(data_dir, RUNTIME_KIND)
    bad = written(tmp_path / "bad.yaml", make)
    ran = garrison("rules", "apply", "-f", bad, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, str(bad), *needles)
    assert stored(data_dir, RUNTIME_KIND) == before is not None


POLICY_FILES = {
    "50 MB, a million rules": ("vulnerability", million_rules_in_50_mb, ("at most 4 MiB",)),
    "nested 100,000 deep": ("compliance", nested_100_000_deep, ("nested deeper than 32",)),
    "billion laughs": ("vulnerability", billion_laughs, ("alias", "refused")),
    "1,001 rules": ("compliance", one_rule_too_many, (f"at most {MAX_RULES}",)),
    "U+202E in a name": ("vulnerability", name_with_bidi_override, ("U+202E",)),
}


@pytest.mark.parametrize("case", POLICY_FILES)
def test_an_oversize_policy_file_is_refused_in_one_line_and_nothing_is_stored(
    case: str, data_dir: Path, tmp_path: Path
) -> None:
    kind, make, needles = POLICY_FILES[case]
    store = SQLiteStore.in_dir(data_dir)
    try:
        save_policy(store, kind, GOOD_POLICY)
    finally:
        store.close()
    before = stored(data_dir, kind)
    bad = written(tmp_path / "bad.yaml", make)
    ran = garrison("policies", kind, "apply", "-f", bad, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, *needles)
    assert stored(data_dir, kind) == before is not None
