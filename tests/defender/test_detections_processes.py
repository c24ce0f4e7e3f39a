"""Process detections, each triggered for real in a Debian container, and a look-alike that is
not: crypto miners, lateral movement tools, reverse shells, setuid binaries and drift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from garrison.devengine import PrivateEngine
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import (
    READY_RULE,
    Container,
    about,
    audits_of,
    running_defender,
    wait_audit,
)
from tests.support import exec_ok

pytestmark = pytest.mark.engine

RULES = f"""
rules:
  - name: det prevent
    scope: [{{containers: ["det-prevent-*"]}}]
    processes:
      detections: {{lateral_movement: prevent}}
    custom:{READY_RULE}
  - name: det processes
    processes:
      detections:
        crypto_miners: alert
        lateral_movement: alert
        reverse_shell: alert
        suid_binaries: alert
        drift: alert
    custom:{READY_RULE}
"""

# bash driven through a socket: the shape of a reverse shell, kept inside the container.
SOCKET_SHELL = """
import socket, subprocess
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
peer.sendall(b"echo driven-by-socket; exit\\n")
subprocess.run(["/bin/bash"], stdin=client, stdout=client, timeout=30)
print(peer.recv(100).decode())
"""
# The same bash, fed the same words through a pipe.
PIPED_SHELL = """
import subprocess
done = subprocess.run(["/bin/bash"], input=b"echo driven-by-pipe; exit\\n", capture_output=True)
print(done.stdout.decode())
"""


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefenderProcess]:
    with running_defender(engine, tmp_path_factory.mktemp("det-proc"), RULES) as proc:
        yield proc


def sh(container: Container, script: str, **kw: object) -> str:
    return exec_ok(container, ["bash", "-c", script], **kw)


def copy_true(container: Container, path: str) -> None:
    sh(container, f"cp /usr/bin/true {path}")


# -- crypto miners --------------------------------------------------------------------------


def test_an_executable_named_xmrig_is_a_crypto_miner(defender: DefenderProcess, debian) -> None:
    box = debian("det-miner")
    copy_true(box, "/tmp/xmrig")
    sh(box, "/tmp/xmrig --donate-level 1")
    audit = wait_audit(defender, box, "cryptoMiner", "/tmp/xmrig")
    assert audit.type == "processes"
    assert audit.effect == "alert"
    assert audit.processPath == "/tmp/xmrig"
    assert audit.msg == (
        "/tmp/xmrig launched and is detected as a crypto miner. "
        "Full command: /tmp/xmrig --donate-level 1"
    )


def test_a_stratum_pool_url_in_argv_is_a_crypto_miner(defender: DefenderProcess, debian) -> None:
    box = debian("det-stratum")
    exec_ok(box, ["/usr/bin/true", "-o", "stratum+tcp://pool.example:3333"])
    audit = wait_audit(defender, box, "cryptoMiner", "stratum+tcp://pool.example:3333")
    assert audit.processPath == "/usr/bin/true"
    assert audit.effect == "alert"
    assert audit.command == "/usr/bin/true -o stratum+tcp://pool.example:3333"


def test_a_miner_look_alike_name_and_plain_pool_url_are_not_miners(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-miner-lookalike")
    copy_true(box, "/tmp/minerva")
    sh(box, "/tmp/minerva --url tcp://pool.example:3333")
    copy_true(box, "/tmp/xmrig")
    sh(box, "/tmp/xmrig")
    wait_audit(defender, box, "cryptoMiner", "/tmp/xmrig")
    found = audits_of(defender, "det-miner-lookalike", "cryptoMiner")
    assert [a.processPath for a in found] == ["/tmp/xmrig"], about(found)


# -- lateral movement -----------------------------------------------------------------------


def test_nc_is_a_lateral_movement_tool(defender: DefenderProcess, debian) -> None:
    box = debian("det-nc")
    sh(box, "/usr/bin/nc -h; true")
    audit = wait_audit(defender, box, "lateralMovement", "/usr/bin/nc")
    assert audit.processPath == "/usr/bin/nc"
    assert audit.effect == "alert"
    assert audit.msg == "/usr/bin/nc launched and is a lateral movement / port scanning tool"


def test_a_binary_named_ncdu_is_not_a_lateral_movement_tool(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-ncdu")
    copy_true(box, "/tmp/ncdu")
    sh(box, "/tmp/ncdu")
    sh(box, "/usr/bin/nc -h; true")
    wait_audit(defender, box, "lateralMovement", "/usr/bin/nc")
    found = audits_of(defender, "det-ncdu", "lateralMovement")
    assert [a.processPath for a in found] == ["/usr/bin/nc"], about(found)


def test_prevented_nc_is_refused_and_the_container_runs_on(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-prevent-nc")
    output = sh(box, "/usr/bin/nc -h; echo status=$?")
    assert "status=126" in output
    audit = wait_audit(defender, box, "lateralMovement", "/usr/bin/nc")
    assert audit.effect == "prevent"
    box.reload()
    assert box.status == "running"


# -- reverse shell --------------------------------------------------------------------------


def test_bash_driven_through_a_socket_is_a_reverse_shell(defender: DefenderProcess, debian) -> None:
    box = debian("det-revshell")
    assert "driven-by-socket" in exec_ok(box, ["python3", "-c", SOCKET_SHELL])
    audit = wait_audit(defender, box, "reverseShell", "/bin/bash")
    assert audit.processPath == "/bin/bash"
    assert audit.effect == "alert"
    assert audit.msg == (
        "/bin/bash launched with its standard input or output on a socket (reverse shell)"
    )


def test_bash_driven_through_a_pipe_is_not_a_reverse_shell(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-pipeshell")
    assert "driven-by-pipe" in exec_ok(box, ["python3", "-c", PIPED_SHELL])
    assert "driven-by-socket" in exec_ok(box, ["python3", "-c", SOCKET_SHELL])
    wait_audit(defender, box, "reverseShell", "/bin/bash")
    found = audits_of(defender, "det-pipeshell", "reverseShell")
    assert [a.count for a in found] == [1], about(found)


# -- setuid ---------------------------------------------------------------------------------


def test_a_setuid_copy_run_by_nobody_is_a_suid_binary(defender: DefenderProcess, debian) -> None:
    box = debian("det-suid")
    sh(box, "cp /usr/bin/id /tmp/suid-id && chmod u+s /tmp/suid-id")
    assert "euid=0(root)" in exec_ok(box, ["/tmp/suid-id"], user="nobody")
    audit = wait_audit(defender, box, "suidBinary", "/tmp/suid-id")
    assert audit.user == "nobody"
    assert audit.effect == "alert"
    assert audit.msg == "/tmp/suid-id launched from a setuid/setgid binary by nobody"


def test_the_same_copy_without_the_setuid_bit_is_not_a_suid_binary(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-nosuid")
    sh(box, "cp /usr/bin/id /tmp/plain-id && cp /usr/bin/id /tmp/suid-id && chmod u+s /tmp/suid-id")
    assert "euid" not in exec_ok(box, ["/tmp/plain-id"], user="nobody")
    exec_ok(box, ["/tmp/suid-id"], user="nobody")
    wait_audit(defender, box, "suidBinary", "/tmp/suid-id")
    found = audits_of(defender, "det-nosuid", "suidBinary")
    assert [a.processPath for a in found] == ["/tmp/suid-id"], about(found)


# -- drift ----------------------------------------------------------------------------------


def test_a_binary_copied_in_after_start_is_drift(defender: DefenderProcess, debian) -> None:
    box = debian("det-drift")
    copy_true(box, "/tmp/drifted")
    sh(box, "/tmp/drifted")
    audit = wait_audit(defender, box, "driftBinary", "/tmp/drifted")
    assert audit.effect == "alert"
    assert audit.msg == (
        "/tmp/drifted launched but was written or modified after the container started "
        "(not part of the image)"
    )


def test_a_binary_of_the_image_is_not_drift(defender: DefenderProcess, debian) -> None:
    box = debian("det-nodrift")
    sh(box, "/usr/bin/id >/dev/null; cat /usr/bin/id >/dev/null")
    copy_true(box, "/tmp/drifted")
    sh(box, "/tmp/drifted")
    wait_audit(defender, box, "driftBinary", "/tmp/drifted")
    found = audits_of(defender, "det-nodrift", "driftBinary")
    assert [a.processPath for a in found] == ["/tmp/drifted"], about(found)
