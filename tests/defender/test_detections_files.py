"""File system detections, each triggered for real in a Debian container, and a look-alike
write that is not: new executables, binary directories, SSH keys, administrative accounts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from garrison.audit.record import Audit
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
    filesystem:
      detections: {{ssh_keys: prevent}}
    custom:{READY_RULE}
  - name: det files
    filesystem:
      detections:
        new_executables: alert
        binary_dirs: alert
        ssh_keys: alert
        admin_accounts: alert
    custom:{READY_RULE}
"""


@pytest.fixture(scope="module")
def defender(
    engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DefenderProcess]:
    with running_defender(engine, tmp_path_factory.mktemp("det-files"), RULES) as proc:
        yield proc


def sh(container: Container, script: str) -> str:
    return exec_ok(container, ["bash", "-c", script])


def writer(audit: Audit) -> str:
    """How the msg names the writer: its executable, or "a process" when it had exited before
    the sensor read it (a short ``bash -c``; sensors/file_sensor.py ``_writer``)."""
    assert audit.processPath in ("", "/usr/bin/bash", "/usr/bin/cp"), audit
    return audit.processPath or "a process"


def paths_of(defender: DefenderProcess, name: str, attack: str) -> list[str]:
    """The file each audit of ``attack`` names (the path in its msg after the writer)."""
    audits = audits_of(defender, name, attack)
    return [w for a in audits for w in a.msg.removeprefix(writer(a)).split() if w[0] == "/"]


# -- new executables ------------------------------------------------------------------------


def test_an_elf_copied_to_tmp_is_a_new_executable(defender: DefenderProcess, debian) -> None:
    box = debian("det-newexe")
    sh(box, "cp /usr/bin/true /tmp/payload")
    audit = wait_audit(defender, box, "executableCreation", "/tmp/payload")
    assert audit.type == "filesystem"
    assert audit.effect == "alert"
    assert audit.msg == f"{writer(audit)} wrote the executable /tmp/payload"


