"""Container configuration checks (CIS Docker Benchmark v1.6, section 5) and exec checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from garrison.scan.compliance.catalog import Check, info
from garrison.scan.compliance.spec import ContainerSpec
from garrison.scan.compliance.users import ROOT
from garrison.scan.types import Severity

# Docker's default capability set (moby oci/caps/defaults.go): adding one of these changes nothing.
DEFAULT_CAPS = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    }
)  # fmt: skip
# CIS 5.5 names these host directories.
SENSITIVE_DIRS = frozenset({"/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"})
RUNTIME_SOCKETS = ("docker.sock", "containerd.sock", "crio.sock")
PRIVILEGED_PORT_LIMIT = 1024

C, H, M, L = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW


def _apparmor_unconfined(spec: ContainerSpec) -> str | None:
    return "apparmor=unconfined" if "apparmor=unconfined" in spec.security_opts() else None


def _capabilities(spec: ContainerSpec) -> str | None:
    added = sorted({cap for cap in spec.capabilities_added() if cap not in DEFAULT_CAPS})
    return f"capabilities added: {', '.join(added)}" if added else None


def _privileged(spec: ContainerSpec) -> str | None:
    return "Privileged: true" if spec.host.get("Privileged") is True else None


def _is_sensitive(source: str, writable: bool) -> bool:
    path = source.rstrip("/") or "/"
    if path in SENSITIVE_DIRS:
        return True
    under = any(path.startswith(d + "/") for d in SENSITIVE_DIRS - {"/", "/usr", "/lib"})
    return under and writable and not path.endswith(RUNTIME_SOCKETS)


def _sensitive_mounts(spec: ContainerSpec) -> str | None:
    hits = [f"{m.source}:{m.target}" for m in spec.mounts if _is_sensitive(m.source, m.writable)]
    return f"host paths mounted: {', '.join(hits)}" if hits else None


def _privileged_ports(spec: ContainerSpec) -> str | None:
    bindings = spec.host.get("PortBindings")
    ports = []
    for binds in bindings.values() if isinstance(bindings, Mapping) else []:
        for bind in binds if isinstance(binds, list) else []:
            port = str(bind.get("HostPort", "")) if isinstance(bind, Mapping) else ""
            if port.isdigit() and 0 < int(port) < PRIVILEGED_PORT_LIMIT:
                ports.append(port)
    return f"host ports: {', '.join(sorted(set(ports)))}" if ports else None


def _host_mode(key: str) -> Check[ContainerSpec]:
    names = {"NetworkMode": "5.9", "PidMode": "5.15", "IpcMode": "5.16", "UTSMode": "5.20"}
    titles = {"NetworkMode": "network", "PidMode": "PID", "IpcMode": "IPC", "UTSMode": "UTS"}
    severity = M if key == "UTSMode" else H
    flag = f"--{titles[key].lower()}"
    meta = info(
        names[key],
        f"Container shares the host's {titles[key]} namespace",
        severity,
        f"Do not run with {flag}=host; give the container its own namespace.",
        "container",
    )

    def test(spec: ContainerSpec) -> str | None:
        return f"{key}: host" if spec.mode(key) == "host" else None

    return Check(meta, test)


def _memory(spec: ContainerSpec) -> str | None:
    return "no memory limit" if spec.number("Memory") <= 0 else None


def _read_only(spec: ContainerSpec) -> str | None:
    return None if spec.host.get("ReadonlyRootfs") is True else "root file system is writable"


def _restart_policy(spec: ContainerSpec) -> str | None:
    policy = spec.host.get("RestartPolicy")
    name = policy.get("Name", "") if isinstance(policy, Mapping) else ""
    return f"restart policy {name}" if name in {"always", "unless-stopped"} else None


def _devices(spec: ContainerSpec) -> str | None:
    devices = spec.host.get("Devices")
    paths = [str(d.get("PathOnHost", "")) for d in devices or [] if isinstance(d, Mapping)]
    return f"host devices: {', '.join(paths)}" if paths else None


def _propagation(spec: ContainerSpec) -> str | None:
    shared = [m.source for m in spec.mounts if m.propagation in {"shared", "rshared"}]
    return f"shared mount propagation: {', '.join(shared)}" if shared else None


def _seccomp(spec: ContainerSpec) -> str | None:
    return "seccomp=unconfined" if "seccomp=unconfined" in spec.security_opts() else None


def _no_new_privileges(spec: ContainerSpec) -> str | None:
    opts = spec.security_opts()
    on = "no-new-privileges" in opts or "no-new-privileges=true" in opts
    return None if on else "no-new-privileges is not set"


def _pids_limit(spec: ContainerSpec) -> str | None:
    return "no PIDs limit" if spec.number("PidsLimit") <= 0 else None


def _userns(spec: ContainerSpec) -> str | None:
    return "UsernsMode: host" if spec.mode("UsernsMode") == "host" else None


def _runtime_socket(spec: ContainerSpec) -> str | None:
    hits = [m.source for m in spec.mounts if m.source.endswith(RUNTIME_SOCKETS)]
    return f"runtime socket mounted: {', '.join(hits)}" if hits else None


def _check(cis: str, title: str, severity: Severity, fix: str, test: Any) -> Check[ContainerSpec]:
    return Check(info(cis, title, severity, fix, "container"), test)


CONTAINER_CHECKS: tuple[Check[ContainerSpec], ...] = (
    _check("5.1", "AppArmor is disabled", M, "Drop --security-opt apparmor=unconfined.",
           _apparmor_unconfined),
    _check("5.3", "Linux capabilities added", H,
           "Drop --cap-add; add back only the one capability the process needs.", _capabilities),
    _check("5.4", "Privileged container", C, "Do not run with --privileged.", _privileged),
    _check("5.5", "Sensitive host directories mounted", H,
           "Do not mount /, /boot, /dev, /etc, /lib, /proc, /sys or /usr from the host.",
           _sensitive_mounts),
    _check("5.7", "Privileged host ports mapped", L,
           "Map container ports to host ports above 1023.", _privileged_ports),
    _host_mode("NetworkMode"),
    _check("5.10", "No memory limit", M, "Set --memory.", _memory),
    _check("5.12", "Root file system is writable", L,
           "Run with --read-only and mount writable volumes where needed.", _read_only),
    _check("5.14", "Restarts without limit", L,
           "Use --restart on-failure:5 instead of always or unless-stopped.", _restart_policy),
    _host_mode("PidMode"),
    _host_mode("IpcMode"),
    _check("5.17", "Host devices exposed", M, "Do not pass --device.", _devices),
    _check("5.19", "Mount propagation is shared", M,
           "Do not mount volumes with shared propagation.", _propagation),
    _host_mode("UTSMode"),
    _check("5.21", "Seccomp profile disabled", H,
           "Drop --security-opt seccomp=unconfined.", _seccomp),
    _check("5.25", "Container can gain new privileges", M,
           "Run with --security-opt no-new-privileges.", _no_new_privileges),
    _check("5.28", "No PIDs limit", L, "Set --pids-limit.", _pids_limit),
    _check("5.30", "Shares the host's user namespace", M,
           "Do not run with --userns=host.", _userns),
    _check("5.31", "Docker socket mounted", C,
           "Do not mount the container runtime's socket into a container.", _runtime_socket),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """An exec request body (canonical field names) and the uid its ``User`` resolves to."""

    body: Mapping[str, Any]
    uid: int | None


def _exec_privileged(req: ExecRequest) -> str | None:
    return "exec with --privileged" if req.body.get("Privileged") is True else None


def _exec_root(req: ExecRequest) -> str | None:
    user = str(req.body.get("User") or "")
    return f"exec as user {user} (uid 0)" if req.uid == ROOT else None


EXEC_CHECKS: tuple[Check[ExecRequest], ...] = (
    Check(info("5.22", "Privileged exec", C, "Do not run docker exec --privileged.",
               "container"), _exec_privileged),
    Check(info("5.23", "Exec as root", M, "Do not run docker exec --user root.", "container"),
          _exec_root),
)  # fmt: skip
