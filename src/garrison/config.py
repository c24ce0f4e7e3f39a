"""Configuration: plain values, from defaults < a YAML file < environment < command line.

Every setting ``name`` has the environment variable ``GARRISON_<NAME>`` (upper case). Durations
accept seconds (``90``) or a number with a unit (``30s``, ``15m``, ``1h``, ``7d``).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from garrison.audit.retention import DEFAULT_MAX_AGE, DEFAULT_MAX_COUNT, MAX_COUNT
from garrison.errors import ConfigError
from garrison.sensors.cgroup_layout import containerd_layout

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
DEFAULT_DATA_DIR = Path("/var/lib/garrison")
MAX_DURATION = 3650 * 86400.0  # ten years: longer is a typo, and overflows dates when shown


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90"``, ``"30s"``, ``"15m"``, ``"1h"`` or ``"7d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 90, 30s, 15m, 1h, 7d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not 0 < seconds <= MAX_DURATION:  # also NaN and infinities given as numbers
        raise ValueError(
            f"a duration must be positive and at most {MAX_DURATION // 86400:.0f}d, not {value!r}"
        )
    return seconds


# Where the process tree and off-rootfs execs come from: BPF tracepoints filtered in the
# kernel, the proc connector, or the first of those that works (docs/defender.md).
ProcessEventSource = Literal["auto", "bpf", "proc_connector"]
# How file prevent rules refuse writes: read-only mounts where the rule is plain paths (and
# BPF reports what they refuse), else open-permission events; or always the latter.
WritePrevention = Literal["auto", "fanotify"]
# The container runtime defended (garrison.runtime.choose): docker, containerd, or the first
# that answers.
RuntimeKind = Literal["docker", "containerd", "auto"]
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_CONTAINERD_ADDRESS = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "default"


MB = 1024 * 1024
GB = 1024 * MB


class Settings(BaseModel):
    """What ``garrison run`` needs. Field names are the config file's keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The runtime defended: a Docker engine, or one namespace of a containerd; auto: Docker
    # when one is named or answers, else containerd (docs/defender.md#runtimes).
    runtime: RuntimeKind = "auto"
    docker_host: str | None = None
    containerd_address: str = DEFAULT_CONTAINERD_ADDRESS
    containerd_namespace: str = DEFAULT_NAMESPACE
    # A blocked Kubernetes container's pod is deleted too, through the API server with the
    # pod's service account (docs/kubernetes.md#deleting-a-blocked-containers-pod).
    block_deletes_pod: bool = False
    data_dir: Path = DEFAULT_DATA_DIR
    engine_dir: Path = Path("/var/tmp/garrison-engine")
    hostname: str = Field(default_factory=socket.gethostname)
    learning_period: float = 3600.0
    archive_after: float = 86400.0
    retention: float = 30 * 86400.0
    # Audits last seen longer ago are deleted, and all but the newest audit_max_count (0: no
    # cap), by garrison run at start and hourly (docs/defender.md#settings).
    audit_retention: float = DEFAULT_MAX_AGE
    audit_max_count: int = Field(default=DEFAULT_MAX_COUNT, ge=0, le=MAX_COUNT)
    network_interval: float = 1.0
    status_interval: float = 2.0
    process_events: ProcessEventSource = "auto"
    write_prevention: WritePrevention = "auto"
    # The defender runs under a watchdog process that kills and restarts it when a thread that
    # containers wait on is silent for stall_timeout (docs/defender.md).
    watchdog: bool = True
    stall_timeout: float = 1.0
    # Where Prometheus metrics are served (HOST:PORT); "" none (docs/alerts.md#metrics).
    metrics_address: str = ""
    # Where the console (pages and REST API) is served (HOST:PORT); "off" none (docs/console.md).
    console_address: str = "127.0.0.1:8080"
    # The console this host reports to (https://HOST:PORT, its defender listener): set by
    # `garrison defender`; "" for `garrison run`, whose console runs here (docs/fleet.md).
    remote_console: str = ""
    # Forensics (docs/forensics.md): the journal's ring on disk, a bundle captured for each
    # block, and the bundles kept (oldest unpinned first out, by total size, then by age).
    forensics_journal_bytes: int = Field(default=100 * MB, ge=0, le=100 * GB)
    forensics_capture: bool = True
    # MiB a second read of a container's export (0: as fast as dockerd writes it).
    forensics_export_rate: float = Field(default=64.0, ge=0, le=100_000)
    forensics_max_bytes: int = Field(default=10 * GB, ge=0, le=100_000 * GB)
    forensics_max_age: float = 90 * 86400.0

    @field_validator(
        "learning_period",
        "archive_after",
        "retention",
        "audit_retention",
        "network_interval",
        "status_interval",
        "stall_timeout",
        "forensics_max_age",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("containerd_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        containerd_layout(value)  # ValueError, saying why, for a name containerd refuses
        return value


def _from_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = env.get(f"GARRISON_{name.upper()}")
        if value:
            found[name] = value
    if "docker_host" not in found and env.get("DOCKER_HOST"):
        found["docker_host"] = env["DOCKER_HOST"]
    return found


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the layers; a bad value becomes one ConfigError naming the setting."""
    values = _from_file(config_file)
    values.update(_from_env(os.environ if env is None else env))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"bad setting {where}: {first['msg']}") from exc
