"""Every route needs credentials, and each role may do exactly what it should: a table of
every route of the app and the role it needs, checked against the app itself (a new route
must be added here), then called with no credentials and as each role."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

# (method, path) → the lowest role that may call it.
NEEDS = {
    ("GET", "/api/v1/status"): "auditor",
    ("GET", "/api/v1/audits/runtime/container"): "auditor",
    ("GET", "/api/v1/audits/runtime/container/download"): "auditor",
    ("GET", "/api/v1/profiles/container"): "auditor",
    ("GET", "/api/v1/profiles/container/{ref}"): "auditor",
    ("POST", "/api/v1/profiles/container/{ref}/relearn"): "operator",
    ("POST", "/api/v1/profiles/container/{ref}/extend"): "operator",
    ("POST", "/api/v1/profiles/container/{ref}/learn-start"): "operator",
    ("POST", "/api/v1/profiles/container/{ref}/learn-stop"): "operator",
    ("GET", "/api/v1/policies/runtime/container"): "auditor",
    ("PUT", "/api/v1/policies/runtime/container"): "operator",
    ("GET", "/api/v1/policies/vulnerability/images"): "auditor",
    ("PUT", "/api/v1/policies/vulnerability/images"): "operator",
    ("GET", "/api/v1/policies/compliance/container"): "auditor",
    ("PUT", "/api/v1/policies/compliance/container"): "operator",
    ("GET", "/api/v1/containers"): "auditor",
    ("GET", "/api/v1/containers/blocked"): "auditor",
    ("POST", "/api/v1/containers/{ref}/unblock"): "operator",
    ("GET", "/api/v1/images"): "auditor",
    ("GET", "/api/v1/images/{ref}"): "auditor",
    ("GET", "/api/v1/incidents"): "auditor",
    ("GET", "/api/v1/incidents/{incident_id}"): "auditor",
    ("POST", "/api/v1/incidents/{incident_id}/archive"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/reopen"): "operator",
    ("GET", "/api/v1/forensics/bundles"): "auditor",
    ("GET", "/api/v1/forensics/bundles/{ref}"): "auditor",
    ("GET", "/api/v1/forensics/bundles/{ref}/download"): "operator",
    ("POST", "/api/v1/forensics/bundles/{ref}/pin"): "operator",
    ("POST", "/api/v1/forensics/bundles/{ref}/unpin"): "operator",
    ("GET", "/api/v1/alerts/channels"): "auditor",
    ("GET", "/api/v1/alerts/profiles"): "auditor",
    ("PUT", "/api/v1/alerts/profiles"): "admin",
    ("GET", "/api/v1/alerts/outbox"): "auditor",
    ("GET", "/api/v1/hosts"): "auditor",
    ("POST", "/api/v1/hosts/{name}/revoke"): "admin",
    ("GET", "/api/v1/users/me"): "auditor",
    ("GET", "/api/v1/users"): "admin",
    ("POST", "/api/v1/users"): "admin",
    ("DELETE", "/api/v1/users/{name}"): "admin",
    ("GET", "/api/v1/tokens"): "auditor",
    ("POST", "/api/v1/tokens"): "auditor",
    ("DELETE", "/api/v1/tokens/{token_id}"): "auditor",
}
RANK = {"auditor": 0, "operator": 1, "admin": 2}
PARAMS = {"{ref}": "nothing-here", "{incident_id}": "999", "{name}": "nobody",
          "{token_id}": "000000000000"}  # fmt: skip


def routes(api: Api) -> set[tuple[str, str]]:
    """Every operation the app publishes in its OpenAPI schema."""
    paths = api.app.openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def url(path: str) -> str:
    for name, value in PARAMS.items():
        path = path.replace(name, value)
    return path


def test_the_table_names_every_route_of_the_api(api: Api) -> None:
    assert routes(api) == set(NEEDS)


@pytest.mark.parametrize(("method", "path"), sorted(NEEDS))
def test_no_credentials_is_401_and_a_bad_token_too(api: Api, method: str, path: str) -> None:
    forged = api.client()
    forged.headers["Authorization"] = "Bearer gt_000000000000_forged"
    for client in (api.client(), forged):
        answer = client.request(method, url(path), json={})
        assert answer.status_code == 401, answer.text
        assert "error" in answer.json()


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
@pytest.mark.parametrize(("method", "path"), sorted(NEEDS))
def test_each_role_may_do_what_it_should_and_nothing_more(
    api: Api, role: str, method: str, path: str
) -> None:
    answer = api.client(role).request(method, url(path), json={})
    allowed = RANK[role] >= RANK[NEEDS[(method, path)]]
    if allowed:
        assert answer.status_code not in (401, 403), answer.text
    else:
        assert answer.status_code == 403, answer.text
        assert role in answer.json()["error"]
    assert answer.status_code < 500, answer.text
