"""Properties of the rule and policy file readers: whatever the text, the answer is rules or
a refusal the user can read (``InvalidInput``), never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.errors import InvalidInput
from garrison.policy import load_rules
from garrison.policy.expression import MAX_DEPTH, compile_expression
from garrison.policy.limits import MAX_NAME
from garrison.scan.rules import parse_policy
from garrison.text import escape_unsafe

KEYS = ["rules", "name", "notes", "disabled", "scope", "processes", "network", "filesystem",
        "custom", "effect", "allowed", "denied", "paths", "detections", "listening", "outbound",
        "ips", "ports", "images", "labels", "expression", "message", "type", "collections",
        "checks", "exceptions", "id", "expires", "grace_days", "block_threshold"]  # fmt: skip
WORDS = ["alert", "block", "prevent", "disable", "ignore", "critical", "5.4", "/etc", "*",
         "80", "udp/53", "10.0.0.0/8", 'proc.name = "sh"', "2024-02-30", "0000-01-01"]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(WORDS),
)
documents = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), kids, max_size=5),
    ),
    max_leaves=30,
)
yaml_soup = st.text(
    alphabet=st.one_of(st.sampled_from(list("[]{}:-,&*!|>'\"#%?@` \n\t\\0aZ.")), st.characters()),
    max_size=80,
)


def accepted(read: Any, text: str) -> bool:
    """True when ``read(text)`` gives a result, False when it refuses with InvalidInput."""
    try:
        read(text)
    except InvalidInput:
        return False
    return True


def runtime(fmt: str) -> Any:
    return lambda text: load_rules(text, fmt=fmt)  # type: ignore[arg-type]


def policy(kind: str) -> Any:
    return lambda text: parse_policy(kind, text)


READERS = {
    "runtime yaml": runtime("yaml"),
    "runtime json": runtime("json"),
    "vulnerability": policy("vulnerability"),
    "compliance": policy("compliance"),
}


@pytest.mark.parametrize("reader", READERS)
@settings(max_examples=300, deadline=None)
@given(data=documents)
def test_any_document_gives_rules_or_a_refusal(reader: str, data: Any) -> None:
    dump = json.dumps if reader == "runtime json" else yaml.safe_dump
    accepted(READERS[reader], dump(data))


@pytest.mark.parametrize("reader", READERS)
@settings(max_examples=300, deadline=None)
@given(text=yaml_soup)
def test_any_text_gives_rules_or_a_refusal(reader: str, text: str) -> None:
    accepted(READERS[reader], text)


@settings(max_examples=200, deadline=None)
@given(depth=st.integers(min_value=0, max_value=3 * MAX_DEPTH), nots=st.booleans())
def test_an_expression_is_refused_exactly_when_it_nests_past_the_limit(
    depth: int, nots: bool
) -> None:
    source = ("not " * depth if nots else "(" * depth) + 'proc.name = "sh"'
    source += "" if nots else ")" * depth
    assert accepted(compile_expression, source) == (depth <= MAX_DEPTH)


@settings(max_examples=500)
@given(name=st.text(min_size=1, max_size=MAX_NAME))
def test_a_name_is_accepted_exactly_when_it_prints_as_it_is(name: str) -> None:
    text = json.dumps([{"name": name}])
    assert accepted(runtime("json"), text) == (escape_unsafe(name) == name)
