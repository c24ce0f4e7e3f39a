"""Each limit of garrison.policy.limits at its edge: the limit itself is taken, one more is
refused with a message that names it; and the largest rule set accepted exports to a file
that applies again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.errors import InvalidInput
from garrison.policy import InvalidRules, RuleSet, RuntimeRule, dump_rules, load_rules
from garrison.policy import documents as documents_module
from garrison.policy.documents import DocumentError, parse_document, read_document
from garrison.policy.limits import (
    MAX_DEPTH,
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_FILE_BYTES,
    MAX_NAME,
    MAX_PATTERN,
    MAX_RULES,
    MAX_TEXT,
    MAX_VALUES,
    MIB,
)
from garrison.scan.rules import parse_policy
from tests.cli_run import garrison, private_dir

DOCS = Path(__file__).parents[2] / "docs" / "rules.md"


def refusal(text: str, fmt: str = "yaml") -> str:
    with pytest.raises(InvalidRules) as caught:
        load_rules(text, source="r.yaml", fmt=fmt)  # type: ignore[arg-type]
    return str(caught.value)


def rule(**fields: object) -> str:
    return json.dumps([{"name": "r", **fields}])


@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", MAX_NAME), ("notes", MAX_TEXT)],
)
def test_a_string_at_its_limit_is_taken_and_one_more_is_refused(field: str, limit: int) -> None:
    assert load_rules(rule(**{field: "x" * limit}), fmt="json")
    assert f"at most {limit} characters" in refusal(rule(**{field: "x" * (limit + 1)}), "json")


@pytest.mark.parametrize(
    "where",
    [
        lambda p: {"processes": {"allowed": [p]}},
        lambda p: {"filesystem": {"denied": {"paths": [p]}}},
        lambda p: {"scope": [{"images": [p]}]},
        lambda p: {"custom": [{"name": "c", "expression": "proc.name = 'x'", "message": p}]},
    ],
)
def test_a_pattern_or_message_over_its_limit_is_refused(where: object) -> None:
    assert callable(where)
    assert load_rules(rule(**where("/" + "x" * (MAX_PATTERN - 1))), fmt="json")
    assert "at most 4096 characters" in refusal(rule(**where("/" + "x" * MAX_PATTERN)), "json")


def test_the_rule_count_is_checked_before_any_rule_is() -> None:
    names = [{"name": f"r{i}"} for i in range(MAX_RULES)]
    assert len(load_rules(json.dumps(names), fmt="json").rules) == MAX_RULES
    over = json.dumps([*names, {"name": "x", "notes": ["not", "a", "string"]}])
    assert refusal(over, "json") == f"r.yaml: {MAX_RULES + 1} rules; a file holds at most 1000"
    policy = json.dumps({"rules": [{"name": f"v{i}"} for i in range(MAX_RULES + 1)]})
    with pytest.raises(InvalidInput, match="vulnerability policy refused: 1001 rules"):
        parse_policy("vulnerability", policy)


def largest_export(fmt: str) -> str:
    """``rules export`` of MAX_RULES rules that leave every key at its default, made from the
    export of one (so that this process does not hold a thousand rules' YAML nodes)."""
    one = dump_rules(RuleSet(rules=[RuntimeRule(name="NAME")]), fmt)  # type: ignore[arg-type]
    if fmt == "json":
        body = json.dumps(json.loads(one)["rules"][0])
        return "[" + ",".join(body.replace('"NAME"', f'"rule {i}"') for i in range(MAX_RULES)) + "]"
    body = one.removeprefix("rules:\n")
    return "rules:\n" + "".join(body.replace("NAME", f"rule {i}", 1) for i in range(MAX_RULES))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_the_largest_rule_set_exports_to_a_file_that_applies_again(
    fmt: str, tmp_path: Path
) -> None:
    rules = RuleSet(rules=[RuntimeRule(name=f"rule {i}") for i in range(MAX_RULES)])
    export = tmp_path / f"export.{fmt}"
    export.write_text(largest_export(fmt))
    assert export.stat().st_size < MAX_FILE_BYTES
    ran = garrison("rules", "apply", "-f", export, "--data-dir", private_dir(tmp_path / "data"))
    assert ran.code == 0, ran
    assert f"{MAX_RULES} runtime rule(s) applied (version {rules.digest()[:12]})" in ran.out
    assert ran.peak_mib < 300, ran


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_nesting_at_the_limit_parses_and_one_level_more_is_refused(fmt: str) -> None:
    assert parse_document("[" * MAX_DEPTH + "]" * MAX_DEPTH, fmt)  # type: ignore[arg-type]
    with pytest.raises(DocumentError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_document("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), fmt)  # type: ignore[arg-type]


def test_json_values_past_the_limit_are_refused() -> None:
    assert parse_document(json.dumps([0] * (MAX_VALUES - 1)), "json")
    with pytest.raises(DocumentError, match=f"more than {MAX_VALUES} values"):
        parse_document(json.dumps([0] * MAX_VALUES), "json")


def test_yaml_values_are_counted_as_they_are_composed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents_module, "MAX_VALUES", 10)
    assert parse_document("{a: 1, b: 2, c: 3, d: 4}") == {"a": 1, "b": 2, "c": 3, "d": 4}
    with pytest.raises(DocumentError, match="line 1, column 29: more than 10 values"):
        parse_document("{a: 1, b: 2, c: 3, d: 4, e: 5}")


def test_an_anchor_is_taken_and_an_alias_refused_where_it_stands() -> None:
    assert parse_document("a: &x 1\nb: 2\n") == {"a": 1, "b": 2}
    with pytest.raises(DocumentError, match=r"line 2, column 4: an alias \(\*x\) is refused"):
        parse_document("a: &x 1\nb: *x\n")
    with pytest.raises(DocumentError, match="alias"):
        parse_document("base: &b {effect: block}\nrule: {<<: *b}\n")


def test_a_file_is_read_no_further_than_its_limit(tmp_path: Path) -> None:
    exact = tmp_path / "exact.yaml"
    exact.write_bytes(b"#" * MAX_FILE_BYTES)
    assert read_document(exact) == "#" * MAX_FILE_BYTES
    exact.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(DocumentError, match=r"4\.0 MiB; a rules file is at most 4 MiB"):
        read_document(exact)
    with pytest.raises(DocumentError, match="at most 4 MiB"):
        read_document(Path("/dev/zero"))  # no size to tell: read up to the limit


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("- name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"not UTF-8 text \(byte 11\)"):
        read_document(latin)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\u200b", "\u202e", "\u2067"])
def test_names_with_characters_that_act_on_a_terminal_are_refused(char: str) -> None:
    problem = refusal(rule(name=f"web{char}x"), "json")
    assert f"U+{ord(char):04X}" in problem
    assert "rule #1, name:" in problem  # the faulty name is not echoed
    with pytest.raises(InvalidInput, match=f"U\\+{ord(char):04X}"):
        parse_policy("compliance", {"rules": [{"name": f"web{char}x"}]})


def test_names_in_any_script_are_taken() -> None:
    names = ["café \u2013 ünïcode", "日本語のルール", "правило", "قاعدة", "🙂 rule", "[red]x[/red]"]
    loaded = load_rules(json.dumps([{"name": n} for n in names]), fmt="json")
    assert [r.name for r in loaded.rules] == names


def limits_section() -> str:
    return DOCS.read_text().split("\n## Limits\n")[1].split("\n## ")[0]


def test_the_limits_in_the_docs_are_the_limits() -> None:
    table = limits_section()
    for figure in (
        f"| a file | {MAX_FILE_BYTES // MIB} MiB",
        f"| rules in a file | {MAX_RULES:,} |",
        f"| {MAX_DEPTH} levels",
        f"| {MAX_VALUES:,} |",
        f"collection | {MAX_NAME} characters |",
        f"`message` | {MAX_TEXT:,} characters |",
        f"address | {MAX_PATTERN:,} characters |",
        f"| {MAX_EXPRESSION_LENGTH:,} characters, {MAX_EXPRESSION_DEPTH} levels",
    ):
        assert figure in table


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("deep.yaml", "- name: deep\n  notes: " + "[" * 40 + "]" * 40 + "\n"),
        ("laughs.yaml", "a0: &a0 [lol, lol]\na1: &a1 [*a0, *a0]\n"),
        ("r.yaml", '- name: web\n- name: "invoice\\u202Eexe.sh"\n'),
    ],
)
def test_the_refusals_in_the_docs_are_what_the_code_says(source: str, text: str) -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules(text, source=source)
    assert f"    garrison: {caught.value}\n" in limits_section()
