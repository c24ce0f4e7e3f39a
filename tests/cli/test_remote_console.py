"""One CLI, local or remote (issue 16). The real console — uvicorn on a loopback port, over a
real SQLite store filled as a defender fills it — and the real CLI: each command that reads the
console prints the same ``--json`` byte for byte, and fails with the same line, whether it
reads the store's folder or goes through ``GARRISON_CONSOLE_URL`` with a token; what the
remote CLI changes lands in the store as the local CLI's change does; a refused token, a role
too low, a console that does not answer and a command only the console's host can run are
each one line."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from garrison.api.server import ConsoleServer
from garrison.cli import app
from garrison.console import Console
from garrison.console.remote_client import CA_VAR, TOKEN_FILE_VAR, TOKEN_VAR, URL_VAR
from garrison.incidents.worker import Correlator
from garrison.policy import load_rules
from garrison.runtime.base import RestartPolicy
from garrison.runtime.fake import FakeRuntime
from tests.api.test_server import free_port
from tests.cli.test_cli_width import (
    BUSYBOX,
    MINER,
    RULES,
    audit,
    fill_audits_and_blocks,
    fill_bundle,
    fill_models,
    fill_status,
)

PASSWORD = "correct horse battery"
BUNDLE = "77c0ffee1234-20261204T101434Z"
NOT_LOCAL = {URL_VAR: None, TOKEN_VAR: None, TOKEN_FILE_VAR: None, CA_VAR: None}
runner = CliRunner()


@dataclass
class Served:
    data_dir: Path
    url: str
    tokens: dict[str, str]  # role → its user's token
    runtime: FakeRuntime

    def local(self, *args: str | Path) -> Result:
        return cli(NOT_LOCAL, *args, "--data-dir", self.data_dir)

    def remote(self, *args: str | Path, role: str = "admin") -> Result:
        """Through the API; ``--data-dir`` names a folder that must stay unmade."""
        env = {**NOT_LOCAL, URL_VAR: self.url, TOKEN_VAR: self.tokens[role]}
        done = cli(env, *args, "--data-dir", self.data_dir.parent / "not-used")
        assert not (self.data_dir.parent / "not-used").exists()
        return done


def cli(env: dict[str, str | None], *args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args], env={**env, "COLUMNS": "80"})


def fill(data_dir: Path) -> Path:
    now = time.time()
    with Console.open(data_dir) as console:
        fill_models(console)
        fill_audits_and_blocks(console, now)
        Correlator(console.store).step()
        fill_status(console, now)
        fill_bundle(console, now)
        console.apply_runtime_rules(load_rules(RULES))
    return data_dir


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store every console of this module starts from (copied, never served itself)."""
    return fill(tmp_path_factory.mktemp("remote") / "data")


@contextlib.contextmanager
def serve(data_dir: Path, tls: tuple[Path, Path] | None = None) -> Iterator[Served]:
    """The console on ``data_dir``, with a user and a token per role, until closed."""
    runtime = FakeRuntime()
    runtime.run(MINER, BUSYBOX.name, BUSYBOX.image_name, restart_policy=RestartPolicy("no"))
    with Console.open(data_dir) as console:
        accounts = console.accounts()
        tokens = {}
        for role in ("admin", "operator", "auditor"):
            accounts.add_user(f"{role}-1", role, PASSWORD)
            tokens[role] = accounts.new_token(f"{role}-1", "tests")[1]
        server = ConsoleServer(console, f"127.0.0.1:{free_port()}", lambda: runtime, tls)
        server.start()
        try:
            yield Served(data_dir, server.url, tokens, runtime)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def reads(filled: Path) -> Iterator[Served]:
    """A console only read from: every test of this module sees the same store."""
    shutil.copytree(filled, filled.parent / "reads")
    with serve(filled.parent / "reads") as served:
        yield served


@pytest.fixture
def writes(tmp_path: Path, filled: Path) -> Iterator[tuple[Served, Path]]:
    """A console to change, and a copy of its store for the same change made locally."""
    shutil.copytree(filled, tmp_path / "served")
    shutil.copytree(filled, tmp_path / "local")
    with serve(tmp_path / "served") as served:
        yield served, tmp_path / "local"


