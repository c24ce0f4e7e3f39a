"""``/api/v1/profiles/container``: a model per image across hosts, listed with how many hosts
saved it and shown with each host's first and last save."""

from __future__ import annotations

PATH = "/api/v1/profiles/container"


def model(profile_id: str, image: str) -> dict[str, object]:
    return {"profileId": profile_id, "imageName": image, "imageId": "sha256:" + "e" * 64,
            "state": "active", "processes": [], "runningContainers": []}  # fmt: skip


def test_a_model_lists_its_host_count_and_shows_its_hosts_by_name(api) -> None:
    store = api.console.store
    store.save_models([model("p-shared", "shared:1"), model("p-alone", "alone:1")])
    store.record_model_hosts("node-2", ["p-shared"], 1000.0)
    store.record_model_hosts("node-1", ["p-shared"], 1005.0)
    store.record_model_hosts("node-2", ["p-shared"], 1010.0)
    client = api.client("auditor")
    listed = {m["profileId"]: m["hostCount"] for m in client.get(PATH).json()}
    assert (listed["p-shared"], listed["p-alone"]) == (2, 0)
    shown = client.get(f"{PATH}/shared:1").json()
    assert shown["processes"] == []  # the model whole, as before
    assert shown["hosts"] == [
        {"host": "node-1", "firstSaved": 1005.0, "lastSaved": 1005.0},
        {"host": "node-2", "firstSaved": 1000.0, "lastSaved": 1010.0},
    ]
    assert client.get(f"{PATH}/p-alone").json()["hosts"] == []
