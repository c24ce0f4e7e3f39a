"""What every store does, proved on the real SQLite file and on the in-memory fake alike."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path

import pytest

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.model import ModelCommand
from garrison.runtime.base import RestartPolicy
from garrison.store import BlockedContainer
from tests.store.stores import two_stores


def audit(**fields):
    base = {
        "time": 1000.0,
        "hostname": "h",
        "type": "processes",
        "attackType": "unexpectedProcess",
        "effect": "alert",
        "msg": "/usr/bin/nc launched but is not found in the runtime model",
        "containerId": "c1" + "0" * 62,
        "containerName": "web",
        "imageName": "garrison-test/nginx:latest",
        "imageId": "sha256:" + "ab" * 32,
        "processPath": "/usr/bin/nc",
    }
    return Audit(**(base | fields))


def test_the_same_finding_again_adds_to_its_count_and_moves_its_time(store):
    first = store.add_audits([audit()])[0]
    again = store.add_audits([audit(time=2000.0, count=3)])[0]
    assert first.id == again.id
    assert (again.count, again.time) == (4, 2000.0)
    listed = store.list_audits()
    assert len(listed) == 1
    assert (listed[0].count, listed[0].time, listed[0].id) == (4, 2000.0, first.id)
    assert listed[0].processPath == "/usr/bin/nc"


def test_a_batch_holding_a_finding_twice_stores_it_once_and_each_gets_it_back(store):
    others = [audit(msg=f"other {n}", time=1000.0 + n) for n in range(450)]  # several INSERTs
    batch = [audit(count=2), *others, audit(time=3000.0, count=3)]
    stored = store.add_audits(batch)
    assert len(stored) == len(batch)
    assert stored[0] == stored[-1], "both occurrences get the one audit back"
    assert (stored[0].count, stored[0].time) == (5, 3000.0)
    assert [a.msg for a in stored[1:-1]] == [f"other {n}" for n in range(450)]
    assert len({a.id for a in stored}) == 451
    assert len(store.list_audits(AuditFilter(limit=0))) == 451


def test_audits_filter_by_container_image_type_effect_and_time(store):
    store.add_audits(
        [
            audit(),
            audit(time=1500.0, containerId="d2" + "0" * 62, containerName="db", msg="other"),
            audit(time=1600.0, type="network", attackType="unexpectedListeningPort", msg="x"),
            audit(time=1700.0, imageName="busybox:latest", imageId="sha256:" + "cd" * 32, msg="y"),
            audit(time=1800.0, effect="prevent", msg="z"),
        ]
    )

    def msgs(**query):
        return [a.msg[:5] for a in store.list_audits(AuditFilter(**query))]

    assert msgs() == ["z", "y", "x", "other", "/usr/"]
    assert msgs(container="db") == ["other"]
    assert msgs(container="/db") == ["other"]
    assert msgs(container="d2") == ["other"]
    assert msgs(image="busybox") == ["y"]
    assert msgs(image="sha256:cdcd") == ["y"]
    assert msgs(image="cdcd") == ["y"]
    assert msgs(image="cd") == []
    assert msgs(image="abababab", type="network") == ["x"]
    assert msgs(effect="prevent") == ["z"]
    assert msgs(since=1600.0) == ["z", "y", "x"]
    assert msgs(limit=2) == ["z", "y"]


def test_a_bad_audit_is_refused_and_stored_ones_stay(store):
    store.add_audits([audit()])
    with pytest.raises(InvalidInput):
        store.add_audits([audit(msg="new"), audit(time=math.nan, msg="nan")])
    assert [a.msg[:5] for a in store.list_audits()] == ["/usr/"]


def test_models_are_saved_replaced_loaded_and_deleted(store):
    store.save_models([{"profileId": "p1", "state": "learning"}, {"profileId": "p2"}])
    store.save_models([{"profileId": "p1", "state": "active"}])
    assert store.load_models() == [{"profileId": "p1", "state": "active"}, {"profileId": "p2"}]
    assert store.get_model("p2") == {"profileId": "p2"}
    store.delete_models(["p2", "never"])
    assert store.get_model("p2") is None
    assert [d["profileId"] for d in store.load_models()] == ["p1"]


def _union(stored: dict, incoming: dict) -> dict:
    time.sleep(0.005)  # a merge takes a while: long enough for another writer to come between
    return {**incoming, "seen": sorted({*stored["seen"], *incoming["seen"]})}


def merge_at_once(stores: list, names: list[str]) -> None:
    """Each name merged into model p1 by its own thread, the threads spread over ``stores``."""
    threads = [
        threading.Thread(
            target=stores[n % len(stores)].merge_models,
            args=([{"profileId": "p1", "seen": [name]}], _union),
        )
        for n, name in enumerate(names)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_model_merged_into_the_stored_one_is_saved_and_returned(store):
    assert store.merge_models([{"profileId": "p1", "seen": ["a"]}], _union) == [
        {"profileId": "p1", "seen": ["a"]}  # nothing stored: saved as it came
    ]
    saved = store.merge_models([{"profileId": "p1", "seen": ["b"]}, {"profileId": "p2"}], _union)
    assert saved == [{"profileId": "p1", "seen": ["a", "b"]}, {"profileId": "p2"}]
    assert store.load_models() == saved
    assert store.merge_models([], _union) == []


def test_a_merge_the_store_cannot_keep_changes_nothing(store):
    store.save_models([{"profileId": "p1", "seen": ["a"]}])
    with pytest.raises(InvalidInput):
        store.merge_models([{"profileId": "p2", "seen": []}, {"seen": ["b"]}], _union)
    with pytest.raises(InvalidInput):
        store.merge_models([{"profileId": "p1", "seen": ["c"], "n": math.nan}], _union)
    assert store.load_models() == [{"profileId": "p1", "seen": ["a"]}]


def test_one_model_merged_by_many_writers_at_once_keeps_every_part(store):
    # Hosts saving one image's model at the same instant: none may lose another's merge.
    store.save_models([{"profileId": "p1", "seen": ["first"]}])
    names = [f"host-{n:02d}" for n in range(16)]
    merge_at_once([store], names)
    assert store.get_model("p1") == {"profileId": "p1", "seen": ["first", *names]}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_one_model_merged_through_two_connection_pools_at_once_keeps_every_part(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    # Two console replicas (or a console and a CLI) on one database.
    with two_stores(kind, request, tmp_path) as (first, second):
        first.save_models([{"profileId": "p1", "seen": ["first"]}])
        names = [f"host-{n:02d}" for n in range(16)]
        merge_at_once([first, second], names)
        assert second.get_model("p1") == {"profileId": "p1", "seen": ["first", *names]}


def test_a_model_document_that_is_not_json_changes_nothing(store):
    store.save_models([{"profileId": "p1", "n": 1}])
    with pytest.raises(InvalidInput):
        store.save_models([{"profileId": "p1", "n": 2}, {"profileId": "p2", "n": math.inf}])
    with pytest.raises(InvalidInput, match="profileId"):
        store.save_models([{"n": 3}])
    with pytest.raises(InvalidInput):
        store.save_models([{"profileId": "p3", "when": object()}])
    assert store.load_models() == [{"profileId": "p1", "n": 1}]


def test_policies_are_documents_by_kind(store):
    assert store.get_policy("runtime") is None
    store.set_policy("runtime", {"rules": [{"name": "r1"}]})
    store.set_policy("runtime", {"rules": []})
    store.set_policy("vulnerability", {"rules": [1]})
    assert store.get_policy("runtime") == {"rules": []}
    with pytest.raises(InvalidInput):
        store.set_policy("", {})
    with pytest.raises(InvalidInput):
        store.set_policy("runtime", ["not", "an", "object"])
    assert store.get_policy("runtime") == {"rules": []}


def test_blocked_containers_are_added_listed_and_removed(store):
    record = BlockedContainer("c1", "web", "nginx", RestartPolicy("always"), 7, 10.0)
    store.add_blocked(record)
    store.add_blocked(
        BlockedContainer("c2", "db", "pg", RestartPolicy("on-failure", 3), None, 20.0)
    )
    assert store.list_blocked()[0] == record
    assert store.list_blocked()[1].restart_policy == RestartPolicy("on-failure", 3)
    assert store.remove_blocked("c1")
    assert not store.remove_blocked("c1")
    assert [r.container_id for r in store.list_blocked()] == ["c2"]


def test_a_block_is_updated_only_while_the_store_has_it_of_that_host(store):
    record = BlockedContainer("c1", "web", "nginx", RestartPolicy("always"), 7, 10.0, host="n1")
    store.add_blocked(record)
    done = dataclasses.replace(record, state="done", capture="done")
    assert store.update_blocked(done)
    assert store.list_blocked() == [done]
    assert not store.update_blocked(dataclasses.replace(done, host="n2")), "another host's"
    assert store.remove_blocked("c1")  # a user unblocked it
    assert not store.update_blocked(done), "not made again"
    assert store.list_blocked() == []


def test_a_block_begins_with_its_audit_and_pending_record_together(store):
    intent = BlockedContainer(
        "c3", "web", "nginx", RestartPolicy("always"), None, 30.0, "pending", "stopping"
    )
    stored = store.begin_block(intent, audit(effect="block", containerId="c3"))
    (found,) = store.list_audits(AuditFilter(limit=0))
    assert stored.audit_id == found.id
    assert stored.audit_id is not None
    assert store.list_blocked() == [stored]
    assert (stored.state, stored.reason) == ("pending", "stopping")
    store.add_blocked(dataclasses.replace(stored, state="done", reason=""))
    assert store.list_blocked()[0].state == "done"


def test_a_block_whose_audit_is_refused_stores_no_record(store):
    intent = BlockedContainer("c4", "web", "nginx", RestartPolicy("always"), None, 30.0)
    with pytest.raises(InvalidInput):
        store.begin_block(intent, audit(effect="block", time=math.nan))
    assert store.list_blocked() == []
    assert store.list_audits(AuditFilter(limit=0)) == []


def test_a_record_stored_before_blocks_had_a_state_reads_as_done() -> None:
    doc = BlockedContainer("c5", "w", "i", RestartPolicy("no"), 1, 1.0).to_json()
    del doc["state"], doc["reason"]
    assert BlockedContainer.from_json(doc).state == "done"


def test_status_is_the_last_document_per_source(store):
    assert store.get_status() is None
    store.set_status({"sensors": {"fanotify": {"events": 1}}})
    store.set_status({"sensors": {"fanotify": {"events": 2}}})
    store.set_status({"up": True}, source="host2")
    assert store.get_status() == {"sensors": {"fanotify": {"events": 2}}}
    assert store.get_status("host2") == {"up": True}


def test_model_commands_queue_until_finished(store):
    first = store.add_model_command(ModelCommand("relearn", "p1", time=5.0))
    second = store.add_model_command(ModelCommand("extend", "p1", seconds=60.0))
    assert first.id is not None
    assert second.id is not None
    assert first.id < second.id
    assert store.pending_model_commands() == [first, second]
    store.finish_model_commands([first.id])
    assert store.pending_model_commands() == [second]
    with pytest.raises(InvalidInput):
        store.add_model_command(ModelCommand("extend", "p1", seconds=0))


def test_stored_audits_keep_every_field(store):
    original = audit(pid=42, command="nc -l 4444", user="root", profileId="sha256:ab", count=2)
    stored = store.add_audits([original])[0]
    assert stored == dataclasses.replace(original, id=stored.id)
    assert store.list_audits() == [stored]


def operator_audits():
    """Audits that differ in what an operator searches and filters by, times 100 to 105."""
    return [
        audit(time=100.0, msg="Curl ran", command="curl http://x/100%_done", ruleName="r1"),
        audit(time=101.0, msg="wget ran", command="wget 'a' \"b\" c\\d", hostname="node-2"),
        audit(time=102.0, msg="ÉCHEC of /bin/été", attackType="unexpectedListeningPort"),
        audit(time=103.0, msg="plain", command="rm -rf /tmp/x\udcff", ruleName="r2"),
        audit(time=104.0, msg="100 percent done", command="ls", ruleName="r1"),
        audit(time=105.0, msg="=cmd|' /C calc'!A0", command="sh", hostname="node-2"),
    ]


def times(store, **query):
    return [int(a.time) for a in store.list_audits(AuditFilter(**({"limit": 0} | query)))]


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("CURL", [100]),  # case aside, in the message
        ("HTTP://X", [100]),  # and in the command line
        ("ran", [101, 100]),
        ("100%", [100]),  # % is itself, not "anything"
        ("100%_", [100]),
        ("100_", []),  # _ is itself, not "one character"
        ("%", [100]),
        ("_", [100]),
        ("c\\d", [101]),  # a backslash is itself, not an escape
        ("\\", [101]),
        ("'a'", [101]),
        ('"b"', [101]),
        ("' /c calc'!", [105]),
        ("échec", [102]),  # Unicode case folding, not ASCII only
        ("ÉTÉ", [102]),
        ("\udcff", [103]),  # a command line's non-UTF-8 byte, as os.fsdecode gives it
        ("x\udcff", [103]),
        ("'; DROP TABLE audits; --", []),
        ("nowhere", []),
    ],
)
def test_search_is_a_literal_case_insensitive_substring_of_msg_or_command(store, search, found):
    store.add_audits(operator_audits())
    assert times(store, search=search) == found
    assert len(store.list_audits(AuditFilter(limit=0))) == 6, "nothing dropped"


def test_a_stored_non_utf8_command_breaks_no_other_search(store):
    store.add_audits(operator_audits())
    assert times(store, search="100") == [104, 100]


def test_rule_host_and_attack_type_match_exactly(store):
    store.add_audits(operator_audits())
    assert times(store, rule="r1") == [104, 100]
    assert times(store, rule="r") == []
    assert times(store, rule="R1") == []
    assert times(store, host="node-2") == [105, 101]
    assert times(store, host="h") == [104, 103, 102, 100]
    assert times(store, attack_type="unexpectedListeningPort") == [102]
    assert times(store, attack_type="unexpected") == []
    assert times(store, rule="r1", search="curl", host="h") == [100]


def test_until_is_an_upper_bound_that_excludes_itself(store):
    store.add_audits(operator_audits())
    assert times(store, until=102.0) == [101, 100]
    assert times(store, since=102.0, until=104.0) == [103, 102]
    assert times(store, since=102.0) + times(store, since=100.0, until=102.0) == times(store)


def test_offset_and_limit_page_through_newest_first(store):
    store.add_audits(operator_audits())
    pages = [times(store, limit=4, offset=n) for n in (0, 4, 8)]
    assert pages == [[105, 104, 103, 102], [101, 100], []]
    assert times(store, offset=5) == [100]
    assert times(store, rule="r1", offset=1) == [100]


def test_audits_stream_as_they_list(store):
    store.add_audits(operator_audits())
    for query in (AuditFilter(limit=0), AuditFilter(limit=2, offset=1), AuditFilter(rule="r1")):
        assert list(store.iter_audits(query)) == store.list_audits(query)


def test_postgresql_s_array_insert_names_every_audit_column_but_the_id() -> None:
    from garrison.store import schema, sql  # noqa: PLC0415

    names = [name for name, _ in sql._PG_COLUMNS]
    assert sorted(names) == sorted(c.name for c in schema.audits.columns if c.name != "id")
    assert set(sql._audit_row(audit())) == set(names)