def same(local: Result, remote: Result) -> str:
    """Both ran alike: the same exit status and output, byte for byte."""
    assert local.exception is None or isinstance(local.exception, SystemExit), local.exception
    assert remote.exception is None or isinstance(remote.exception, SystemExit), remote.exception
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout)
    assert local.stdout.strip()
    return local.stdout


READS = [
    ["audits", "list", "--json"],
    ["audits", "list", "--json", "--limit", "0"],
    ["audits", "list", "--json", "--effect", "block"],
    ["audits", "list", "--json", "--container", "web-frontend", "--since", "2h", "--limit", "2"],
    ["audits", "list", "--json", "--search", "LAUNCHED", "--offset", "1", "--type", "processes"],
    ["audits", "list", "--output", "yaml", "--image", "garrison-test/nginx"],
    ["audits", "export"],
    ["audits", "export", "--format", "csv", "--attack-type", "driftBinary"],
    ["models", "list", "--json"],
    ["models", "list", "--output", "wide"],
    ["models", "show", "garrison-test/nginx"],
    ["models", "show", "bd2ee876"],
    ["rules", "list", "--json"],
    ["rules", "list"],
    ["rules", "show", "block-miners-in-production", "--json"],
    ["rules", "show", "alert-everything-else"],
    ["rules", "export"],
    ["rules", "export", "--format", "json"],
    ["policies", "vulnerability", "list", "--json"],
    ["policies", "compliance", "list", "--json"],
    ["policies", "compliance", "list"],
    ["containers", "blocked", "--json"],
    ["containers", "blocked", "--output", "yaml"],
    ["incidents", "list", "--json"],
    ["incidents", "list", "--json", "--state", "open", "--container", "web-frontend"],
    ["incidents", "show", "1", "--json"],
    ["incidents", "show", "#1", "--json"],
    ["forensics", "list", "--json"],
    ["forensics", "show", BUNDLE, "--json"],
    ["forensics", "show", "batch-worker", "--json"],
    ["forensics", "show", "77c0ff"],
    ["alerts", "channels", "list", "--json"],
    ["alerts", "profiles", "list", "--json"],
    ["alerts", "profiles", "export"],
    ["alerts", "outbox", "--json"],
    ["alerts", "outbox", "--json", "--state", "pending", "--limit", "1"],
]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_prints_the_same_locally_and_through_the_api(reads: Served, args: list[str]) -> None:
    same(reads.local(*args), reads.remote(*args, role="auditor"))


def test_status_json_is_the_same_locally_and_through_the_api(reads: Served) -> None:
    # A fresh report: its age, in whole seconds, is part of what is printed.
    with Console.open(reads.data_dir) as console:
        report = console.store.get_status() or {}
        console.store.set_status({**report, "updatedAt": time.time() - 2.0})
    text = same(reads.local("status", "--json"), reads.remote("status", "--json"))
    assert json.loads(text)["liveness"]["state"] == "running"


def test_an_export_to_a_file_writes_the_same_file(reads: Served, tmp_path: Path) -> None:
    for fmt in ("jsonl", "csv"):
        local, remote = tmp_path / f"local.{fmt}", tmp_path / f"remote.{fmt}"
        said = reads.local("audits", "export", "--format", fmt, "-o", local)
        told = reads.remote("audits", "export", "--format", fmt, "-o", remote)
        assert said.stdout.replace(str(local), "FILE") == told.stdout.replace(str(remote), "FILE")
        assert local.read_bytes() == remote.read_bytes()
        assert re.match(r"[1-9]\d* audits written to ", told.stdout), told.stdout


