"""What ``garrison`` imports before it does anything (issue 17): ``--help`` of the root, of a
group and of a command loads none of the heavy packages that only some commands use, and the
start of ``scan image`` loads none of those it does not need, and ``run`` with no engine
answering never loads the development engine. A test of what is imported, not of time: the
time is for benchmarks/bench_cli_start.py to measure.

Each command runs as a user runs it (``python -m garrison``, a process of its own) under
``-X importtime``, whose report on stderr names every module the process imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_run import private_dir

# What only some commands need: the Docker SDK, the web console (FastAPI, uvicorn, starlette,
# Jinja2), the store (SQLAlchemy), the alert channels (apprise), metrics, the vulnerability
# database (univers, cvss), SBOMs (cyclonedx), rule expressions (lark), password hashing
# (argon2) and the remote console's client (httpx). Not pydantic: typer itself imports it to
# check the value of any option of a command run (even `garrison scan --help` has the root's
# --install-completion), so that is not ours to avoid.
HEAVY = (
    "docker",
    "fastapi",
    "uvicorn",
    "starlette",
    "jinja2",
    "sqlalchemy",
    "apprise",
    "prometheus_client",
    "univers",
    "cvss",
    "cyclonedx",
    "lark",
    "argon2",
    "httpx",
)
# What `scan image` needs (the Docker SDK, the store, the vulnerability database) is left out.
NOT_FOR_A_SCAN = ("fastapi", "uvicorn", "starlette", "jinja2", "apprise", "prometheus_client")


def imported(*args: str, cwd: Path) -> set[str]:
    """The top-level packages a ``garrison`` command imported, read from ``-X importtime``."""
    return {name.split(".")[0] for name in imported_modules(*args, cwd=cwd)}


def imported_modules(*args: str, cwd: Path) -> set[str]:
    """Every module a ``garrison`` command imported (``garrison.cli.app``, ``docker.errors``…)."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "garrison", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in ran.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "garrison.cli.app" in names, ran.stderr[-2000:]
    return names


@pytest.mark.parametrize(
    "args",
    [("--help",), ("scan", "--help"), ("status", "--help"), ("models", "list", "--help")],
    ids=" ".join,
)
def test_help_imports_none_of_the_heavy_packages(args: tuple[str, ...], tmp_path: Path) -> None:
    loaded = imported(*args, cwd=tmp_path)
    assert "typer" in loaded  # the report was read
    assert sorted(loaded.intersection(HEAVY)) == []


def test_scan_image_starts_without_the_web_console_alerts_or_metrics(tmp_path: Path) -> None:
    # No engine answers there: the command stops at its first call to Docker, after the
    # scanner, the vulnerability database and the store were opened.
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    data = private_dir(tmp_path / "data")
    loaded = imported(
        "scan", "image", "busybox", "--docker-host", nowhere, "--data-dir", str(data),
        cwd=tmp_path,
    )  # fmt: skip
    assert {"docker", "sqlalchemy"} <= loaded  # it went as far as its real work
    assert sorted(loaded.intersection(NOT_FOR_A_SCAN)) == []


def test_run_with_no_engine_answering_never_imports_the_development_engine(
    tmp_path: Path,
) -> None:
    # `garrison run` asks the engine named and stops there: the package that installs Debian
    # packages and starts dockerd (`garrison engine up`'s) is not even loaded.
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    data = private_dir(tmp_path / "data")
    loaded = imported_modules(
        "run", "--docker-host", nowhere, "--data-dir", str(data), cwd=tmp_path
    )
    assert "garrison.runtime.docker" in loaded  # it went as far as asking the engine
    assert sorted(name for name in loaded if name.startswith("garrison.devengine")) == []


def test_each_default_shown_by_help_equals_its_owners() -> None:
    from garrison import config  # noqa: PLC0415 - the owners: heavy, as the test says
    from garrison.api import server as api  # noqa: PLC0415
    from garrison.audit import query  # noqa: PLC0415
    from garrison.cli import defaults, scan, vulndb  # noqa: PLC0415
    from garrison.devengine import engine  # noqa: PLC0415
    from garrison.scan import vulndb as osv  # noqa: PLC0415
    from garrison.scan.gate import scans, server  # noqa: PLC0415

    copies = [  # (where, the copy, its owner's)
        ("defaults.DEFAULT_DATA_DIR", defaults.DEFAULT_DATA_DIR, config.DEFAULT_DATA_DIR),
        ("scan.DEFAULT_DATA_DIR", scan.DEFAULT_DATA_DIR, config.DEFAULT_DATA_DIR),
        ("vulndb.DEFAULT_DATA_DIR", vulndb.DEFAULT_DATA_DIR, config.DEFAULT_DATA_DIR),
        ("DEFAULT_LIMIT", defaults.DEFAULT_LIMIT, query.DEFAULT_LIMIT),
        ("DEFAULT_CONSOLE_ADDRESS", defaults.DEFAULT_CONSOLE_ADDRESS, api.DEFAULT_ADDRESS),
        ("DEFAULT_PLUGIN_NAME", defaults.DEFAULT_PLUGIN_NAME, server.DEFAULT_NAME),
        ("DEFAULT_PLUGIN_SOCKET", defaults.DEFAULT_PLUGIN_SOCKET, server.DEFAULT_SOCKET),
        ("PLUGIN_DIR", defaults.PLUGIN_DIR, server.PLUGIN_DIR),
        ("DEFAULT_SCAN_TIMEOUT", defaults.DEFAULT_SCAN_TIMEOUT, scans.DEFAULT_SCAN_TIMEOUT),
        ("DEFAULT_ENGINE_DIR", defaults.DEFAULT_ENGINE_DIR, engine.DEFAULT_DIR),
        ("DEFAULT_OSV_URL", defaults.DEFAULT_OSV_URL, osv.DEFAULT_URL),
        ("DEFAULT_OSV_TIMEOUT", defaults.DEFAULT_OSV_TIMEOUT, osv.DEFAULT_TIMEOUT),
    ]
    assert [(where, copy, owner) for where, copy, owner in copies if copy != owner] == []
