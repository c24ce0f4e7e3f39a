"""Which hosts saved each model, on SQLite, PostgreSQL and the in-memory fake alike: a host's
first save kept and its last moved on (never back), hosts listed by name and counted per
model, nothing recorded for a model not stored, and a model's hosts deleted with it."""

from __future__ import annotations

import pytest

from garrison.errors import InvalidInput
from garrison.store.base import ModelHost


def test_a_host_saving_again_keeps_its_first_save_and_moves_its_last(store) -> None:
    store.save_models([{"profileId": "p1"}])
    store.record_model_hosts("web-2", ["p1"], 10.0)
    store.record_model_hosts("web-2", ["p1"], 30.0)
    store.record_model_hosts("web-2", ["p1"], 20.0)  # an older save told late: not back
    assert store.model_hosts("p1") == [ModelHost("web-2", 10.0, 30.0)]


def test_the_hosts_of_one_model_are_listed_by_name_and_counted_per_model(store) -> None:
    store.save_models([{"profileId": "p1"}, {"profileId": "p2"}, {"profileId": "p3"}])
    store.record_model_hosts("web-2", ["p1", "p2"], 10.0)
    store.record_model_hosts("db-1", ["p1"], 15.0)
    assert store.model_hosts("p1") == [ModelHost("db-1", 15.0, 15.0),
                                       ModelHost("web-2", 10.0, 10.0)]  # fmt: skip
    assert store.model_hosts("p3") == []
    assert store.model_hosts("nothing") == []
    assert store.model_host_counts() == {"p1": 2, "p2": 1}


def test_nothing_is_recorded_for_a_model_not_stored(store) -> None:
    store.save_models([{"profileId": "p1"}])
    store.record_model_hosts("web-2", ["p1", "gone"], 10.0)
    store.record_model_hosts("web-2", [], 11.0)
    assert store.model_host_counts() == {"p1": 1}
    assert store.model_hosts("gone") == []


def test_deleting_a_model_deletes_its_hosts(store) -> None:
    store.save_models([{"profileId": "p1"}, {"profileId": "p2"}])
    store.record_model_hosts("web-2", ["p1", "p2"], 10.0)
    store.delete_models(["p1"])
    assert store.model_hosts("p1") == []
    assert store.model_host_counts() == {"p2": 1}
    store.save_models([{"profileId": "p1"}])  # the image's model made again: its hosts anew
    store.record_model_hosts("db-1", ["p1"], 20.0)
    assert store.model_hosts("p1") == [ModelHost("db-1", 20.0, 20.0)]


def test_a_host_needs_a_name(store) -> None:
    store.save_models([{"profileId": "p1"}])
    with pytest.raises(InvalidInput):
        store.record_model_hosts("", ["p1"], 10.0)
    assert store.model_host_counts() == {}


def test_a_model_host_as_json_has_camel_case_keys() -> None:
    assert ModelHost("web-2", 10.0, 30.0).to_json() == {
        "host": "web-2", "firstSaved": 10.0, "lastSaved": 30.0,
    }  # fmt: skip