def test_a_csv_cell_holding_line_ends_is_counted_as_one_audit(
    writes: tuple[Served, Path], tmp_path: Path
) -> None:
    served, _ = writes
    with Console.open(served.data_dir) as console:
        console.store.add_audits([audit(time.time(), 'sh -c "a\nb"\r\nran', command='x "\n" y')])
    local, remote = tmp_path / "local.csv", tmp_path / "remote.csv"
    said = served.local("audits", "export", "--format", "csv", "--limit", "1", "-o", local)
    told = served.remote("audits", "export", "--format", "csv", "--limit", "1", "-o", remote)
    assert said.stdout == f"1 audits written to {local}\n"
    assert told.stdout == f"1 audits written to {remote}\n"
    assert local.read_bytes() == remote.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ["models", "show", "nothing-here"],
        ["models", "relearn", "nothing-here"],
        ["rules", "show", "no-such-rule"],
        ["rules", "delete", "no-such-rule"],
        ["incidents", "show", "999"],
        ["incidents", "show", "twelve"],
        ["forensics", "show", "no-such-container"],
        ["containers", "unblock", "no-such-container"],
        ["alerts", "outbox", "--state", "gone"],
        ["audits", "export", "--format", "xml"],
    ],
    ids=" ".join,
)
def test_a_refusal_is_the_same_line_locally_and_through_the_api(
    reads: Served, args: list[str]
) -> None:
    local, remote = reads.local(*args), reads.remote(*args)
    assert local.exception is not None
    assert remote.exit_code == local.exit_code == 1
    assert type(remote.exception) is type(local.exception)
    assert str(remote.exception) == str(local.exception)


def changed(served: Served, local_dir: Path, *args: str | Path, role: str = "operator") -> str:
    """The same change made through the API and on a copy of the store: it says the same."""
    local = cli(NOT_LOCAL, *args, "--data-dir", local_dir)
    return same(local, served.remote(*args, role=role))


def test_rules_applied_and_deleted_remotely_land_in_the_store(
    writes: tuple[Served, Path], tmp_path: Path
) -> None:
    served, local_dir = writes
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("alert-everything-else", "alert-the-rest"))
    changed(served, local_dir, "rules", "apply", "-f", rules)
    changed(served, local_dir, "rules", "delete", "block-miners-in-production")
    with Console.open(served.data_dir) as there, Console.open(local_dir) as here:
        assert [r.name for r in there.runtime_rules().rules] == ["alert-the-rest"]
        assert there.runtime_rules() == here.runtime_rules()


def test_model_commands_sent_remotely_are_queued_in_the_store(
    writes: tuple[Served, Path],
) -> None:
    served, local_dir = writes
    changed(served, local_dir, "models", "extend", "garrison-test/nginx", "--period", "2h")
    for op in ("relearn", "learn-start", "learn-stop"):
        changed(served, local_dir, "models", op, "bd2ee8765fd0")
    with Console.open(served.data_dir) as there, Console.open(local_dir) as here:
        queued = [(c.op, c.profile_id, c.seconds) for c in there.pending_model_commands()]
        assert queued == [(c.op, c.profile_id, c.seconds) for c in here.pending_model_commands()]
    assert [q[0] for q in queued] == ["extend", "relearn", "learn-start", "learn-stop"]
    assert queued[0][2] == 7200.0


def test_incidents_bundles_and_the_gate_policy_changed_remotely_land_in_the_store(
    writes: tuple[Served, Path], tmp_path: Path
) -> None:
    served, local_dir = writes
    policy = tmp_path / "vulnerability.yaml"
    policy.write_text("rules:\n  - name: block criticals\n    block_threshold: critical\n")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("- name: blocks\n  channels: [ops-webhook]\n  effects: [block]\n")
    changed(served, local_dir, "incidents", "archive", "1")
    changed(served, local_dir, "forensics", "pin", "batch-worker")
    changed(served, local_dir, "policies", "vulnerability", "apply", "-f", policy)
    changed(served, local_dir, "alerts", "profiles", "apply", "-f", profiles, role="admin")
    for args in (
        ["incidents", "list", "--json"],
        ["forensics", "list", "--json"],
        ["policies", "vulnerability", "list"],
        ["alerts", "profiles", "list", "--json"],
    ):
        here = cli(NOT_LOCAL, *args, "--data-dir", local_dir).stdout
        there = served.local(*args).stdout
        assert there == here.replace(str(local_dir), str(served.data_dir))
    with Console.open(served.data_dir) as there:
        assert next(i.state for i in there.list_incidents()) == "archived"
        assert there.bundles().get(BUNDLE).pinned


def test_a_container_unblocked_remotely_is_unblocked_by_the_consoles_runtime(
    writes: tuple[Served, Path],
) -> None:
    served, _ = writes
    done = served.remote("containers", "unblock", "batch-worker", "--docker-host", "tcp://0:9")
    assert done.exit_code == 0, done.exception
    assert done.stdout == "batch-worker unblocked; restart policy 'always' restored.\n"
    assert ("set_restart_policy", MINER) in served.runtime.calls
    assert served.runtime.inspect(MINER).restart_policy == RestartPolicy("always")
    with Console.open(served.data_dir) as there:
        assert there.blocked_with_audits() == []


