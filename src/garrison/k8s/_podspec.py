"""A pod's container read as the compliance checks read a Docker container.

The checks of ``garrison.scan.compliance`` are written once, over ``ContainerSpec`` (the
parts of a ``docker create`` body they read). Here a container of a pod spec (core/v1) is
turned into one, field by field, so that a privileged pod fails ``GCIS-5.4`` exactly as
``docker run --privileged`` does:

=============================================  =====================================
pod spec                                       Docker (check)
=============================================  =====================================
``securityContext.privileged``                 ``Privileged`` (5.4)
``securityContext.capabilities.add``           ``CapAdd`` (5.3)
``hostNetwork``                                ``NetworkMode: host`` (5.9) and
                                               ``UTSMode: host`` (5.20)
``hostPID`` / ``hostIPC``                      ``PidMode`` (5.15) / ``IpcMode`` (5.16)
``hostPath`` volumes mounted                   bind mounts (5.5, 5.19, 5.31)
``ports[].hostPort``                           ``PortBindings`` (5.7)
``resources.limits.memory``                    ``Memory`` (5.10)
``securityContext.readOnlyRootFilesystem``     ``ReadonlyRootfs`` (5.12)
``allowPrivilegeEscalation: false``            ``no-new-privileges`` (5.25)
``seccompProfile.type: Unconfined``            ``seccomp=unconfined`` (5.21)
``appArmorProfile.type: Unconfined``           ``apparmor=unconfined`` (5.1)
``runAsUser`` / ``runAsNonRoot``               the container's user (4.1)
=============================================  =====================================

Checks a pod spec cannot express are not run on pods: 5.14 (a pod's ``restartPolicy:
Always`` is how a Deployment's pods run, with the kubelet's back-off), 5.17 (devices come
from device plugins, not the spec), 5.28 (the PIDs limit is the kubelet's ``podPidsLimit``),
5.30 (``hostUsers`` defaults to the host's user namespace on every cluster).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from garrison.scan.compliance import ContainerSpec, Mount
from garrison.scan.compliance.catalog import run_checks
from garrison.scan.compliance.container import CONTAINER_CHECKS
from garrison.scan.compliance.image import RUNS_AS_ROOT, with_container_user
from garrison.scan.types import ComplianceIssue

POD_CHECKS = frozenset(
    f"GCIS-{n}"
    for n in ("5.1", "5.3", "5.4", "5.5", "5.7", "5.9", "5.10", "5.12", "5.15", "5.16", "5.19",
              "5.20", "5.21", "5.25", "5.31")
)  # fmt: skip
_CHECKS = tuple(c for c in CONTAINER_CHECKS if c.info.check_id in POD_CHECKS)
# volumeMounts[].mountPropagation as the kubelet passes it to the runtime (CRI
# MountPropagation: Bidirectional is rshared, HostToContainer rslave).
_PROPAGATION = {"Bidirectional": "rshared", "HostToContainer": "rslave"}
# The annotation that set AppArmor before securityContext.appArmorProfile (Kubernetes 1.30).
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def check_pod_container(
    spec: Mapping[str, Any], container: Mapping[str, Any], annotations: Mapping[str, str]
) -> list[ComplianceIssue]:
    """The container checks a pod spec can fail, for one of its containers."""
    return run_checks(_CHECKS, container_spec(spec, container, annotations))


def container_spec(
    spec: Mapping[str, Any], container: Mapping[str, Any], annotations: Mapping[str, str]
) -> ContainerSpec:
    """The container as ``docker create`` would have been told to make it."""
    context = _map(container.get("securityContext"))
    host: dict[str, Any] = {
        "Privileged": context.get("privileged") is True,
        "CapAdd": [str(c) for c in _seq(_map(context.get("capabilities")).get("add"))],
        "NetworkMode": _host_if(spec.get("hostNetwork")),
        # containerd's CRI plugin gives a pod on the host's network the host's UTS namespace
        # too (containerd, CRI sandbox_run_linux.go: host network drops both namespaces).
        "UTSMode": _host_if(spec.get("hostNetwork")),
        "PidMode": _host_if(spec.get("hostPID")),
        "IpcMode": _host_if(spec.get("hostIPC")),
        "PortBindings": _port_bindings(container),
        "Memory": 1 if _has_memory_limit(container) else 0,
        "ReadonlyRootfs": context.get("readOnlyRootFilesystem") is True,
        "SecurityOpt": list(_security_opts(spec, container, annotations)),
    }
    mounts = tuple(_host_mounts(spec, container))
    return ContainerSpec(config={"User": container_user(spec, container)}, host=host,
                         mounts=mounts)  # fmt: skip


def image_issues_for(
    spec: Mapping[str, Any], container: Mapping[str, Any], issues: Sequence[ComplianceIssue]
) -> list[ComplianceIssue]:
    """The image's issues as they hold for this container: ``runAsUser`` overrides the
    image's USER (GCIS-4.1 is judged on it), and with ``runAsNonRoot: true`` the kubelet
    refuses to start the container as root (pkg/kubelet/kuberuntime security_context_others.go
    ``verifyRunAsNonRoot``), so it never runs as root."""
    user = container_user(spec, container)
    if user:
        return with_container_user(issues, user)
    if _effective(spec, container, "runAsNonRoot") is True:
        return [i for i in issues if i.check_id != RUNS_AS_ROOT.check_id]
    return list(issues)


def container_user(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """``runAsUser`` (the container's, else the pod's) as a ``--user``; "" when unset."""
    uid = _effective(spec, container, "runAsUser")
    return str(uid) if isinstance(uid, int) and not isinstance(uid, bool) else ""


def _effective(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A container's security setting wins over the pod's (core/v1 SecurityContext)."""
    own = _map(container.get("securityContext")).get(key)
    return own if own is not None else _map(spec.get("securityContext")).get(key)


