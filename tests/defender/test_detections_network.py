"""Network lists, triggered for real on a Debian container's own loopback (listener and client
both inside it), and allowed ports and addresses beside them that are not findings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from garrison.devengine import PrivateEngine
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import (
    DEBIAN,
    READY_RULE,
    Container,
    about,
    audits_of,
    model_doc,
    running_defender,
    wait_audit,
)
from tests.support import wait_for

pytestmark = pytest.mark.engine

RULES = f"""
rules:
  - name: det network
    network:
      listening:
        allowed: ["8080"]
        denied: {{effect: alert, ports: ["4444"]}}
      outbound:
        allowed: ["6666"]
        denied: {{effect: alert, ports: ["5555"]}}
      ips:
        denied: {{effect: alert, ips: ["127.0.0.2/31"]}}
    custom:{READY_RULE}
"""

# Listen on each port given, in order, then hold the sockets while the sensor polls.
LISTEN = """
import socket, sys, time
held = []
for port in sys.argv[1:]:
    held.append(socket.create_server(("127.0.0.1", int(port))))
    time.sleep(0.5)
time.sleep(6)
"""
# Connect to each HOST:PORT given, in order, to a server of our own on that port.
CONNECT = """
import socket, sys, time
servers, held = {}, []
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    if port not in servers:
        servers[port] = socket.create_server(("0.0.0.0", int(port)))
    held.append(socket.create_connection((host, int(port))))
    time.sleep(0.5)
time.sleep(6)
"""


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefenderProcess]:
    with running_defender(engine, tmp_path_factory.mktemp("det-net"), RULES) as proc:
        yield proc


def python(container: Container, script: str, *args: str) -> None:
    """Run ``script`` in the background: the sensor polls while it holds its sockets."""
    container.exec_run(["python3", "-c", script, *args], detach=True)


def learned(defender: DefenderProcess, key: str, port: int) -> bool:
    """Did the (learning) model see the port: proof the sensor saw the benign socket."""
    return {"port": port, "protocol": "tcp"} in model_doc(defender, DEBIAN).get(key, [])


def test_a_denied_listening_port_is_audited(defender: DefenderProcess, debian) -> None:
    box = debian("det-listen")
    python(box, LISTEN, "4444")
    audit = wait_audit(defender, box, "explicitlyDeniedListeningPort", "4444")
    assert audit.type == "network"
    assert audit.effect == "alert"
    assert audit.msg.endswith("listens on port 4444/tcp, explicitly denied")


def test_an_allowed_listening_port_is_not_audited(defender: DefenderProcess, debian) -> None:
    box = debian("det-listen-ok")
    python(box, LISTEN, "8080", "4444")
    wait_audit(defender, box, "explicitlyDeniedListeningPort", "4444")
    wait_for("8080 in the model", lambda: learned(defender, "listening", 8080))
    found = audits_of(defender, "det-listen-ok", "explicitlyDeniedListeningPort")
    assert len(found) == 1, about(found)


def test_a_denied_outbound_port_is_audited(defender: DefenderProcess, debian) -> None:
    box = debian("det-outport")
    python(box, CONNECT, "127.0.0.1:5555")
    audit = wait_audit(defender, box, "explicitlyDeniedOutboundPort", "5555")
    assert audit.effect == "alert"
    assert audit.msg.endswith("connected to 127.0.0.1:5555/tcp: port explicitly denied")


def test_an_allowed_outbound_port_is_not_audited(defender: DefenderProcess, debian) -> None:
    box = debian("det-outport-ok")
    python(box, CONNECT, "127.0.0.1:6666", "127.0.0.1:5555")
    wait_audit(defender, box, "explicitlyDeniedOutboundPort", "5555")
    wait_for("6666 in the model", lambda: learned(defender, "outboundPorts", 6666))
    found = audits_of(defender, "det-outport-ok", "explicitlyDeniedOutboundPort")
    assert len(found) == 1, about(found)


def test_an_address_in_a_denied_cidr_is_audited(defender: DefenderProcess, debian) -> None:
    box = debian("det-outip")
    python(box, CONNECT, "127.0.0.2:7777")
    audit = wait_audit(defender, box, "explicitlyDeniedIP", "127.0.0.2")
    assert audit.effect == "alert"
    assert audit.msg.endswith("connected to 127.0.0.2:7777/tcp: address explicitly denied")


def test_an_address_outside_the_denied_cidr_is_not_audited(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-outip-ok")
    python(box, CONNECT, "127.0.0.1:7777", "127.0.0.4:7777", "127.0.0.3:7777")
    wait_audit(defender, box, "explicitlyDeniedIP", "127.0.0.3")
    wait_for(
        "both benign addresses in the model",
        lambda: (
            {"127.0.0.1", "127.0.0.4"}
            <= set(model_doc(defender, DEBIAN).get("outboundAddresses", []))
        ),
    )
    found = audits_of(defender, "det-outip-ok", "explicitlyDeniedIP")
    assert len(found) == 1, about(found)
