"""``garrison hosts`` and ``garrison defender`` as a user types them: tokens made and listed
(never their secret), a host not enrolled told how to enrol in one line, refusals in one
line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def garrison(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "garrison", *args], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})  # fmt: skip


def test_a_token_is_printed_once_with_the_command_and_listed_without_its_secret(
    tmp_path: Path,
) -> None:
    data = str(tmp_path / "console")
    made = garrison("hosts", "token", "create", "--ttl", "10m", "--data-dir", data, "--json")
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert doc["token"].startswith(f"gse_{doc['id']}_")
    assert len(doc["consoleCaSha256"]) == 64
    shown = garrison("hosts", "token", "create", "--console", "https://c.example:8443",
                     "--data-dir", data)  # fmt: skip
    assert "garrison defender --console https://c.example:8443 --enrol-token gse_" in shown.stdout
    assert doc["consoleCaSha256"] in shown.stdout, "the same CA"
    listed = garrison("hosts", "token", "list", "--data-dir", data, "--json")
    tokens = json.loads(listed.stdout)
    assert len(tokens) == 2
    assert all(t["used"] is None for t in tokens)
    assert doc["token"].split("_", 2)[2] not in listed.stdout, "never the secret"
    assert json.loads(garrison("hosts", "list", "--data-dir", data, "--json").stdout) == []


def test_a_refusal_is_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "console")
    revoked = garrison("hosts", "revoke", "nobody", "--data-dir", data)
    assert revoked.returncode == 1
    assert revoked.stderr.strip().splitlines() == ["garrison: host 'nobody': no such host"]
    too_long = garrison("hosts", "token", "create", "--ttl", "90d", "--data-dir", data)
    assert too_long.returncode == 1
    assert len(too_long.stderr.strip().splitlines()) == 1


def test_a_host_not_enrolled_is_told_how_in_one_line(tmp_path: Path) -> None:
    ran = garrison("defender", "--console", "https://127.0.0.1:9", "--data-dir",
                   str(tmp_path / "host"), "--docker-host", "unix:///nonexistent.sock")  # fmt: skip
    assert ran.returncode == 1
    (line,) = ran.stderr.strip().splitlines()
    assert "--enrol-token and --console-ca-sha256" in line
    assert "garrison hosts token create" in line


def test_a_remote_defender_loads_neither_sqlalchemy_nor_httpx() -> None:
    """What ``garrison defender`` imports to run: its memory counts (issue 20)."""
    code = (
        "import sys, garrison.cli.run, garrison.defender, garrison.fleet.join, "
        "garrison.runtime.docker, garrison.watchdog; "
        "print(sorted(m for m in ('sqlalchemy', 'httpx', 'fastapi') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_a_token_for_several_hosts_is_listed_with_its_uses(tmp_path: Path) -> None:
    data = str(tmp_path / "console")
    made = garrison("hosts", "token", "create", "--uses", "3", "--data-dir", data)
    assert made.returncode == 0, made.stderr
    assert "(3 hosts, until" in made.stdout
    assert "garrison defender --console https://CONSOLE:8443 --enrol-token gse_" in made.stdout
    listed = garrison("hosts", "token", "list", "--data-dir", data)
    assert "0/3" in listed.stdout
    (token,) = json.loads(garrison("hosts", "token", "list", "--data-dir", data, "--json").stdout)
    assert (token["uses"], token["maxUses"]) == (0, 3)
    none = garrison("hosts", "token", "create", "--uses", "0", "--data-dir", data)
    assert none.returncode == 1
    assert none.stderr.strip().splitlines() == ["garrison: token uses: between 1 and 100000"]
