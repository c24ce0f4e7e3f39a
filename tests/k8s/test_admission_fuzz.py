"""Whatever the body, the judge answers a review or raises the documented InvalidInput (the
webhook's HTTP 400), never anything else: random bytes, random JSON, and real reviews with
any one value replaced by random JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.errors import InvalidInput
from garrison.k8s import Admission, StoredReports
from garrison.scan.rules import (
    CompliancePolicy,
    ComplianceRule,
    Policies,
    VulnerabilityPolicy,
    VulnerabilityRule,
)
from garrison.scan.types import Severity
from garrison.store.memory import MemoryStore
from tests.k8s.reviews import load, pod_review
from tests.store.test_store_scans import report

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
REVIEWS = [pod_review(), load("pod_ephemeral_update.json"), load("deployment_create.json")]


def _admission() -> Admission:
    store = MemoryStore()
    store.save_scan(report("shop:1.4", "sha256:" + "5a" * 32, 100.0, Severity.CRITICAL))
    block = Policies(
        VulnerabilityPolicy(rules=[VulnerabilityRule(name="block", effect="block")]),
        CompliancePolicy(rules=[ComplianceRule(name="all", default_effect="block")]),
    )
    return Admission(StoredReports(store), lambda: block)


ADMISSION = _admission()


def answers_or_refuses(raw: bytes) -> None:
    try:
        answer = ADMISSION.review(raw)
    except InvalidInput:
        return  # the documented refusal: HTTP 400
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert isinstance(answer["response"]["allowed"], bool)
    json.dumps(answer, allow_nan=False)


@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    answers_or_refuses(raw)


@given(JSON)
def test_random_json(doc: Any) -> None:
    answers_or_refuses(json.dumps(doc).encode())


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*at, i))
    return found


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(REVIEWS))), st.data(), JSON)
def test_a_real_review_with_one_value_replaced(which: int, data: st.DataObject, value: Any) -> None:
    doc = json.loads(json.dumps(REVIEWS[which]))
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    answers_or_refuses(json.dumps(doc).encode())
