"""Under TLS the session cookie is also ``Secure``: a browser never sends it over plain HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.conftest import PASSWORD, Site


def test_a_login_over_https_sets_a_secure_strict_http_only_cookie(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver", follow_redirects=False)
    answer = client.post("/login", data={"name": "auditor-1", "password": PASSWORD})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("garrison_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert flag in cookie, cookie
