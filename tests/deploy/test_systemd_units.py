"""The systemd units in packaging/: systemd's own checker finds nothing to say about them, and
each ExecStart runs a real `garrison` command with options that command has."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGING = Path(__file__).parents[2] / "packaging"
UNITS = sorted(PACKAGING.glob("*.service"))
INSTALLED = "/usr/local/bin/garrison"
GARRISON = Path(sys.executable).with_name("garrison")


def exec_start(unit: Path) -> list[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    return shlex.split(parser["Service"]["ExecStart"])


def test_the_units_are_the_four_garrison_ships() -> None:
    assert [u.name for u in UNITS] == [
        "garrison-authz.service",
        "garrison-console.service",
        "garrison-defender.service",
        "garrison.service",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_verify_says_nothing(unit: Path, tmp_path: Path) -> None:
    # The units name /usr/local/bin/garrison, which verify wants to exist: this venv's here.
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(GARRISON)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_exec_start_names_a_command_and_options_it_has(unit: Path) -> None:
    argv = exec_start(unit)
    assert argv[0] == INSTALLED
    words = [a for a in argv[1:] if not a.startswith("-")]
    options = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("-")]
    command = words[: 2 if words[0] in ("authz", "console") else 1]
    done = subprocess.run(
        [str(GARRISON), *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    for option in options:
        assert f"{option} " in done.stdout or f"{option}\n" in done.stdout, option


def test_the_defender_unit_runs_under_the_watchdog_as_garrison_run_does() -> None:
    defender = configparser.ConfigParser(strict=False, interpolation=None)
    defender.read(PACKAGING / "garrison-defender.service")
    service = defender["Service"]
    assert (service["Type"], service["NotifyAccess"], service["User"]) == ("notify", "main", "root")
    assert "WatchdogSec" in service


def test_the_console_unit_is_unprivileged_and_hardened() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(PACKAGING / "garrison-console.service")
    service = parser["Service"]
    assert service["User"] == "garrison"
    assert service["StateDirectory"] == "garrison-console"
    assert service["EnvironmentFile"] == "/etc/garrison/console.env"
    assert "--store" not in exec_start(PACKAGING / "garrison-console.service")
    assert "--data-dir /var/lib/garrison-console " in service["ExecStart"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert service[key] == value, key
