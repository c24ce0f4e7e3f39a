"""Every page, for each role, on a store holding one of everything: it renders what the store
holds, asks for a login without a session, and changes nothing without the session's CSRF
token and the role a change needs."""

from __future__ import annotations

import re

import pytest

from garrison.web import ROUTERS
from tests.web.conftest import IMAGE, MINER, PROFILE, Site

PAGES = ["/", "/fragments/dashboard", "/audits", "/audits?effect=block", "/audits/rows",
         "/audits/1", "/blocked", "/models", f"/models/{PROFILE}", "/policy/runtime",
         "/policy/runtime/edit?rule=shop", "/policy/runtime/edit?all=1",
         "/policy/vulnerability", "/policy/compliance", "/images", f"/images/{IMAGE}",
         "/images/shop:1.4", "/incidents", "/incidents?state=", "/incidents/1", "/forensics",
         "/alerts"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_without_a_session_a_page_sends_to_the_login_form_and_back(site: Site, path: str) -> None:
    answer = site.client().get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/")


def test_a_live_refresh_without_a_session_redirects_the_whole_page(site: Site) -> None:
    answer = site.client().get("/audits/rows", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/login?next=/audits/rows"


def test_logging_in_sets_a_strict_http_only_cookie_and_returns_to_the_page(site: Site) -> None:
    client = site.client()
    form = {"name": "auditor-1", "password": "correct horse battery", "next": "/models"}
    answer = client.post("/login", data=form)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/models"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; tests/web/test_tls_cookie.py under TLS


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_after_login_only_a_path_of_the_console_is_followed(site: Site, target: str) -> None:
    form = {"name": "auditor-1", "password": "correct horse battery", "next": target}
    assert site.client().post("/login", data=form).headers["location"] == "/"


def test_a_wrong_password_is_refused_with_the_form_again(site: Site) -> None:
    answer = site.client().post("/login", data={"name": "auditor-1", "password": "nope"})
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text
    assert "garrison_session" not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_an_auditor_with_safe_headers(site: Site, path: str) -> None:
    client, _ = site.logged_in("auditor")
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    # every asset is the console's own: no CDN, no other site
    assert not re.search(r'(src|href)="(https?:)?//', answer.text)


def test_the_pages_show_what_the_store_holds(site: Site) -> None:
    client, _ = site.logged_in("auditor")
    dashboard = client.get("/").text
    assert "3 audits in 24 h" in text_of(dashboard)
    assert "batch-worker" in dashboard
    audits = client.get("/audits?effect=block").text
    assert "/usr/bin/xmrig launched" in audits
    assert "/usr/bin/nc launched" not in audits
    assert "batch-worker" in audits  # the blocked containers, listed with their block audits
    model = client.get(f"/models/{PROFILE}").text
    assert "/usr/sbin/nginx" in model
    assert "30m left" in model
    assert "Hosts (1) Host First saved Last saved node-7 " in text_of(model)  # that saved it
    policy = client.get("/policy/runtime").text
    assert policy.index("shop") < policy.index("everything else")
    images = text_of(client.get("/images").text)
    assert "shop:1.4" in images
    assert "debian 12.7" in images
    story = text_of(client.get("/incidents/1").text)
    assert "/usr/bin/nc launched" in story
    assert story.index("/usr/bin/nc launched") < story.index("/usr/bin/curl refused")
    alerts = text_of(client.get("/alerts").text)
    assert "ops" in alerts
    assert "s3cret" not in alerts  # the channel's secret is redacted
    assert "No bundle" in text_of(client.get("/forensics").text)
    report = text_of(client.get("/images/shop:1.4").text)
    assert "CVE-2024-0 critical libssl3" in report
    assert "GCIS-4.1" in report


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_an_auditor_sees_no_button_and_may_change_nothing(site: Site) -> None:
    client, csrf = site.logged_in("auditor")
    assert ">Unblock</button>" not in client.get("/blocked").text
    form = {"csrf_token": csrf, "rule": "shop", "direction": "down"}
    assert client.post("/policy/runtime/move", data=form).status_code == 403
    assert client.post(f"/blocked/{MINER}/unblock", data=form).status_code == 403
    assert [r.name for r in site.console.runtime_rules().rules] == ["shop", "everything else"]


def test_a_change_without_the_sessions_csrf_token_is_refused(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    for token in ("", csrf + "x"):
        form = {"csrf_token": token, "rule": "shop", "direction": "down"}
        answer = client.post("/policy/runtime/move", data=form)
        assert answer.status_code == 403
        assert "stale" in answer.text
    assert [r.name for r in site.console.runtime_rules().rules] == ["shop", "everything else"]


def test_an_error_is_a_page_not_json_nor_a_traceback(site: Site) -> None:
    client, _ = site.logged_in("auditor")
    for path in ("/audits/999999", "/models/nosuchimage", "/policy/nosuch", "/audits/-1"):
        answer = client.get(path)
        assert answer.status_code in (400, 404)
        assert answer.headers["content-type"].startswith("text/html")
        assert "Traceback" not in answer.text


def page_posts(site: Site) -> list[str]:
    """Every form target of the pages (their routers' POST routes), with the
    seeded objects' ids in place of the path's parameters."""
    values = {"ref": PROFILE, "op": "relearn", "incident_id": "1", "bundle_id": "b",
              "kind": "vulnerability"}  # fmt: skip
    del site
    found = []
    for module in ROUTERS:
        for route in module.router.routes:
            if "POST" in getattr(route, "methods", ()):
                path = getattr(route, "path", "")
                found.append(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path))
    return found


def test_every_form_target_needs_a_session_and_refuses_an_auditor(site: Site) -> None:
    posts = page_posts(site)
    assert len(posts) >= 10, posts
    auditor, csrf = site.logged_in("auditor")
    before = site.console.runtime_rules().digest(), site.console.pending_model_commands()
    for path in set(posts) - {"/login", "/logout"}:
        assert site.client().post(path, data={"x": "1"}).status_code == 303, path
        refused = auditor.post(path, data={"csrf_token": csrf, "rule": "shop", "text": "x"})
        assert refused.status_code in (403, 404), (path, refused.status_code)
    after = site.console.runtime_rules().digest(), site.console.pending_model_commands()
    assert after == before
