"""``garrison authz serve`` as users run it — a watchdog process and its plugin child — in front
of a private dockerd, with its store and vulnerability database in a folder of its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from garrison.devengine import DEBIAN, EngineConfig, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.scan.gate import probe_plugin
from garrison.scan.gate.wiring import UnixConnection
from garrison.scan.inventory import inventory_of
from garrison.scan.rules import save_policy
from garrison.scan.vulndb import VulnDB
from garrison.store import SQLiteStore
from tests.scan.osv_live import write_live_records

BUSYBOX = "garrison-test/busybox:latest"
PLUGIN_DIR = Path("/run/docker/plugins")


@dataclass
class CliGated:
    """A private dockerd gated by a real ``garrison authz serve`` process."""

    engine: PrivateEngine
    client: docker.DockerClient
    name: str
    data: Path
    plugin: subprocess.Popen[bytes]
    log: Path

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.engine.base_url}
        return subprocess.run(
            ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip

    def request(self, method: str, uri: str, body: Any = None) -> tuple[int, str]:
        """One raw API request on the engine's socket, the URI sent exactly as written."""
        conn = UnixConnection(self.engine.socket_path, 60)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            conn.putrequest(method, uri, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", "docker")
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(data or b"")))
            conn.endheaders(data)
            reply = conn.getresponse()
            return reply.status, reply.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def store(self) -> SQLiteStore:
        return SQLiteStore.in_dir(self.data)

    def plugin_child(self) -> int:
        """The pid of the plugin process the watchdog runs now."""
        children = Path(f"/proc/{self.plugin.pid}/task/{self.plugin.pid}/children").read_text()
        return int(children.split()[0])


COMPLIANCE = {"rules": [{"name": "gate", "checks": {"5.4": "block", "5.23": "block"}}]}
VULNERABILITY = {"rules": [{"name": "block critical", "effect": "block"}]}


def _placeholder_osv(path: Path) -> Path:
    """A one-record OSV archive, so that the plugin finds a database at start."""
    record = {
        "id": "GARRISON-TEST-0", "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "no-such-package"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}],
    }  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("GARRISON-TEST-0.json", json.dumps(record))
    return path


@contextlib.contextmanager
def cli_gated() -> Iterator[CliGated]:
    ensure_packages()
    name = f"garrison-diff-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="gd-", dir="/tmp"))  # short: unix socket paths
    data = work / "data"
    store = SQLiteStore.in_dir(data)
    save_policy(store, "compliance", COMPLIANCE)
    save_policy(store, "vulnerability", VULNERABILITY)
    store.close()
    VulnDB.in_data_dir(data).import_path(_placeholder_osv(work / "placeholder.zip"))
    engine = PrivateEngine(
        EngineConfig(state_dir=work / "e", extra_args=(f"--authorization-plugin={name}",))
    )
    log = work / "plugin.log"
    plugin = _start_plugin(name, work, engine.base_url, log)
    try:
        engine.start()
        client = engine.client()
        ensure_all(client, cache_dir_from_env())
        installed = inventory_of(client, DEBIAN.name).packages
        VulnDB.in_data_dir(data).import_path(write_live_records(work / "osv", installed))
        yield CliGated(engine, client, name, data, plugin, log)
    finally:
        engine.stop()  # before the plugin: dockerd calls it while shutting down
        _stop(plugin)
        shutil.rmtree(work, ignore_errors=True)


def _start_plugin(name: str, work: Path, docker_host: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "garrison", "authz", "serve", "--name", name,
        "--socket", str(work / "s" / "authz.sock"), "--link-dir", str(PLUGIN_DIR),
        "--docker-host", docker_host, "--data-dir", str(work / "data"),
    ]  # fmt: skip
    with log.open("wb") as out:
        plugin = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not probe_plugin(PLUGIN_DIR / f"{name}.sock", timeout=1).answering:
        if plugin.poll() is not None or time.monotonic() > deadline:
            _stop(plugin)
            raise RuntimeError(f"the plugin did not start: {log.read_text()}")
        time.sleep(0.1)
    return plugin


def _stop(plugin: subprocess.Popen[bytes]) -> None:
    if plugin.poll() is None:
        plugin.send_signal(signal.SIGTERM)
        try:
            plugin.wait(30)
        except subprocess.TimeoutExpired:
            plugin.kill()
            plugin.wait()
