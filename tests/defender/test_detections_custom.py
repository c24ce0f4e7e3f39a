"""Custom rules (expressions) firing on real events in a Debian container — an exec, a write,
a connection — and the same program or path beside them that does not match."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from garrison.devengine import PrivateEngine
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import (
    READY_RULE,
    about,
    audits_of,
    running_defender,
    wait_audit,
)
from tests.support import exec_ok

pytestmark = pytest.mark.engine

ID_AS_NOBODY = "id run as nobody (custom rule 'id as nobody')"
CRON = "cron written (custom rule 'cron')"
PORT_9999 = "custom rule 'port 9999' matched"
RULES = f"""
rules:
  - name: det custom
    custom:{READY_RULE}
      - name: id as nobody
        expression: proc.name = "id" and proc.user = "nobody"
        message: id run as nobody
      - name: cron
        expression: file.dir startswith "/etc/cron" or file.path contains "crontab"
        message: cron written
      - name: port 9999
        expression: net.outgoing_port = 9999 and net.outgoing_ip in ("127.0.0.1", "::1")
"""
CONNECT = """
import socket, sys, time
held = []
for port in sys.argv[1:]:
    held.append(socket.create_server(("127.0.0.1", int(port))))
    held.append(socket.create_connection(("127.0.0.1", int(port))))
    time.sleep(0.5)
time.sleep(6)
"""


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefenderProcess]:
    with running_defender(engine, tmp_path_factory.mktemp("det-custom"), RULES) as proc:
        yield proc


def custom_audits(defender: DefenderProcess, name: str, msg: str) -> list[str]:
    """Who matched the custom rule whose msg is ``msg`` (the readiness probe left out)."""
    return [
        f"{a.processPath} {a.user}".strip()
        for a in audits_of(defender, name, "customRule")
        if a.msg == msg
    ]


def test_id_run_as_nobody_matches_the_custom_rule(defender: DefenderProcess, debian) -> None:
    box = debian("det-custom-id")
    exec_ok(box, ["/usr/bin/id"], user="nobody")
    audit = wait_audit(defender, box, "customRule", ID_AS_NOBODY)
    assert audit.type == "processes"
    assert audit.effect == "alert"
    assert audit.ruleName == "det custom"
    assert (audit.processPath, audit.user) == ("/usr/bin/id", "nobody")


def test_id_run_as_root_does_not_match_the_custom_rule(defender: DefenderProcess, debian) -> None:
    box = debian("det-custom-root")
    exec_ok(box, ["/usr/bin/id"])
    exec_ok(box, ["/usr/bin/id"], user="root")
    exec_ok(box, ["/usr/bin/id"], user="nobody")
    wait_audit(defender, box, "customRule", ID_AS_NOBODY)
    found = custom_audits(defender, "det-custom-root", ID_AS_NOBODY)
    assert found == ["/usr/bin/id nobody"], found


def test_a_write_in_etc_cron_d_matches_a_file_custom_rule(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-custom-cron")
    exec_ok(
        box, ["bash", "-c", "mkdir -p /etc/cron.d && echo '* * * * * root id' > /etc/cron.d/job"]
    )
    audit = wait_audit(defender, box, "customRule", CRON)
    assert audit.type == "filesystem"
    assert audit.effect == "alert"


def test_a_cron_look_alike_path_does_not_match_the_file_custom_rule(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-custom-nocron")
    benign = "mkdir -p /tmp/etc/cron.d && echo x > /tmp/etc/cron.d/job && echo x > /etc/cronos"
    exec_ok(box, ["bash", "-c", benign])
    exec_ok(box, ["bash", "-c", "mkdir -p /etc/cron.d && echo x > /etc/cron.d/job"])
    wait_audit(defender, box, "customRule", CRON)
    found = [a for a in audits_of(defender, "det-custom-nocron", "customRule") if a.msg == CRON]
    assert len(found) == 1, about(found)


def test_a_connection_to_port_9999_matches_a_network_custom_rule(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-custom-net")
    box.exec_run(["python3", "-c", CONNECT, "9999"], detach=True)
    audit = wait_audit(defender, box, "customRule", PORT_9999)
    assert audit.type == "network"
    assert audit.effect == "alert"


def test_a_connection_to_port_9998_does_not_match_the_network_custom_rule(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-custom-nonet")
    box.exec_run(["python3", "-c", CONNECT, "9998", "9999"], detach=True)
    wait_audit(defender, box, "customRule", PORT_9999)
    found = [a for a in audits_of(defender, "det-custom-nonet", "customRule") if "port" in a.msg]
    assert len(found) == 1, about(found)