def test_a_role_too_low_is_refused_by_the_console_and_nothing_changes(
    writes: tuple[Served, Path], tmp_path: Path
) -> None:
    served, _ = writes
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    done = served.remote("rules", "apply", "-f", rules, role="auditor")
    assert done.exit_code == 1
    assert str(done.exception) == (
        f"console at {served.url}: auditor-1 (auditor) may not do this: it needs operator"
    )
    with Console.open(served.data_dir) as there:
        assert len(there.runtime_rules().rules) == 2


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("audits prune", []),
        ("alerts channels add", ["pager", "json://127.0.0.1:9/x"]),
        ("alerts channels remove", ["ops-webhook"]),
        ("alerts channels test", ["ops-webhook"]),
        ("forensics export", ["batch-worker", "-o", "never.tar.gz"]),
    ],
)
def test_what_only_the_consoles_host_can_do_says_so(
    reads: Served, command: str, options: list[str]
) -> None:
    done = reads.remote(*command.split(), *options)
    assert done.exit_code == 1
    assert str(done.exception) == (
        f"`garrison {command}` is not available through a remote console (GARRISON_CONSOLE_URL "
        "is set): run it on the console's host, or unset GARRISON_CONSOLE_URL to use the local "
        "store"
    )
    assert reads.local("alerts", "channels", "list").stdout.count("ops-webhook") == 1


def test_the_token_may_come_from_a_file(reads: Served, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(reads.tokens["auditor"] + "\n")
    env = {**NOT_LOCAL, URL_VAR: reads.url + "/", TOKEN_FILE_VAR: str(token)}
    done = cli(env, "models", "list", "--json")
    assert done.stdout == reads.local("models", "list", "--json").stdout


def garrison(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process: what a user sees on stderr."""
    clean = {k: v for k, v in os.environ.items() if k not in NOT_LOCAL}
    return subprocess.run([sys.executable, "-m", "garrison", *args], capture_output=True,
                          text=True, timeout=120, env={**clean, **env}, check=False)  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_wrong_token_an_unreachable_console_and_a_missing_token_are_one_line(
    reads: Served,
) -> None:
    forged = {URL_VAR: reads.url, TOKEN_VAR: "gt_000000000000_forged"}
    assert one_line(garrison(forged, "models", "list")) == (
        f"garrison: console at {reads.url} refused the token: "
        "the token is unknown, expired or revoked"
    )
    nobody = f"http://127.0.0.1:{free_port()}"
    line = one_line(garrison({URL_VAR: nobody, TOKEN_VAR: "gt_x_y"}, "status", "--json"))
    assert line.startswith(f"garrison: console unreachable at {nobody}: "), line
    assert "refused" in line.lower()
    line = one_line(garrison({URL_VAR: reads.url}, "rules", "list"))
    assert line.startswith("garrison: GARRISON_CONSOLE_URL is set but no token: "), line
    line = one_line(garrison({URL_VAR: "ftp://h", TOKEN_VAR: "gt_x"}, "rules", "list"))
    assert line == "garrison: GARRISON_CONSOLE_URL must be http(s)://HOST:PORT, not 'ftp://h'"


def test_over_tls_the_ca_bundle_is_what_lets_the_cli_in(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run([*openssl, *subject, "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    Console.open(tmp_path / "data").close()
    with serve(tmp_path / "data", tls=(cert, key)) as served:
        env = {**NOT_LOCAL, URL_VAR: served.url, TOKEN_VAR: served.tokens["auditor"]}
        trusted = cli({**env, CA_VAR: str(cert)}, "rules", "list", "--json")
        assert (trusted.exit_code, trusted.stdout) == (0, "[]\n"), trusted.exception
        untrusted = cli(env, "rules", "list", "--json")
        assert untrusted.exit_code == 1
        message = str(untrusted.exception)
        assert message.startswith(f"console unreachable at {served.url}: "), message
        assert "CERTIFICATE_VERIFY_FAILED" in message
