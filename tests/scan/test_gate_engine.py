"""The gate as a real Docker authorization plugin: a private dockerd started with
``--authorization-plugin`` after the plugin listens, driven with the docker CLI and raw HTTP.

The scanner is the real one: the image is read with ``docker save`` through the gated daemon
(the plugin's own calls pass through the plugin) and matched against a vulnerability database
of OSV records written from the image's live versions (tests/scan/osv_live.py): a critical
glibc advisory fixed just above the installed glibc, whatever Debian has published since.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from garrison.devengine import DEBIAN, EngineConfig, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.scan.gate import Gate, GateServer, ServerConfig, docker_containers, probe_plugin
from garrison.scan.inventory import inventory_of
from garrison.scan.rules import Policies, parse_policy
from garrison.scan.scanner import Scanner
from garrison.scan.vulndb import VulnDB
from garrison.store import SQLiteStore
from tests.scan.osv_live import write_live_records

pytestmark = pytest.mark.engine
BUSYBOX = "garrison-test/busybox:latest"
REFUSED_CRITICAL = re.compile(
    r"\[Garrison\] Container operation blocked by policy: block critical, "
    r"has \d+ vulnerabilities, \[critical:\d+( high:\d+)?\]"
)


def policies(vuln_effect: str, comp_checks: dict[str, str]) -> Policies:
    vuln = parse_policy(
        "vulnerability", [{"name": f"{vuln_effect} critical", "effect": vuln_effect}]
    )
    comp = parse_policy("compliance", [{"name": "hardening", "checks": comp_checks}])
    return Policies(vuln, comp)  # type: ignore[arg-type]


@dataclass
class Gated:
    """A gated private engine, and the knobs the tests turn."""

    engine: PrivateEngine
    client: docker.DockerClient
    name: str
    store: SQLiteStore
    images: dict[str, str]
    policies: Policies = field(default_factory=lambda: policies("alert", {}))
    blocked: set[str] = field(default_factory=set)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.engine.base_url}
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def denial(self, text: str) -> str:
        return f"authorization denied by plugin {self.name}: {text}"


@pytest.fixture(scope="module")
def gated() -> Iterator[Gated]:
    ensure_packages()
    name = f"garrison-gate-test-{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="gg-", dir="/tmp"))  # short: unix socket paths
    state = workdir / "e"
    engine = PrivateEngine(
        EngineConfig(state_dir=state, extra_args=(f"--authorization-plugin={name}",))
    )
    # A fixed API version: the client must not call the daemon before the daemon runs.
    lazy = docker.DockerClient(base_url=engine.base_url, version="1.41", timeout=120)
    vulndb = VulnDB.in_data_dir(workdir)
    scanner = Scanner.for_docker(lazy, vulndb)
    store = SQLiteStore(workdir / "garrison.db")
    box: dict[str, Gated] = {}
    gate = Gate(
        scanner,
        lambda: box["g"].policies,
        on_audit=lambda audit: store.add_audits([audit]),
        is_blocked=lambda cid: cid in box["g"].blocked,
        containers=docker_containers(lazy),
    )
    server = GateServer(gate, ServerConfig(socket_path=workdir / "authz.sock", name=name))
    try:
        server.start()
        engine.start()
        client = engine.client()
        images = ensure_all(client, cache_dir_from_env())
        installed = inventory_of(client, DEBIAN.name).packages
        vulndb.import_path(write_live_records(workdir / "osv", installed))
        box["g"] = Gated(engine, client, name, store, images)
        yield box["g"]
    finally:
        engine.stop()  # before the plugin: dockerd calls it while shutting down
        server.stop()
        lazy.close()
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def cleanup(gated: Gated) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for ref in names:
        with contextlib.suppress(docker.errors.NotFound):
            gated.client.containers.get(ref).remove(force=True)


def test_plugin_answers_activate_like_dockerd_asks(gated: Gated) -> None:
    link = Path("/run/docker/plugins") / f"{gated.name}.sock"
    assert probe_plugin(link).answering


def test_privileged_run_is_refused_under_a_compliance_block_rule(gated: Gated) -> None:
    gated.policies = policies("alert", {"5.4": "block"})
    run = gated.docker("run", "--rm", "--privileged", BUSYBOX, "true")
    assert run.returncode != 0
    expected = gated.denial(
        "[Garrison] Container operation blocked by policy: hardening, violates 1 compliance "
        "check: GCIS-5.4 Privileged container"
    )
    assert expected in run.stderr


def test_compliant_run_is_allowed(gated: Gated) -> None:
    gated.policies = policies("block", {"5.4": "block"})
    run = gated.docker("run", "--rm", BUSYBOX, "echo", "allowed")
    assert (run.returncode, run.stdout) == (0, "allowed\n"), run.stderr


def test_image_with_a_critical_finding_is_refused_under_block_and_allowed_under_alert(
    gated: Gated, cleanup: list[str]
) -> None:
    gated.policies = policies("block", {})
    refused = gated.docker("create", DEBIAN.name, "true")
    assert gated.denial("") in refused.stderr
    assert REFUSED_CRITICAL.search(refused.stderr), refused.stderr
    gated.policies = policies("alert", {})
    cleanup.append("gate-alerted")
    allowed = gated.docker("create", "--name", "gate-alerted", DEBIAN.name, "true")
    assert allowed.returncode == 0, allowed.stderr
    audits = [a for a in gated.store.list_audits() if a.type == "vulnerability"]
    effects = {(a.effect, a.ruleName, a.containerName) for a in audits}
    assert ("block", "block critical", "") in effects
    assert ("alert", "alert critical", "gate-alerted") in effects
    assert all(a.imageId == gated.images[DEBIAN.name] for a in audits if a.effect != "allow")


def raw_create(gated: Gated, body: bytes, chunked: bool) -> tuple[int, str]:
    """POST /containers/create on the engine socket, by hand."""
    framing = (
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        if chunked
        else b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    head = (
        b"POST /v1.41/containers/create HTTP/1.1\r\n"
        b"Host: docker\r\nContent-Type: application/json\r\n"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(str(gated.engine.socket_path))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + framing)  # dockerd may answer and close before reading it all
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
            if b"\r\n\r\n" in reply and reply.rstrip().endswith(b"}"):
                break
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[1].decode()


def test_chunked_create_whose_body_dockerd_withholds_is_refused_with_the_reason(
    gated: Gated,
) -> None:
    gated.policies = policies("alert", {})
    padding = "x" * (2 << 20)  # over 1 MiB: dockerd forwards no body even with the CVE fix
    body = json.dumps({"Image": BUSYBOX, "Cmd": ["true"], "Labels": {"pad": padding}}).encode()
    status, text = raw_create(gated, body, chunked=True)
    assert status == 403
    message = json.loads(text)["message"]
    assert message.startswith(gated.denial("[Garrison] Container operation blocked: the "))
    assert "without its body" in message
    assert "CVE-2024-41110" in message


def test_small_chunked_privileged_create_is_refused_too(gated: Gated) -> None:
    gated.policies = policies("alert", {"5.4": "block"})
    body = json.dumps({"Image": BUSYBOX, "HostConfig": {"Privileged": True}}).encode()
    status, text = raw_create(gated, body, chunked=True)
    assert status == 403, text
    assert "[Garrison] Container operation blocked" in json.loads(text)["message"]


def test_start_of_a_blocked_container_is_refused(gated: Gated, cleanup: list[str]) -> None:
    gated.policies = policies("alert", {})
    cleanup.append("gate-blocked")
    created = gated.client.containers.create(BUSYBOX, "sleep 60", name="gate-blocked")
    gated.blocked.add(str(created.id))
    try:
        run = gated.docker("start", "gate-blocked")
    finally:
        gated.blocked.clear()
    assert (
        gated.denial(
            "[Garrison] Container operation blocked: container gate-blocked is blocked by a "
            "runtime rule"
        )
        in run.stderr
    )


def test_privileged_exec_is_refused_under_a_block_rule(gated: Gated, cleanup: list[str]) -> None:
    gated.policies = policies("alert", {"5.22": "block"})
    cleanup.append("gate-exec")
    gated.client.containers.run(BUSYBOX, "sleep 60", name="gate-exec", detach=True)
    refused = gated.docker("exec", "--privileged", "gate-exec", "id")
    assert "GCIS-5.22 Privileged exec" in refused.stderr
    plain = gated.docker("exec", "gate-exec", "echo", "ok")
    assert plain.stdout == "ok\n", plain.stderr
