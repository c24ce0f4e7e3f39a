"""``/api/v1/hosts``: the hosts of a console with their last status; revoking one (admin)."""

from __future__ import annotations

from garrison.store.base import HostRecord


def test_hosts_are_listed_with_their_status_and_revoked_by_an_admin(api) -> None:
    store = api.console.store
    store.enrol_host(HostRecord("node-1", "12345", 1000.0))
    store.set_status({"containers": 3}, source="defender:node-1")
    listed = api.client("auditor").get("/api/v1/hosts").json()
    (node,) = [h for h in listed if h["name"] == "node-1"]
    assert (node["serial"], node["revoked"], node["status"]) == ("12345", None, {"containers": 3})
    assert api.client("operator").post("/api/v1/hosts/node-1/revoke").status_code == 403
    done = api.client("admin").post("/api/v1/hosts/node-1/revoke")
    assert done.json() == {"name": "node-1", "revoked": True}
    assert store.get_host("node-1").revoked is not None
    assert api.client("admin").post("/api/v1/hosts/nobody/revoke").status_code == 404


def test_status_says_which_hosts_report(api) -> None:
    store = api.console.store
    now = api.console.clock()
    store.enrol_host(HostRecord("node-a", "1", now))
    store.host_seen("node-a", now)
    store.enrol_host(HostRecord("node-b", "2", now))  # never heard from
    hosts = {
        h["name"]: h["state"] for h in api.client("auditor").get("/api/v1/status").json()["hosts"]
    }
    assert (hosts["node-a"], hosts["node-b"]) == ("reporting", "silent")
