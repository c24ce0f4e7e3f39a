"""The manifests in deploy/kubernetes/: valid Kubernetes objects (strict schemas of 1.30 and of
the newest version kubernetes-validate ships), each listed by its kustomization, the
defender's host access exactly the table in docs/kubernetes.md, and the webhook's
registration pointing at the Service and the port and path `garrison admission serve` has.
The optional component pod-deletion/ grants the defender exactly `delete` on pods, and kubectl's
own kustomize builds the base with it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from garrison.cli.admission import DEFAULT_WEBHOOK_ADDRESS

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
TRIAL = ROOT / "deploy" / "kubernetes-trial"  # beside the base: kustomize refuses it inside
MANIFESTS = sorted(p for folder in (DEPLOY, TRIAL) for p in folder.rglob("*.yaml")
                   if p.name != "kustomization.yaml")  # fmt: skip
KUSTOMIZATIONS = sorted([*DEPLOY.rglob("kustomization.yaml"), TRIAL / "kustomization.yaml"])
VERSIONS = ["1.30", str(kubernetes_validate.latest_version())]
TABLE = "### What the defender may do on a node"
POD_DELETION = DEPLOY / "pod-deletion"
DOCKER_NODES = DEPLOY / "docker-nodes"
DOCKER_TABLE = "### Nodes that run Docker"
# What `kubectl apply -k deploy/kubernetes` creates: the optional components left out.
BASE = [p for p in MANIFESTS if POD_DELETION not in p.parents and TRIAL not in p.parents]


def objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    for path in MANIFESTS:
        for doc in objects(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY.parent)))
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


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=str)
def test_each_kustomization_lists_every_manifest_of_its_folder(kustomization: Path) -> None:
    folder = kustomization.parent
    listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
    files = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert {r for r in listed if r.endswith(".yaml")} == files
    for other in listed:  # folders: only the base, which has its own kustomization
        assert other.endswith(".yaml") or (folder / other / "kustomization.yaml").is_file()


def test_every_object_is_in_the_garrison_namespace() -> None:
    for path in MANIFESTS:
        for doc in objects(path):
            cluster_wide = doc["kind"] in (
                "Namespace",
                "ValidatingWebhookConfiguration",
                "ClusterRole",
                "ClusterRoleBinding",
            )
            assert cluster_wide or doc["metadata"]["namespace"] == "garrison", path


def documented_access(table: str = TABLE) -> dict[str, str]:
    """The table "What the defender may do on a node" (or another): access → value."""
    text = (ROOT / "docs" / "kubernetes.md").read_text()
    section = text.split(table, 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| [^|]+ \|$", section, re.MULTILINE)
    return {
        access.replace("`", "").strip(): value.replace("`", "").strip()
        for access, value in rows
        if access.strip() not in ("access", "---")
    }


def manifest_access(daemonset: dict[str, Any] | None = None) -> dict[str, str]:
    """The same, read from the DaemonSet (the base's unless given)."""
    daemonset = daemonset or find("DaemonSet", "garrison-defender")
    pod = daemonset["spec"]["template"]["spec"]
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
    kinds = {doc["kind"] for path in BASE for doc in objects(path)}
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


# --- pod-deletion/: the defender may delete the pod of a container it blocked ------------


def component(folder: Path = POD_DELETION) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return doc


def patched_defender(folder: Path = POD_DELETION) -> dict[str, Any]:
    """The DaemonSet as the component's JSON patch leaves it."""
    (patch,) = component(folder)["patches"]
    target = patch["target"]
    daemonset = find(target["kind"], target["name"])
    assert daemonset["apiVersion"] == f"{target['group']}/{target['version']}"
    assert daemonset["metadata"]["namespace"] == target["namespace"]
    for op in yaml.safe_load(patch["patch"]):
        json_patch(daemonset, op)
    return daemonset


def json_patch(doc: Any, op: dict[str, Any]) -> None:
    """One RFC 6902 operation of the kinds the component uses: test, replace, add."""
    *parents, last = op["path"].lstrip("/").split("/")
    for key in parents:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    at: int | str = int(last) if isinstance(doc, list) and last != "-" else last
    if op["op"] == "test":
        assert doc[at] == op["value"], op
    elif op["op"] == "replace":
        assert (at < len(doc)) if isinstance(at, int) else (at in doc), f"no {op['path']}"
        doc[at] = op["value"]
    elif op["op"] == "add" and last == "-":
        doc.append(op["value"])
    else:
        raise AssertionError(f"an operation this test does not apply: {op}")


def test_pod_deletion_is_a_component_added_to_the_base_not_applied_alone() -> None:
    doc = component()
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert doc["kind"] == "Component"
    base = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert "components" not in base  # off by default


def test_the_pod_deletion_role_grants_exactly_delete_on_pods() -> None:
    role = find("ClusterRole", "garrison-pod-deletion")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]
    assert "aggregationRule" not in role
    binding = find("ClusterRoleBinding", "garrison-pod-deletion")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "garrison-pod-deletion",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "garrison-defender", "namespace": "garrison"}
    ]
    service_account = find("ServiceAccount", "garrison-defender")
    assert service_account["metadata"]["namespace"] == "garrison"
    added = [path for path in MANIFESTS if POD_DELETION in path.parents]
    kinds = {doc["kind"] for path in added for doc in objects(path)}
    assert kinds == {"ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("version", VERSIONS)
def test_pod_deletion_mounts_the_token_and_turns_the_option_on_and_nothing_else(
    version: str,
) -> None:
    daemonset = patched_defender()
    kubernetes_validate.validate(daemonset, version, strict=True)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    (container,) = pod["containers"]
    assert {"name": "GARRISON_BLOCK_DELETES_POD", "value": "true"} in container["env"]
    base = find("DaemonSet", "garrison-defender")
    pod["automountServiceAccountToken"] = False
    container["env"].remove({"name": "GARRISON_BLOCK_DELETES_POD", "value": "true"})
    assert daemonset == base


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectls_kustomize_adds_exactly_the_component_to_the_base(tmp_path: Path) -> None:
    here = os.path.relpath(DEPLOY, tmp_path)  # kustomize takes relative paths only
    base = build(tmp_path / "base", {"resources": [f"../{here}"]})
    both = build(
        tmp_path / "both",
        {"resources": [f"../{here}"], "components": [f"../{here}/pod-deletion"]},
    )
    added = {key: doc for key, doc in both.items() if key not in base}
    assert set(added) == {("ClusterRole", "garrison-pod-deletion"),
                          ("ClusterRoleBinding", "garrison-pod-deletion")}  # fmt: skip
    changed = {key for key, doc in base.items() if both[key] != doc}
    assert changed == {("DaemonSet", "garrison-defender")}
    defender = both[("DaemonSet", "garrison-defender")]["spec"]["template"]["spec"]
    assert defender["automountServiceAccountToken"] is True
    assert defender == patched_defender()["spec"]["template"]["spec"]


def build(folder: Path, kustomization: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """``kubectl kustomize`` of a kustomization written in ``folder``: (kind, name) → object."""
    folder.mkdir()
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(doc | kustomization))
    built = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built.stdout) if d}


