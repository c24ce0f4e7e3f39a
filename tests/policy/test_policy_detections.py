"""Each built-in detection: an event that triggers it, and a benign look-alike that does not.

Evaluated through the default policy (every detection alerts, parent-child off) with a
learning model, so no model anomaly mixes in."""

from __future__ import annotations

import stat

import pytest

from garrison.policy import (
    DEFAULT_RULE,
    NO_MODEL,
    AttackType,
    ExecFacts,
    FileFacts,
    RuntimeRule,
    StaticModel,
    evaluate_file,
    evaluate_process,
)
from garrison.policy.compiled import compile_rule
from garrison.sensors.events import FileEvent, ProcessEvent

DEFAULT = compile_rule(DEFAULT_RULE)


def exec_(path: str, *args: str, uid: int = 0, parent: str = "/bin/sh") -> ProcessEvent:
    return ProcessEvent(
        container_id="c1",
        pid=42,
        ppid=1,
        path=path,
        argv=(path.rsplit("/", 1)[-1], *args),
        uid=uid,
        user="root" if uid == 0 else f"u{uid}",
        parent_path=parent,
        time=0.0,
        resolved_path=path,
    )


def write(path: str, writer: str = "/usr/bin/cp") -> FileEvent:
    return FileEvent("c1", path, "write", 42, writer, 0.0)


def attacks(decisions: list) -> set[str]:
    return {d.attackType for d in decisions}


NO_EXEC, NO_FILE = ExecFacts(), FileFacts()


def process_attacks(event: ProcessEvent, facts: ExecFacts = NO_EXEC) -> set[str]:
    return attacks(evaluate_process(DEFAULT, NO_MODEL, event, facts))


def file_attacks(event: FileEvent, facts: FileFacts = NO_FILE) -> set[str]:
    return attacks(evaluate_file(DEFAULT, NO_MODEL, event, facts))


@pytest.mark.parametrize(
    ("trigger", "benign"),
    [
        (exec_("/usr/bin/xmrig"), exec_("/usr/bin/xmrig-notes")),
        (
            exec_("/tmp/.x/kworker", "-o", "stratum+tcp://pool:3333"),
            exec_("/usr/bin/curl", "-o", "tcp://x"),
        ),
        (exec_("/opt/minerd"), exec_("/opt/minder")),
        (exec_("/usr/bin/ethminer"), exec_("/usr/bin/cat", "ethminer.log")),
    ],
)
def test_crypto_miners_by_name_or_stratum_url(trigger: ProcessEvent, benign: ProcessEvent) -> None:
    assert AttackType.CRYPTO_MINER in process_attacks(trigger)
    assert AttackType.CRYPTO_MINER not in process_attacks(benign)


@pytest.mark.parametrize(
    ("trigger", "benign"),
    [
        ("/bin/nc", "/usr/bin/ncdu"),
        ("/usr/bin/ncat", "/usr/bin/ncal"),
        ("/usr/bin/nmap", "/usr/bin/nmap-notes"),
        ("/usr/bin/socat", "/usr/bin/socat.conf.d"),
        ("/usr/bin/telnet", "/usr/bin/telnetd-config"),
        ("/usr/sbin/masscan", "/usr/bin/mass"),
        ("/bin/netcat", "/bin/cat"),
    ],
)
def test_lateral_movement_tools_by_exact_name(trigger: str, benign: str) -> None:
    assert AttackType.LATERAL_MOVEMENT in process_attacks(exec_(trigger))
    assert AttackType.LATERAL_MOVEMENT not in process_attacks(exec_(benign))


def test_a_shell_on_a_socket_is_a_reverse_shell_and_a_server_on_one_is_not() -> None:
    socket = ExecFacts(stdio_socket=True)
    assert AttackType.REVERSE_SHELL in process_attacks(exec_("/bin/bash", "-i"), socket)
    assert AttackType.REVERSE_SHELL not in process_attacks(exec_("/bin/bash", "-i"))
    assert AttackType.REVERSE_SHELL not in process_attacks(exec_("/usr/sbin/sshd"), socket)
    assert AttackType.REVERSE_SHELL not in process_attacks(exec_("/usr/bin/bashbug"), socket)


