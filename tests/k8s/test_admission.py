"""The admission webhook's judge on real AdmissionReview v1 documents and a real SQLite store:
a pod of a clean image is admitted and one whose image breaks a blocking vulnerability rule is
refused with the reasons; compliance is read from the pod spec (privileged, host namespaces,
host paths, the user) and the image's report; init and ephemeral containers are judged, a
container an update leaves as it was is not; rules' scopes match the pod's namespace and
labels; an unscanned image follows the setting; every answer is one the API server takes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.console import Console
from garrison.errors import InvalidInput
from garrison.k8s import AdmissionSettings
from garrison.k8s.admission import MAX_WARNING, Admission
from garrison.k8s.wiring import stored_admission
from garrison.scan.report import image_report
from garrison.scan.rules import save_policy
from garrison.scan.types import Inventory, OSInfo, ScanResult, Severity
from tests.k8s.reviews import answer_problems, body, load, object_errors, pod_review, schema_errors
from tests.store.test_store_scans import OPENSSL, ROOT, finding, report

SHOP_ID = "sha256:" + "5a" * 32
TOOLS_ID = "sha256:" + "70" * 32
BUSYBOX_ID = "sha256:" + "b7" * 32
PINNED = "sha256:" + "e4" * 32
BLOCK_CRITICAL = [{"name": "no critical", "effect": "block"}]
NO_PRIVILEGED = [{"name": "no privileged", "checks": {"5.4": "block"}}]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    with Console.open(tmp_path / "data") as opened:
        yield opened


def judge(admission: Admission, doc: dict[str, Any]) -> dict[str, Any]:
    """The answer, checked as the API server checks it."""
    answer = admission.review(body(doc))
    assert answer_problems(answer, doc["request"]["uid"]) == []
    response: dict[str, Any] = answer["response"]
    return response


def webhook(console: Console, vulnerability: Any = None, compliance: Any = None,
            **settings: Any) -> Admission:  # fmt: skip
    if vulnerability is not None:
        save_policy(console.store, "vulnerability", vulnerability)
    if compliance is not None:
        save_policy(console.store, "compliance", compliance)
    return stored_admission(console.store, AdmissionSettings(**settings))


def test_the_documents_are_admission_reviews_of_valid_kubernetes_objects() -> None:
    for name in ("pod_create.json", "deployment_create.json", "pod_ephemeral_update.json"):
        doc = load(name)
        assert schema_errors(doc) == [], name
        for key in ("object", "oldObject"):
            if doc["request"][key] is not None:
                assert object_errors(doc["request"][key]) == [], (name, key)


def test_a_pod_of_a_clean_image_is_admitted_without_warnings(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0, Severity.LOW))
    admission = webhook(console, BLOCK_CRITICAL)

    response = judge(admission, pod_review())

    assert response == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}
    effects = {(a.type, a.effect, a.imageId) for a in console.list_audits()}
    assert effects == {("vulnerability", "allow", SHOP_ID), ("compliance", "allow", SHOP_ID)}


def test_a_pod_whose_image_breaks_a_blocking_vulnerability_rule_is_refused_with_reasons(
    console: Console,
) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0, Severity.CRITICAL, Severity.LOW))
    admission = webhook(console, BLOCK_CRITICAL)

    response = judge(admission, pod_review("docker.io/library/shop:1.4"))

    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert message.startswith("container web (docker.io/library/shop:1.4): [Garrison] ")
    assert "blocked by policy: no critical, has 1 vulnerability, [critical:1]" in message
    blocked = [a for a in console.list_audits() if a.effect == "block"]
    assert [(a.type, a.ruleName, a.containerName, a.imageId) for a in blocked] == [
        ("vulnerability", "no critical", "web", SHOP_ID)
    ]
    assert blocked[0].labels["io.kubernetes.pod.namespace"] == "shop"
    assert blocked[0].labels["app"] == "shop"


def test_a_privileged_container_is_refused_naming_the_check(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0))
    admission = webhook(console, compliance=NO_PRIVILEGED)
    doc = pod_review(securityContext={"privileged": True})
    assert object_errors(doc["request"]["object"]) == []

    response = judge(admission, doc)

    assert response["allowed"] is False
    assert (
        "no privileged, violates 1 compliance check: GCIS-5.4 Privileged container"
        in (response["status"]["message"])
    )


def test_an_init_container_is_judged_like_the_others(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0))
    console.store.save_scan(report("tools:1", TOOLS_ID, 100.0, Severity.CRITICAL))
    admission = webhook(console, BLOCK_CRITICAL)
    doc = pod_review()
    spec = doc["request"]["object"]["spec"]
    spec["initContainers"] = [{"name": "migrate", "image": "tools:1",
                               "terminationMessagePolicy": "File"}]  # fmt: skip
    assert object_errors(doc["request"]["object"]) == []

    response = judge(admission, doc)

    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.startswith("initContainer migrate (tools:1): ")
    assert "container web" not in message


def test_a_deployment_is_allowed_without_a_look(console: Console) -> None:
    admission = webhook(console, BLOCK_CRITICAL, NO_PRIVILEGED)

    response = judge(admission, load("deployment_create.json"))

    assert response == {"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "allowed": True}
    assert console.list_audits() == []


def test_an_ephemeral_container_is_judged_and_the_containers_already_there_are_not(
    console: Console,
) -> None:
    console.store.save_scan(report("busybox:1.36", BUSYBOX_ID, 100.0, Severity.CRITICAL))
    doc = load("pod_ephemeral_update.json")
    # The running container is privileged: the rule does not apply to what was admitted.
    assert judge(webhook(console, compliance=NO_PRIVILEGED), doc)["allowed"] is True

    response = judge(webhook(console, BLOCK_CRITICAL), doc)

    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "ephemeralContainer debugger-7xk2q (busybox:1.36): "
    )


def test_an_update_that_changes_an_image_judges_the_new_image(console: Console) -> None:
    console.store.save_scan(report("shop:1.5", SHOP_ID, 100.0, Severity.CRITICAL))
    admission = webhook(console, BLOCK_CRITICAL)
    doc = pod_review("shop:1.5")
    old = copy.deepcopy(doc["request"]["object"])
    old["spec"]["containers"][0]["image"] = "shop:1.4"
    doc["request"].update(operation="UPDATE", oldObject=old)
    doc["request"]["options"]["kind"] = "UpdateOptions"

    assert judge(admission, doc)["allowed"] is False
    doc["request"]["oldObject"] = copy.deepcopy(doc["request"]["object"])  # labels only
    assert judge(admission, doc)["allowed"] is True


def test_alerting_findings_admit_the_pod_with_short_warnings(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0, Severity.HIGH, Severity.CRITICAL))
    admission = webhook(console)  # the defaults: alert on high and critical, on every check
    doc = pod_review(securityContext={}, resources={})

    response = judge(admission, doc)

    assert response["allowed"] is True
    warnings = response["warnings"]
    assert len(warnings) == 2
    assert (
        "alerted by policy: Default - alert on critical and high, has 2 vulnerabilities"
        in (warnings[0])
    )
    assert warnings[1].startswith("container web (shop:1.4): [Garrison] Container operation "
                                  "alerted by policy: Default - alert on all checks")  # fmt: skip
    assert all(len(w) <= MAX_WARNING for w in warnings)
    audit = next(a for a in console.list_audits() if a.type == "compliance")
    assert audit.msg.endswith(  # whole in the audit
        "violates 4 compliance checks: GCIS-5.10 No memory limit; GCIS-5.12 Root file system "
        "is writable; GCIS-5.25 Container can gain new privileges; GCIS-4.1 Image runs as root"
    )


def test_an_unscanned_image_is_admitted_with_an_alert_by_default(console: Console) -> None:
    admission = webhook(console, BLOCK_CRITICAL)

    response = judge(admission, pod_review("never-scanned:3"))

    assert response["allowed"] is True
    assert response["warnings"][0].startswith("container web (never-scanned:3): ")
    assert response["warnings"][0].endswith("the image has no scan report (garrison scan image "
                                            "stores one)")  # fmt: skip
    audit = next(a for a in console.list_audits() if a.type == "vulnerability")
    assert (audit.effect, audit.ruleName) == ("alert", "no critical")
    assert "has no scan report" in audit.msg


def test_an_unscanned_image_is_refused_under_a_blocking_rule_when_set_to_refuse(
    console: Console,
) -> None:
    admission = webhook(console, BLOCK_CRITICAL, unscanned="refuse")
    response = judge(admission, pod_review("never-scanned:3"))
    assert response["allowed"] is False
    assert "no critical, the image has no scan report" in (response["status"]["message"])

    alerting = webhook(console, [{"name": "watch", "effect": "alert"}], unscanned="refuse")
    assert judge(alerting, pod_review("never-scanned:3"))["allowed"] is True


def test_an_image_pinned_by_digest_is_judged_on_the_report_of_that_digest(
    console: Console,
) -> None:
    inventory = Inventory(SHOP_ID, "shop:1.4", OSInfo("debian", "12.7"), (OPENSSL,))
    result = ScanResult(inventory, (finding("CVE-2024-9", Severity.CRITICAL),), (ROOT,), ())
    console.store.save_scan(image_report(result, SHOP_ID, f"shop@{PINNED}", 100.0))
    admission = webhook(console, BLOCK_CRITICAL)

    assert judge(admission, pod_review(f"registry.example/shop@{PINNED}"))["allowed"] is False
    other = "sha256:" + "0f" * 32
    response = judge(admission, pod_review(f"shop:1.4@{other}"))  # the tag's report: not it
    assert response["allowed"] is True
    assert "has no scan report" in response["warnings"][0]


@pytest.mark.parametrize(
    ("context", "refused"),
    [
        ({}, True),  # the image's USER (root, says its report)
        ({"runAsNonRoot": True}, False),  # the kubelet will not start it as root
        ({"runAsUser": 0, "runAsNonRoot": False}, True),
        ({"runAsUser": 10001}, False),
    ],
    ids=["image-user", "runAsNonRoot", "runAsUser-0", "runAsUser-10001"],
)
def test_the_user_a_container_runs_as_decides_gcis_4_1(
    console: Console, context: dict[str, Any], refused: bool
) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0))  # its report has GCIS-4.1
    admission = webhook(console, compliance=[{"name": "no root", "checks": {"4.1": "block"}}])

    response = judge(admission, pod_review(securityContext=context))

    assert response["allowed"] is not refused
    if refused:
        assert "GCIS-4.1 Image runs as root" in response["status"]["message"]


def test_the_pod_level_user_applies_when_the_container_sets_none(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0))
    admission = webhook(console, compliance=[{"name": "no root", "checks": {"4.1": "block"}}])
    doc = pod_review(securityContext={})
    doc["request"]["object"]["spec"]["securityContext"] = {"runAsUser": 1000}
    assert judge(admission, doc)["allowed"] is True


@pytest.mark.parametrize(
    ("collection", "applies"),
    [
        ({"namespaces": ["shop"]}, True),
        ({"namespaces": ["payments"]}, False),
        ({"labels": ["app:shop"]}, True),
        ({"labels": ["io.kubernetes.pod.namespace:shop"]}, True),  # as the gate sees the pod
        ({"containers": ["web"]}, True),
        ({"images": ["shop:*"]}, True),
        ({"hosts": ["node-7"]}, False),  # the pod is not scheduled yet
    ],
    ids=lambda v: str(v) if not isinstance(v, bool) else "",
)
def test_rule_scopes_match_the_pods_namespace_labels_container_and_image(
    console: Console, collection: dict[str, Any], applies: bool
) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0, Severity.CRITICAL))
    rule = {"name": "scoped", "effect": "block", "collections": [collection]}
    admission = webhook(console, [rule])
    assert judge(admission, pod_review())["allowed"] is not applies


def test_a_dry_run_is_judged_but_leaves_no_audit(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0, Severity.CRITICAL))
    admission = webhook(console, BLOCK_CRITICAL)
    doc = pod_review()
    doc["request"]["dryRun"] = True
    assert judge(admission, doc)["allowed"] is False
    assert console.list_audits() == []


def test_a_failing_audit_sink_does_not_change_the_answer(console: Console) -> None:
    console.store.save_scan(report("shop:1.4", SHOP_ID, 100.0, Severity.CRITICAL))
    admission = webhook(console, BLOCK_CRITICAL)

    def broken(_audit: object) -> None:
        raise OSError("disk full")

    admission.on_audit = broken
    assert judge(admission, pod_review())["allowed"] is False


def _without(path: tuple[Any, ...]) -> bytes:
    doc = pod_review()
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body(doc)


def _with(path: tuple[Any, ...], value: Any) -> bytes:
    doc = pod_review()
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body(doc)


SPEC = ("request", "object", "spec")
MALFORMED = {
    "empty": (b"", "not JSON"),
    "not json": (b"{\"apiVersion\": ", "not JSON"),
    "not utf-8": (b"\xff\xfe{}", "not UTF-8"),
    "a list": (b"[]", "must be a JSON object, not a list"),
    "v1beta1": (_with(("apiVersion",), "admission.k8s.io/v1beta1"), "expected apiVersion"),
    "no request": (_without(("request",)), "request must be a JSON object, not null"),
    "no uid": (_without(("request", "uid")), "request.uid must be a non-empty string"),
    "no kind": (_without(("request", "kind")), "request.kind must be a JSON object"),
    "operation number": (_with(("request", "operation"), 7), "request.operation must be"),
    "no object": (_with(("request", "object"), None), "request.object must be a JSON object"),
    "containers object": (_with((*SPEC, "containers"), {}), "containers must be a list"),
    "no image": (_without((*SPEC, "containers", 0, "image")), "containers[0].image must be"),
    "label number": (_with(("request", "object", "metadata", "labels"), {"a": 1}),
                     "metadata.labels must map names to strings"),
}  # fmt: skip


@pytest.mark.parametrize(("raw", "says"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_body_is_refused_with_a_clear_message(
    console: Console, raw: bytes, says: str
) -> None:
    admission = webhook(console)
    with pytest.raises(InvalidInput, match=says.replace("[", r"\[").replace(".", r"\.")):
        admission.review(raw)