# --- docker-nodes/: the defender of nodes whose runtime is Docker ---------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_docker_nodes_defend_docker_with_exactly_the_documented_changes(version: str) -> None:
    daemonset = patched_defender(DOCKER_NODES)
    kubernetes_validate.validate(daemonset, version, strict=True)
    changed = documented_access(DOCKER_TABLE)
    base = documented_access()
    assert len(changed) >= 2  # the table was found and read
    containerd = {key for key in base if "containerd" in key}
    wanted = {k: v for k, v in base.items() if k not in containerd} | changed
    assert manifest_access(daemonset) == wanted
    command = daemonset["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-4:] == ["--runtime", "docker", "--docker-host", "unix:///var/run/docker.sock"]


def test_the_base_defends_containerds_kubernetes_namespace() -> None:
    command = find("DaemonSet", "garrison-defender")["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    assert command[-4:] == ["--runtime", "containerd", "--containerd-namespace", "k8s.io"]
    assert component(DOCKER_NODES)["kind"] == "Component"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectls_kustomize_builds_the_trial_as_the_base_and_a_postgresql() -> None:
    built = subprocess.run(["kubectl", "kustomize", str(TRIAL)], capture_output=True, text=True,
                           timeout=60, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(built.stdout) if d}
    assert ("DaemonSet", "garrison-defender") in kinds
    assert ("Secret", "garrison-store") in kinds