def _security_opts(
    spec: Mapping[str, Any], container: Mapping[str, Any], annotations: Mapping[str, str]
) -> Iterator[str]:
    if _map(container.get("securityContext")).get("allowPrivilegeEscalation") is False:
        yield "no-new-privileges"
    if _map(_effective(spec, container, "seccompProfile")).get("type") == "Unconfined":
        yield "seccomp=unconfined"
    apparmor = _map(_effective(spec, container, "appArmorProfile")).get("type")
    annotation = annotations.get(APPARMOR_ANNOTATION + str(container.get("name", "")))
    if apparmor == "Unconfined" or annotation == "unconfined":
        yield "apparmor=unconfined"


def _host_mounts(spec: Mapping[str, Any], container: Mapping[str, Any]) -> Iterator[Mount]:
    host_paths = {}
    for volume in _seq(spec.get("volumes")):
        path = _map(_map(volume).get("hostPath")).get("path")
        if isinstance(path, str) and path:
            host_paths[str(_map(volume).get("name"))] = path
    for item in _seq(container.get("volumeMounts")):
        mount = _map(item)
        source = host_paths.get(str(mount.get("name")))
        if source is not None:
            yield Mount(
                source=source,
                target=str(mount.get("mountPath", "")),
                writable=mount.get("readOnly") is not True,
                propagation=_PROPAGATION.get(str(mount.get("mountPropagation")), ""),
            )


def _port_bindings(container: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for item in _seq(container.get("ports")):
        port = _map(item)
        host_port = port.get("hostPort")
        if isinstance(host_port, int) and not isinstance(host_port, bool) and host_port > 0:
            key = f"{port.get('containerPort')}/{str(port.get('protocol') or 'TCP').lower()}"
            bindings.setdefault(key, []).append({"HostPort": str(host_port)})
    return bindings


def _has_memory_limit(container: Mapping[str, Any]) -> bool:
    limit = _map(_map(container.get("resources")).get("limits")).get("memory")
    return limit not in (None, "", 0, "0")


def _host_if(value: Any) -> str:
    return "host" if value is True else ""


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else ()
