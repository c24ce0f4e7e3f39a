"""The manifests in deploy/kubernetes/: valid Kubernetes objects (strict schemas of 1.30 and of
the newest version kubernetes-validate ships), each listed by its kustomization, the
defender's host access exactly the table in docs/kubernetes.md, and the webhook's
registration pointing at the Service and the port and path `garrison admission serve` has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from garrison.cli.admission import DEFAULT_WEBHOOK_ADDRESS

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")
VERSIONS = ["1.30", str(kubernetes_validate.latest_version())]
TABLE = "### What the defender may do on a node"


def objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    for path in MANIFESTS:
        for doc in objects(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_object_is_valid_for_kubernetes(path: Path, version: str) -> None:
    docs = objects(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_an_unknown_field() -> None:
    daemonset = find("DaemonSet", "garrison-defender")
    daemonset["spec"]["template"]["spec"]["hostPid"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, VERSIONS[0], strict=True)


@pytest.mark.parametrize("kustomization", sorted(DEPLOY.rglob("kustomization.yaml")), ids=str)
def test_each_kustomization_lists_every_manifest_of_its_folder(kustomization: Path) -> None:
    folder = kustomization.parent
    listed = yaml.safe_load(kustomization.read_text())["resources"]
    files = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert {r for r in listed if r.endswith(".yaml")} == files
    for other in listed:  # folders: only the base, which has its own kustomization
        assert other.endswith(".yaml") or (folder / other / "kustomization.yaml").is_file()


def test_every_object_is_in_the_garrison_namespace() -> None:
    for path in MANIFESTS:
        for doc in objects(path):
            cluster_wide = doc["kind"] in ("Namespace", "ValidatingWebhookConfiguration")
            assert cluster_wide or doc["metadata"]["namespace"] == "garrison", path


def documented_access() -> dict[str, str]:
    """The table "What the defender may do on a node": access → value."""
    text = (ROOT / "docs" / "kubernetes.md").read_text()
    section = text.split(TABLE, 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| [^|]+ \|$", section, re.MULTILINE)
    return {
        access.replace("`", "").strip(): value.replace("`", "").strip()
        for access, value in rows
        if access.strip() not in ("access", "---")
    }


def manifest_access() -> dict[str, str]:
    """The same, read from the DaemonSet."""
    pod = find("DaemonSet", "garrison-defender")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    context = container["securityContext"]
    access = {
        key: str(pod.get(key, False)).lower() for key in ("hostPID", "hostNetwork", "hostIPC")
    }
    access["privileged"] = str(context.get("privileged", False)).lower()
    assert context["capabilities"]["drop"] == ["ALL"]
    for cap in context["capabilities"]["add"]:
        access[f"capability {cap}"] = "added"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for volume in pod["volumes"]:
        if "hostPath" in volume:
            mount = mounts[volume["name"]]
            path = volume["hostPath"]["path"]
            assert mount["mountPath"] == path, "a host path is mounted where it is on the host"
            access[f"host path {path}"] = "read-only" if mount.get("readOnly") else "read-write"
    return access


def test_the_defender_may_do_exactly_what_docs_kubernetes_md_lists() -> None:
    documented = documented_access()
    assert len(documented) >= 10  # the table was found and read
    assert manifest_access() == documented


def test_the_defender_is_root_but_not_privileged_and_uses_no_kubernetes_api() -> None:
    pod = find("DaemonSet", "garrison-defender")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    kinds = {doc["kind"] for path in MANIFESTS for doc in objects(path)}
    assert not kinds & {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def test_the_webhook_registration_reaches_garrison_admission_serve() -> None:
    (webhook,) = find("ValidatingWebhookConfiguration", "garrison")["webhooks"]
    target = webhook["clientConfig"]["service"]
    service = find("Service", target["name"])
    assert service["metadata"]["namespace"] == target["namespace"]
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == target["port"]]
    pod = find("Deployment", "garrison-admission")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (named,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    command = container["command"]
    assert command[:3] == ["garrison", "admission", "serve"]
    listen = command[command.index("--address") + 1]
    default_port = int(DEFAULT_WEBHOOK_ADDRESS.rsplit(":", 1)[1])
    assert named["containerPort"] == int(listen.rsplit(":", 1)[1]) == default_port
    assert target["path"] == "/validate"
    assert service["spec"]["selector"].items() <= pod_labels("garrison-admission").items()
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "NoneOnDryRun"
    assert webhook["timeoutSeconds"] == 5
    excluded = webhook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert set(excluded) == {"kube-system", "garrison"}


def pod_labels(deployment: str) -> dict[str, str]:
    labels: dict[str, str] = find("Deployment", deployment)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def test_the_defenders_dial_the_console_service_by_a_name_in_its_certificate() -> None:
    command = find("DaemonSet", "garrison-defender")["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    url = command[command.index("--console") + 1]
    host, port = url.removeprefix("https://").split(":")
    service = find("Service", "garrison-console")
    (listener,) = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    console = find("Deployment", "garrison-console")["spec"]["template"]["spec"]["containers"][0]
    (named,) = [p for p in console["ports"] if p["name"] == listener["targetPort"]]
    serve = console["command"]
    names = [serve[i + 1] for i, word in enumerate(serve) if word == "--defender-name"]
    assert host in names
    address = serve[serve.index("--defender-address") + 1]
    assert named["containerPort"] == int(address.rsplit(":", 1)[1])
