"""Alert profiles: which audits go to which channel, with which aggregation period."""

from __future__ import annotations

import dataclasses

import pytest

from garrison.alerts.profiles import DEFAULT, DEFAULT_PERIOD, load_profiles
from garrison.audit.record import Audit
from garrison.errors import InvalidInput

AUDIT = Audit(
    time=1.0, hostname="node-1", type="processes", attackType="unexpectedProcess",
    effect="prevent", msg="m", containerName="web-1", imageName="nginx:1.25",
)  # fmt: skip

PROFILES = """
profiles:
  - name: pager
    channels: [pd]
    effects: [block, prevent]
    scope: [{images: ["nginx:*"]}]
    aggregation: 10s
  - name: soc
    channels: [mail, pd]
    types: [processes, network]
    attackTypes: [unexpectedProcess, cryptoMiner]
    aggregation: 1h
"""


def test_with_no_profiles_every_channel_receives_every_audit() -> None:
    assert DEFAULT.route(AUDIT, "anything") == DEFAULT_PERIOD
    assert load_profiles("").route(AUDIT, "x") == DEFAULT_PERIOD


def test_a_channel_takes_the_shortest_period_of_the_profiles_that_route_it() -> None:
    profiles = load_profiles(PROFILES)
    assert profiles.route(AUDIT, "pd") == 10.0
    assert profiles.route(AUDIT, "mail") == 3600.0
    assert profiles.route(AUDIT, "hook") is None, "no profile names it"


def test_types_attack_types_effects_and_scope_filter() -> None:
    profiles = load_profiles(PROFILES)
    alert_only = dataclasses.replace(AUDIT, effect="alert")
    assert profiles.route(alert_only, "pd") == 3600.0  # pager wants prevent or block
    elsewhere = dataclasses.replace(AUDIT, imageName="redis:7", attackType="driftBinary")
    assert profiles.route(elsewhere, "pd") is None
    files = dataclasses.replace(AUDIT, type="filesystem", imageName="redis:7")
    assert profiles.route(files, "mail") is None


def test_a_label_scope_matches_the_labels_the_audit_carries() -> None:
    profiles = load_profiles(
        "profiles: [{name: shop, channels: [m], scope: [{labels: ['team:shop', 'tier:f*']}]}]"
    )
    shop = dataclasses.replace(AUDIT, labels={"team": "shop", "app": "web"})
    assert profiles.route(shop, "m") == DEFAULT_PERIOD
    front = dataclasses.replace(AUDIT, labels={"tier": "front"})
    assert profiles.route(front, "m") == DEFAULT_PERIOD
    assert profiles.route(dataclasses.replace(AUDIT, labels={"team": "ops"}), "m") is None
    assert profiles.route(AUDIT, "m") is None, "an audit without labels is outside the scope"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("profiles: [{name: p, channels: [m], aggregation: 0.5s}]", "from 1s to 1d"),
        ("profiles: [{name: p, channels: [m], aggregation: 2d}]", "from 1s to 1d"),
        ("profiles: [{name: p, channels: []}]", "profiles.0.channels"),
        ("profiles: [{name: p, channels: [m], colour: red}]", "profiles.0.colour"),
        ("profiles: [{name: p, channels: [m], aggregation: soon}]", "not a duration"),
        ("profiles: [{name: p, channels: [m]", "p.yaml: line 1"),
    ],
)
def test_a_malformed_profile_is_refused_naming_the_field(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        load_profiles(text, "p.yaml")