def test_a_setuid_binary_run_by_a_user_is_flagged_and_a_plain_one_or_by_root_is_not() -> None:
    suid = ExecFacts(file_mode=stat.S_IFREG | 0o4755)
    plain = ExecFacts(file_mode=stat.S_IFREG | 0o755)
    assert AttackType.SUID_BINARY in process_attacks(exec_("/usr/bin/su", uid=1000), suid)
    assert AttackType.SUID_BINARY in process_attacks(
        exec_("/usr/bin/wall", uid=1000), ExecFacts(file_mode=stat.S_IFREG | 0o2755)
    )
    assert AttackType.SUID_BINARY not in process_attacks(exec_("/usr/bin/id", uid=1000), plain)
    assert AttackType.SUID_BINARY not in process_attacks(exec_("/usr/bin/su", uid=0), suid)
    assert AttackType.SUID_BINARY not in process_attacks(exec_("/usr/bin/su", uid=1000))


def test_a_binary_written_after_start_is_drift_and_one_from_the_image_is_not() -> None:
    assert AttackType.DRIFT_BINARY in process_attacks(exec_("/tmp/x"), ExecFacts(drifted=True))
    assert AttackType.DRIFT_BINARY not in process_attacks(exec_("/tmp/x"))


def test_parent_child_is_checked_against_the_model_when_enabled() -> None:
    rule = RuntimeRule(name="pc", processes={"detections": {"parent_child": "alert"}})
    policy = compile_rule(rule)
    model = StaticModel(
        state="active",
        processes=frozenset({"/bin/sh"}),
        parents=frozenset({("/bin/sh", "/usr/sbin/nginx")}),
    )
    odd = evaluate_process(policy, model, exec_("/bin/sh", parent="/usr/bin/python3"))
    usual = evaluate_process(policy, model, exec_("/bin/sh", parent="/usr/sbin/nginx"))
    assert attacks(odd) == {AttackType.UNEXPECTED_PARENT}
    assert usual == []
    assert evaluate_process(DEFAULT, model, exec_("/bin/sh", parent="/usr/bin/python3")) == []


def test_an_elf_written_is_a_new_executable_and_a_script_is_not() -> None:
    elf = FileFacts(is_elf=True)
    assert AttackType.EXECUTABLE_CREATION in file_attacks(write("/tmp/payload"), elf)
    assert AttackType.EXECUTABLE_CREATION not in file_attacks(write("/tmp/payload.sh"))


@pytest.mark.parametrize(
    ("trigger", "benign"),
    [
        ("/usr/bin/ls", "/usr/binaries/ls"),
        ("/bin/sh", "/home/app/bin/tool"),
        ("/usr/local/bin/app", "/usr/local/binx"),
        ("/lib/x86_64-linux-gnu/libc.so.6", "/library/x"),
        ("/usr/sbin/sshd", "/srv/usr/sbin/sshd"),
    ],
)
def test_writes_under_binary_directories(trigger: str, benign: str) -> None:
    assert AttackType.BINARY_DIR_WRITE in file_attacks(write(trigger))
    assert AttackType.BINARY_DIR_WRITE not in file_attacks(write(benign))


@pytest.mark.parametrize(
    ("trigger", "benign"),
    [
        ("/root/.ssh/authorized_keys", "/tmp/authorized_keys.bak"),
        ("/home/app/.ssh/authorized_keys2", "/tmp/authorized_keys"),
        ("/home/app/.ssh/authorized_keys", "/home/app/.ssh/known_hosts"),
    ],
)
def test_ssh_authorized_keys(trigger: str, benign: str) -> None:
    assert AttackType.SSH_ACCESS in file_attacks(write(trigger))
    assert AttackType.SSH_ACCESS not in file_attacks(write(benign))


@pytest.mark.parametrize(
    ("trigger", "benign"),
    [
        ("/etc/passwd", "/tmp/passwd"),
        ("/etc/shadow", "/etc/shadow.bak"),
        ("/etc/sudoers", "/etc/sudoers-notes"),
        ("/etc/sudoers.d/app", "/etc/sudo.conf"),
        ("/etc/passwd+", "/etc/passwdqc.conf"),
    ],
)
def test_administrative_accounts(trigger: str, benign: str) -> None:
    assert AttackType.ADMIN_ACCOUNTS in file_attacks(write(trigger))
    assert AttackType.ADMIN_ACCOUNTS not in file_attacks(write(benign))


def test_a_disabled_detection_says_nothing() -> None:
    rule = RuntimeRule(
        name="quiet",
        processes={"detections": {"lateral_movement": "disable"}},
        filesystem={"detections": {"admin_accounts": "disable"}},
    )
    policy = compile_rule(rule)
    assert evaluate_process(policy, NO_MODEL, exec_("/bin/nc")) == []
    assert evaluate_file(policy, NO_MODEL, write("/etc/passwd")) == []
