"""The authorization gate: a Docker authorization plugin that refuses containers whose image or
configuration breaks a vulnerability or compliance rule set to block.

>>> gate = Gate(Scanner.for_docker(client, vulndb), StoredPolicies(store), on_audit=store.add)
>>> with GateServer(gate, ServerConfig(socket_path, name="garrison")):
...     ...  # dockerd --authorization-plugin=garrison
"""

from __future__ import annotations

from garrison.scan.gate.gate import ContainerFacts, ContainerLookup, Gate, Reply
from garrison.scan.gate.request import AuthZRequest, Call, EmptyBody, parse_authz
from garrison.scan.gate.server import (
    DEFAULT_NAME,
    DEFAULT_SOCKET,
    PLUGIN_DIR,
    GateServer,
    ServerConfig,
    make_app,
)
from garrison.scan.gate.wiring import (
    ProbeResult,
    StoredPolicies,
    docker_containers,
    docker_passwd,
    probe_plugin,
    socket_of_spec,
)

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_SOCKET",
    "PLUGIN_DIR",
    "AuthZRequest",
    "Call",
    "ContainerFacts",
    "ContainerLookup",
    "EmptyBody",
    "Gate",
    "GateServer",
    "ProbeResult",
    "Reply",
    "ServerConfig",
    "StoredPolicies",
    "docker_containers",
    "docker_passwd",
    "make_app",
    "parse_authz",
    "probe_plugin",
    "socket_of_spec",
]
