"""What an operator changes from the pages reaches the store as the CLI's commands would, and a
refused change shows the CLI's message (rule, field, line, column) with nothing saved."""

from __future__ import annotations

import re

from tests.web.conftest import MINER, PROFILE, Site

NC_PREVENT = """name: shop
scope: [{images: ["shop:*"]}]
processes: {denied: {effect: prevent, paths: [nc]}}
"""


def names(site: Site) -> list[str]:
    return [r.name for r in site.console.runtime_rules().rules]


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_rules_effect_changed_on_its_page_is_in_force(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    editor = client.get("/policy/runtime/edit?rule=shop").text
    assert "name: shop" in editor
    form = {"csrf_token": csrf, "rule": "shop", "text": NC_PREVENT}
    answer = client.post("/policy/runtime/edit", data=form)
    assert answer.status_code == 303
    assert site.console.runtime_rule("shop").processes.denied.effect == "prevent"
    assert names(site) == ["shop", "everything else"]  # edited in its place


def test_a_malformed_rule_shows_the_clis_message_and_saves_nothing(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    before = site.console.runtime_rules().digest()
    broken = "name: shop\nprocesses: {effect: [\n"
    answer = client.post("/policy/runtime/edit", data={"csrf_token": csrf, "rule": "shop",
                                                        "text": broken})  # fmt: skip
    assert answer.status_code == 400
    assert re.search(r"line \d+, column \d+", text_of(answer.text))
    assert "name: shop" in answer.text  # the text is kept to be fixed
    wrong = NC_PREVENT.replace("prevent", "obliterate")
    answer = client.post("/policy/runtime/edit", data={"csrf_token": csrf, "rule": "shop",
                                                        "text": wrong})  # fmt: skip
    assert answer.status_code == 400
    assert "rule &#39;shop&#39;, processes.denied.effect" in answer.text
    assert site.console.runtime_rules().digest() == before


def test_rules_are_added_first_reordered_and_deleted(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    new = "name: debug\nprocesses: {effect: block}\n"
    assert client.post("/policy/runtime/edit", data={"csrf_token": csrf, "rule": "",
                                                      "text": new}).status_code == 303  # fmt: skip
    assert names(site) == ["debug", "shop", "everything else"]
    move = {"csrf_token": csrf, "rule": "debug", "direction": "down"}
    assert client.post("/policy/runtime/move", data=move).status_code == 303
    assert names(site) == ["shop", "debug", "everything else"]
    gone = {"csrf_token": csrf, "rule": "debug"}
    assert client.post("/policy/runtime/delete", data=gone).status_code == 303
    assert names(site) == ["shop", "everything else"]


def test_a_rule_made_from_a_model_allows_what_it_learned(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    answer = client.post(f"/models/{PROFILE}/rule", data={"csrf_token": csrf})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/policy/runtime/edit?rule=from+model")
    rule = site.console.runtime_rules().rules[0]
    assert rule.name == "from model shop:1.4"
    assert rule.processes.allowed == ["/usr/sbin/nginx"]
    assert client.get(answer.headers["location"]).status_code == 200
    site.console.delete_runtime_rule(rule.name)


def test_learning_is_extended_from_the_models_page(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    answer = client.post(f"/models/{PROFILE}/extend", data={"csrf_token": csrf, "hours": "2"})
    assert answer.status_code == 303
    queued = site.console.pending_model_commands()[-1]
    assert (queued.op, queued.profile_id, queued.seconds) == ("extend", PROFILE, 7200.0)
    refused = client.post(f"/models/{PROFILE}/extend", data={"csrf_token": csrf, "hours": "-1"})
    assert refused.status_code == 400


def test_a_blocked_container_is_unblocked_from_its_page(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    answer = client.post(f"/blocked/{MINER}/unblock", data={"csrf_token": csrf})
    assert answer.status_code == 303
    assert site.console.list_blocked() == []
    assert "batch-worker is unblocked" in text_of(client.get(answer.headers["location"]).text)


def test_a_gate_policy_is_edited_with_its_checks(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    editor = client.get("/policy/vulnerability/edit").text
    assert "rules:" in editor
    bad = {"csrf_token": csrf, "text": "rules:\n  - name: x\n    effect: explode\n"}
    answer = client.post("/policy/vulnerability/edit", data=bad)
    assert answer.status_code == 400
    assert "effect" in text_of(answer.text)
    good = {"csrf_token": csrf, "text": "rules:\n  - name: strict\n    effect: block\n"}
    assert client.post("/policy/vulnerability/edit", data=good).status_code == 303
    assert "strict" in client.get("/policy/vulnerability").text


def test_an_incident_is_archived_and_reopened_from_its_page(site: Site) -> None:
    client, csrf = site.logged_in("operator")
    assert client.post("/incidents/1/archive", data={"csrf_token": csrf}).status_code == 303
    assert site.console.show_incident(1)[0].state == "archived"
    assert "No open incident" in text_of(client.get("/incidents").text)
    assert client.post("/incidents/1/reopen", data={"csrf_token": csrf}).status_code == 303
    assert site.console.show_incident(1)[0].state == "open"
