"""Properties of the OSV record reader: whatever a document holds, the importer stores it or
counts it as invalid (a refusal is an ``InvalidInput``), never raises anything else."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.errors import InvalidInput
from garrison.scan.vulndb import _store
from garrison.scan.vulndb._importer import Importer
from garrison.scan.vulndb._versions import SUPPORTED_ECOSYSTEMS

VERSIONS = ["0", "1.0", "1.0.0-rc1", "2:1.2-3+deb12u1", "v1", "", "1..2", "🙂", "9" * 400]
VECTORS = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "AV:N/AC:L/Au:N/C:P/I:P/A:P",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    "CVSS:3.1/x",
    "",
]
TIMES = ["2024-01-01T00:00:00Z", "2023-06-01T12:30:00.5+02:00"]
BAD_TIMES = ["2024-01-01T00:00:00", "2024-02-30T00:00:00Z", "0", "x"]

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=10,
)
anything = st.one_of(json_values, st.sampled_from(VERSIONS), st.sampled_from(BAD_TIMES))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, now and then anything at all."""
    return st.integers(min_value=0, max_value=15).flatmap(
        lambda n: anything if n == 0 else strategy
    )


kinds = st.sampled_from(["introduced", "fixed", "last_affected", "limit"])
events = maybe(st.builds(lambda kind, version: {kind: version}, kinds, st.sampled_from(VERSIONS)))
ranges = st.fixed_dictionaries(
    {"type": maybe(st.sampled_from(["ECOSYSTEM", "SEMVER", "GIT"])),
     "events": maybe(st.lists(events, max_size=4))},
    optional={"repo": maybe(st.text(max_size=20))},
)  # fmt: skip
ecosystems = st.sampled_from([*SUPPORTED_ECOSYSTEMS, "Debian:12", "Alpine:v3.19", "Nope", ""])
affected = st.fixed_dictionaries(
    {},
    optional={
        "package": maybe(st.fixed_dictionaries({"ecosystem": ecosystems, "name": st.text()})),
        "ranges": maybe(st.lists(ranges, max_size=3)),
        "versions": maybe(st.lists(st.sampled_from(VERSIONS), max_size=3)),
        "severity": maybe(st.lists(st.fixed_dictionaries(
            {"type": st.sampled_from(["CVSS_V2", "CVSS_V3", "CVSS_V4", "x"]),
             "score": st.sampled_from(VECTORS)}), max_size=2)),
        "ecosystem_specific": maybe(st.fixed_dictionaries({"severity": st.text(max_size=9)})),
        "database_specific": maybe(st.dictionaries(st.text(max_size=5), json_values)),
    },
)  # fmt: skip
records = st.fixed_dictionaries(
    {"id": maybe(st.uuids().map(str)), "modified": maybe(st.sampled_from(TIMES))},
    optional={
        "published": maybe(st.sampled_from(TIMES)),
        "withdrawn": maybe(st.sampled_from(TIMES)),
        "aliases": maybe(st.lists(st.text(max_size=12), max_size=3)),
        "related": maybe(st.lists(st.text(max_size=12), max_size=3)),
        "summary": maybe(st.text(max_size=40)),
        "severity": maybe(st.lists(st.fixed_dictionaries(
            {"type": st.sampled_from(["CVSS_V3", "CVSS_V2"]), "score": st.sampled_from(VECTORS)}
        ), max_size=2)),
        "affected": maybe(st.lists(affected, max_size=3)),
        "database_specific": maybe(st.dictionaries(st.text(max_size=5), json_values)),
    },
)  # fmt: skip


@pytest.fixture(scope="module")
def conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(_store.SCHEMA)
    yield conn
    conn.close()


def read(conn: sqlite3.Connection, document: bytes) -> None:
    """Import one document; the report must account for it exactly once."""
    importer = Importer(conn, "property")
    try:
        importer.add("doc.json", document)
        importer.flush()
    except InvalidInput:
        return
    report = importer.report
    outcomes = [report.imported, report.replaced, report.unchanged, report.withdrawn]
    assert sum(outcomes) + report.invalid == 1, report


PROPERTY = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@PROPERTY
@given(record=records)
def test_any_osv_shaped_record_is_stored_or_counted_invalid(
    conn: sqlite3.Connection, record: dict[str, Any]
) -> None:
    read(conn, json.dumps(record).encode())


as_json = json_values.map(lambda v: json.dumps(v).encode())


@PROPERTY
@given(document=st.one_of(st.binary(max_size=64), as_json))
def test_any_bytes_are_stored_or_counted_invalid(conn: sqlite3.Connection, document: bytes) -> None:
    read(conn, document)


def test_json_nested_past_the_parsers_limit_is_one_invalid_record(conn: sqlite3.Connection) -> None:
    deep = b'{"id": "X", "modified": "2024-01-01T00:00:00Z", "database_specific": '
    read(conn, deep + b"[" * 100_000 + b"]" * 100_000 + b"}")