def test_a_text_file_written_to_tmp_is_not_a_new_executable(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-textfile")
    sh(box, "printf 'ELF is only a word here\\n' > /tmp/notes.txt; cp /etc/os-release /tmp/os")
    sh(box, "cp /usr/bin/true /tmp/payload")
    wait_audit(defender, box, "executableCreation", "/tmp/payload")
    found = audits_of(defender, "det-textfile", "executableCreation")
    assert paths_of(defender, "det-textfile", "executableCreation") == ["/tmp/payload"], about(
        found
    )


# -- binary directories ---------------------------------------------------------------------


def test_a_write_under_usr_local_bin_is_a_binary_dir_write(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-bindir")
    sh(box, "echo 'echo hi' > /usr/local/bin/x")
    audit = wait_audit(defender, box, "binaryDirWrite", "/usr/local/bin/x")
    assert audit.effect == "alert"
    assert audit.msg == f"{writer(audit)} wrote /usr/local/bin/x in a directory of binaries"


def test_a_write_under_usr_share_is_not_a_binary_dir_write(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-sharedir")
    sh(box, "echo 'echo hi' > /usr/share/x; mkdir -p /opt/bin && echo x > /opt/bin/x")
    sh(box, "echo 'echo hi' > /usr/local/bin/x")
    wait_audit(defender, box, "binaryDirWrite", "/usr/local/bin/x")
    found = audits_of(defender, "det-sharedir", "binaryDirWrite")
    assert paths_of(defender, "det-sharedir", "binaryDirWrite") == ["/usr/local/bin/x"], about(
        found
    )


# -- SSH keys -------------------------------------------------------------------------------


def test_roots_authorized_keys_appended_is_ssh_access(defender: DefenderProcess, debian) -> None:
    box = debian("det-sshkeys")
    sh(box, "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA attacker' >> /root/.ssh/authorized_keys")
    audit = wait_audit(defender, box, "sshAccess", "/root/.ssh/authorized_keys")
    assert audit.effect == "alert"
    assert audit.msg == (
        f"{writer(audit)} changed the SSH authorized keys /root/.ssh/authorized_keys"
    )


def test_a_backup_named_authorized_keys_in_tmp_is_not_ssh_access(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-sshbak")
    sh(box, "echo 'ssh-ed25519 AAAA backup' > /tmp/authorized_keys.bak")
    sh(box, "echo key > /tmp/authorized_keys")  # not in a .ssh directory
    sh(box, "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAA attacker' >> /root/.ssh/authorized_keys")
    wait_audit(defender, box, "sshAccess", "/root/.ssh/authorized_keys")
    assert paths_of(defender, "det-sshbak", "sshAccess") == ["/root/.ssh/authorized_keys"]


def test_prevented_authorized_keys_write_is_refused(defender: DefenderProcess, debian) -> None:
    box = debian("det-prevent-ssh")
    sh(box, "mkdir -p /root/.ssh")
    code, output = box.exec_run(["bash", "-c", "echo key >> /root/.ssh/authorized_keys"])
    assert code != 0, output
    assert b"Operation not permitted" in output
    audit = wait_audit(defender, box, "sshAccess", "/root/.ssh/authorized_keys")
    assert audit.effect == "prevent"
    # The kernel creates the file before it asks (docs/enforcement.md): it stays, empty.
    assert sh(box, "stat -c %s /root/.ssh/authorized_keys").strip() == "0"


# -- administrative accounts ----------------------------------------------------------------

ACCOUNT_FILES = ["/etc/passwd", "/etc/shadow", "/etc/sudoers"]


def test_appending_to_passwd_shadow_and_sudoers_are_admin_account_changes(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-accounts")
    sh(box, "echo 'evil:x:0:0::/root:/bin/bash' >> /etc/passwd")
    sh(box, "echo 'evil:*:19000:0:99999:7:::' >> /etc/shadow")
    sh(box, "echo 'evil ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers")
    for path in ACCOUNT_FILES:
        audit = wait_audit(defender, box, "administrativeAccounts", path)
        assert audit.effect == "alert"
        assert audit.msg == f"{writer(audit)} changed the administrative accounts file {path}"


def test_files_named_passwd_elsewhere_are_not_admin_account_changes(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-notaccounts")
    sh(box, "echo x > /tmp/passwd; mkdir -p /opt/etc && echo x > /opt/etc/shadow")
    sh(box, "echo x > /etc/passwords.txt")
    sh(box, "echo 'evil:x:0:0::/root:/bin/bash' >> /etc/passwd")
    wait_audit(defender, box, "administrativeAccounts", "/etc/passwd")
    found = audits_of(defender, "det-notaccounts", "administrativeAccounts")
    assert paths_of(defender, "det-notaccounts", "administrativeAccounts") == ["/etc/passwd"], (
        about(found)
    )


def test_python_writing_its_byte_code_cache_is_not_a_binary_dir_write(
    defender: DefenderProcess, debian
) -> None:
    box = debian("det-pycache")
    # Python drops the cache, then makes it again on the next import: the directory and the
    # .pyc files (written as NAME.pyc.<id> and renamed).
    cache = "/usr/lib/python3.11/logging/__pycache__"
    drop = f"import os; d = {cache!r}; [os.remove(d + '/' + f) for f in os.listdir(d)]; os.rmdir(d)"
    exec_ok(box, ["python3", "-c", drop])
    sh(box, f"python3 -c 'import logging' && ls {cache}/__init__.cpython-311.pyc")
    sh(box, "echo 'echo hi' > /usr/local/bin/x")  # after it: a write that is one
    wait_audit(defender, box, "binaryDirWrite", "/usr/local/bin/x")
    found = audits_of(defender, "det-pycache", "binaryDirWrite")
    # The set-up's deletion by a python already gone when read may count; the cache made
    # again (the directory, the .pyc files) does not.
    made = [a.msg for a in found if " deleted " not in a.msg]
    assert [m.split(" wrote ")[-1] for m in made] == [
        "/usr/local/bin/x in a directory of binaries"
    ], [a.msg for a in found]
