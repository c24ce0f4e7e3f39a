"""docs/kubernetes.md against the code: its ValidatingWebhookConfiguration is valid for
Kubernetes 1.37 and registers what the webhook judges (pods and their ephemeral containers,
CREATE and UPDATE, AdmissionReview v1, no side effects on a dry run), and the defaults the
CLI shows are those of the modules that own them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from garrison.cli import admission as cli
from garrison.k8s import UNSCANNED_CHOICES, AdmissionSettings, webhook
from garrison.k8s._review import JUDGED_OPERATIONS, JUDGED_SUBRESOURCES
from tests.k8s.reviews import object_errors

DOC = Path(__file__).parents[2] / "docs" / "kubernetes.md"


def test_the_documented_webhook_configuration_is_valid_and_matches_the_webhook() -> None:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block is not None
    config = yaml.safe_load(block.group(1))
    assert object_errors(config) == []
    hook = config["webhooks"][0]
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "NoneOnDryRun"
    assert hook["clientConfig"]["service"]["path"] == "/validate"
    rule = hook["rules"][0]
    assert set(rule["operations"]) == JUDGED_OPERATIONS
    assert {r.partition("/")[2] for r in rule["resources"]} == JUDGED_SUBRESOURCES


def test_the_clis_defaults_are_the_owners() -> None:
    assert cli.DEFAULT_WEBHOOK_ADDRESS == webhook.DEFAULT_ADDRESS
    assert tuple(c.value for c in cli.UnscannedChoice) == UNSCANNED_CHOICES
    assert cli.UnscannedChoice.ADMIT.value == AdmissionSettings().unscanned
