"""The pages' session cookie opens the API for reading; a change also needs the session's
CSRF token in a header (a cookie is sent by any page the browser shows, a header only by the
console's own pages)."""

from __future__ import annotations

from tests.api.conftest import Api

RULES = {"rules": []}


def test_a_session_cookie_reads_and_changes_only_with_its_csrf_token(api: Api) -> None:
    cookie, session = api.console.accounts().new_session("operator-1")
    client = api.client()
    client.cookies.set("garrison_session", cookie)
    assert client.get("/api/v1/users/me").json()["name"] == "operator-1"
    path = "/api/v1/policies/runtime/container"
    refused = client.put(path, json=RULES)
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["error"]
    assert (
        client.put(path, json=RULES, headers={"X-CSRF-Token": "x" + session.csrf}).status_code
        == 403
    )
    assert client.put(path, json=RULES, headers={"X-CSRF-Token": session.csrf}).status_code == 200


def test_an_ended_or_forged_session_is_401(api: Api) -> None:
    cookie, _ = api.console.accounts().new_session("auditor-1")
    api.console.accounts().end_session(cookie)
    for value in (cookie, "forged"):
        client = api.client()
        client.cookies.set("garrison_session", value)
        assert client.get("/api/v1/status").status_code == 401
