"""Every attack type a finding can name has its ATT&CK tactic and technique, and audits carry
them in JSON; attack types with none (custom rules, the gate) carry empty strings."""

from __future__ import annotations

import re

from garrison.audit.mitre import mitre_of
from garrison.audit.record import Audit
from garrison.policy.decision import AttackType


def test_every_attack_type_of_a_finding_but_a_custom_rule_has_a_tactic_and_technique() -> None:
    names = [v for k, v in vars(AttackType).items() if k.isupper()]
    assert len(names) > 15
    for name in names:
        mitre = mitre_of(name)
        if name == AttackType.CUSTOM_RULE:
            assert mitre is None
            continue
        assert mitre is not None, name
        assert re.fullmatch(r"TA\d{4}", mitre.tactic_id), name
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", mitre.technique_id), name


def test_an_audit_in_json_names_its_tactic_and_technique() -> None:
    miner = Audit(time=0.0, hostname="h", type="processes", attackType="cryptoMiner",
                  effect="alert", msg="m")  # fmt: skip
    doc = miner.to_json()
    assert (doc["mitreTactic"], doc["mitreTechnique"]) == (
        "TA0040 Impact", "T1496 Resource Hijacking")  # fmt: skip
    custom = Audit(time=0.0, hostname="h", type="processes", attackType="customRule",
                   effect="alert", msg="m")  # fmt: skip
    assert (custom.to_json()["mitreTactic"], custom.to_json()["mitreTechnique"]) == ("", "")
