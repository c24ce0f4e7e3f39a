"""Rule files: YAML and JSON, refused whole with a message naming the rule and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from garrison.errors import InvalidInput
from garrison.policy import InvalidRules, RuleSet, dump_rules, load_rules, load_rules_file

DOCS = Path(__file__).parents[2] / "docs" / "rules.md"

GOOD = """
- name: web
  scope:
    - images: ["garrison-test/nginx*"]
      labels: ["env:prod"]
  processes:
    effect: block
    denied: {effect: prevent, paths: [/usr/bin/nc]}
  network:
    listening: {allowed: ["80", "8000-8080"]}
  custom:
    - name: shell
      expression: proc.name in ("sh", "bash")
"""


def refusal(text: str, fmt: str = "yaml") -> str:
    with pytest.raises(InvalidRules) as caught:
        load_rules(text, source="rules.yaml", fmt=fmt)  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidInput)
    return str(caught.value)


def test_a_good_file_loads_in_yaml_and_json_alike(tmp_path: Path) -> None:
    rules = load_rules(GOOD)
    assert [r.name for r in rules.rules] == ["web"]
    as_json = tmp_path / "rules.json"
    as_json.write_text(dump_rules(rules, "json"))
    assert load_rules_file(as_json) == rules
    assert load_rules(dump_rules(rules)) == rules
    assert (
        load_rules(
            json.dumps({"rules": json.loads(dump_rules(rules, "json"))["rules"]}), fmt="json"
        )
        == rules
    )


def test_an_empty_file_is_no_rules() -> None:
    assert load_rules("") == RuleSet()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- name: web\n  processes: {effect: nope}",
            "rules.yaml: rule 'web', processes.effect: "
            "Input should be 'disable', 'alert', 'prevent' or 'block'",
        ),
        (
            "- name: web\n  network: {effect: prevent}",
            "rule 'web', network.effect: Input should be 'disable', 'alert' or 'block'",
        ),
        (
            "- name: web\n  network: {outbound: {denied: {effect: prevent}}}",
            "rule 'web', network.outbound.denied.effect: Input should be 'alert' or 'block'",
        ),
        ("- name: web\n  procesess: {}", "rule 'web', procesess: Extra inputs are not permitted"),
        ("- name: a\n- notes: x", "rule #2, name: Field required"),
        (
            "- name: web\n  network: {listening: {allowed: ['80-70']}}",
            "rule 'web', network.listening.allowed: "
            "'80-70': ports run from 0 to 65535, low to high",
        ),
        (
            "- name: web\n  network: {ips: {denied: {ips: ['10.0.0.0/33']}}}",
            "network.ips.denied.ips: '10.0.0.0/33' is not an IP address or CIDR network",
        ),
        (
            "- name: web\n  custom: [{name: c, expression: 'proc.name = '}]",
            "rule 'web', custom rule 'c': expression: line 1, column 13: unexpected end",
        ),
        (
            "- name: web\n  custom: "
            "[{name: c, expression: 'net.outgoing_port = 1', effect: prevent}]",
            "custom rule 'c': a network rule's effect is alert or block",
        ),
        (
            "- name: web\n  custom: "
            "[{name: c, expression: 'file.dir = \"/\" and net.outgoing_port = 1'}]",
            "reads file.* or net.* fields, not both",
        ),
        (
            "- name: web\n  custom: [{name: c, type: processes, expression: 'file.dir = \"/\"'}]",
            "a processes rule cannot read file.dir",
        ),
        ("- name: a\n- name: a", "two rules are named 'a'"),
        ("rules: [\n", "rules.yaml: line 2, column 1:"),
        ("42", "expected a list of rules or a mapping with 'rules'"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_message(text: str, message: str) -> None:
    assert message in refusal(text)


def test_bad_json_names_line_and_column() -> None:
    assert "rules.yaml: line 1, column 2" in refusal("[x]", fmt="json")


def test_several_faults_are_all_kept_and_counted() -> None:
    with pytest.raises(InvalidRules) as caught:
        load_rules("- name: a\n  disabled: maybe\n- name: b\n  notes: [1]\n")
    assert len(caught.value.problems) == 2
    assert str(caught.value).endswith("(and 1 more)")


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRules, match="cannot be read"):
        load_rules_file(tmp_path / "missing.yaml")


def test_the_digest_follows_content_not_layout() -> None:
    assert (
        load_rules(GOOD).digest()
        == load_rules(dump_rules(load_rules(GOOD), "json"), fmt="json").digest()
    )
    assert load_rules(GOOD).digest() != load_rules(GOOD.replace("block", "alert")).digest()


def test_the_example_in_the_docs_loads_and_says_what_the_docs_say() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    rules = load_rules(blocks[0], source="docs/rules.md")
    assert len(rules.rules) >= 2
    assert any(r.custom for r in rules.rules)
