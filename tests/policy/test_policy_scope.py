"""Scopes: wildcards, labels, exclusions, rule order and disabled rules decide which rule
covers a container."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from garrison.policy import Collection, PolicyEngine, RuleSet, RuntimeRule, Subject
from garrison.policy.collections import any_matches, field_matches, pattern_matches
from garrison.policy.schema import DEFAULT_RULE_NAME

# Text without "*" (the only special character) and without a leading "-" (exclusion).
plain = st.text(alphabet=string.ascii_letters + string.digits + "/:.-_[]?\\ ", max_size=12)


def rule(name: str, disabled: bool = False, **scope: list[str]) -> RuntimeRule:
    return RuntimeRule(name=name, disabled=disabled, scope=[Collection(**scope)])


def resolved(rules: list[RuntimeRule], subject: Subject) -> str:
    return PolicyEngine(RuleSet(rules=rules)).resolve(subject).rule_name


@given(plain, plain)
def test_a_pattern_without_wildcard_matches_only_itself(pattern: str, value: str) -> None:
    assert pattern_matches(pattern, value) == (pattern == value)


@given(plain, plain, plain)
def test_prefix_suffix_and_both_wildcards(a: str, b: str, middle: str) -> None:
    assert pattern_matches(f"{a}*", a + middle)
    assert pattern_matches(f"*{b}", middle + b)
    assert pattern_matches(f"*{a}*", b + a + middle)
    assert pattern_matches(f"{a}*{b}", a + middle + b)
    assert pattern_matches("*", middle)


@given(plain, plain)
def test_a_prefix_wildcard_refuses_other_starts(a: str, value: str) -> None:
    assert pattern_matches(f"{a}*", value) == value.startswith(a)


@given(st.lists(plain, max_size=4), plain)
def test_an_exclusion_always_wins_over_an_inclusion(includes: list[str], value: str) -> None:
    assert not field_matches([*includes, "*", f"-{value}"], [value])


def test_only_exclusions_match_everything_else() -> None:
    assert field_matches(["-db*"], ["web"])
    assert not field_matches(["-db*"], ["db-1"])


def test_image_names_match_with_and_without_the_default_tag_and_registry() -> None:
    coll = [Collection(images=["nginx:latest"])]
    assert any_matches(coll, Subject(image="nginx"))
    assert any_matches(coll, Subject(image="docker.io/library/nginx:latest"))
    assert not any_matches(coll, Subject(image="nginx:1.25"))


def test_labels_match_key_value_with_wildcards() -> None:
    subject = Subject(image="x", labels={"env": "prod", "team": "payments"})
    assert any_matches([Collection(labels=["env:prod"])], subject)
    assert any_matches([Collection(labels=["team:pay*"])], subject)
    assert not any_matches([Collection(labels=["env:dev"])], subject)
    assert not any_matches([Collection(labels=["-env:prod"])], subject)
    assert not any_matches([Collection(labels=["env:prod"])], Subject(image="x"))


def test_a_scope_of_several_collections_covers_what_any_covers() -> None:
    scope = [Collection(images=["nginx*"]), Collection(containers=["db-*"])]
    assert any_matches(scope, Subject(image="nginx:1"))
    assert any_matches(scope, Subject(image="postgres", container="db-1"))
    assert not any_matches(scope, Subject(image="redis", container="cache"))


def test_every_field_of_a_collection_must_match() -> None:
    coll = [Collection(images=["nginx*"], hosts=["edge-*"], namespaces=["prod"])]
    assert any_matches(coll, Subject(image="nginx", host="edge-1", namespace="prod"))
    assert not any_matches(coll, Subject(image="nginx", host="core-1", namespace="prod"))
    assert not any_matches(coll, Subject(image="nginx", host="edge-1", namespace="dev"))


def test_the_first_matching_rule_applies() -> None:
    rules = [rule("web", images=["nginx*"]), rule("all", images=["*"])]
    assert resolved(rules, Subject(image="nginx:1")) == "web"
    assert resolved(rules, Subject(image="redis")) == "all"
    assert resolved(list(reversed(rules)), Subject(image="nginx:1")) == "all"


def test_a_disabled_rule_is_skipped() -> None:
    rules = [rule("web", disabled=True, images=["nginx*"]), rule("all")]
    assert resolved(rules, Subject(image="nginx:1")) == "all"


def test_an_excluded_container_falls_through_to_the_next_rule() -> None:
    rules = [rule("web", images=["nginx*"], containers=["-canary*"]), rule("all")]
    assert resolved(rules, Subject(image="nginx", container="canary-1")) == "all"
    assert resolved(rules, Subject(image="nginx", container="web-1")) == "web"


def test_no_rule_covering_a_container_means_the_default_policy() -> None:
    assert resolved([rule("web", images=["nginx*"])], Subject(image="redis")) == DEFAULT_RULE_NAME
    assert resolved([], Subject(image="redis")) == DEFAULT_RULE_NAME


names = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=4)


@given(
    st.lists(st.tuples(names, st.booleans()), min_size=1, max_size=6, unique_by=lambda t: t[0]),
    names,
)
def test_resolve_is_the_first_enabled_rule_whose_image_pattern_matches(
    specs: list[tuple[str, bool]], image: str
) -> None:
    # Each rule's image pattern is its name with a wildcard: "ab*" covers "abc".
    rules = [rule(n, disabled=d, images=[f"{n}*"]) for n, d in specs]
    expected = next(
        (n for n, d in specs if not d and image.startswith(n)),
        DEFAULT_RULE_NAME,
    )
    assert resolved(rules, Subject(image=image)) == expected
