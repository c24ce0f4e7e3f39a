"""What the fleet engine test shares (no tests here): a ``garrison console serve`` process with
its defender listener, ``garrison defender`` processes of enrolled hosts, each stopped by its
pid, extra private engines, and the console's store read as the test's witness."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker

from garrison.audit.query import AuditFilter
from garrison.devengine import DEBIAN, EngineConfig, PrivateEngine
from garrison.devengine.images import cache_dir_from_env, ensure_image
from garrison.store.postgres import PostgresStore
from tests.support import wait_for

STOP_WAIT = 30.0  # the most a process is given to stop after SIGTERM; not a timing assertion


def garrison_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The ``garrison`` command line in a child process, with ``env`` added to ours."""
    return subprocess.run(
        [sys.executable, "-m", "garrison", *args],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
    )  # fmt: skip


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> int | None:
    """Signal the process by its pid and wait for it (killed when it does not stop)."""
    if proc is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        return proc.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()


def tls_answers(port: int) -> bool:
    """The listener on 127.0.0.1:``port`` completes a TLS handshake (no certificate checked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            context.wrap_socket(raw),
        ):
            return True
    except OSError:
        return False


LISTENING = "Defenders enrol and report at"  # what the console prints once it listens


@dataclasses.dataclass
class ConsoleProcess:
    """``garrison console serve`` on a PostgreSQL store, with its defender listener; ``extra``:
    more of its options (``--reuse-port`` for a replica sharing its ports with others)."""

    store_url: str
    data_dir: Path
    api_port: int
    defender_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()
    _log_from: int = 0  # the log's size when this process started

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.defender_port}"

    @property
    def env(self) -> dict[str, str]:
        """What the console's own CLI commands need to reach its store."""
        return {"GARRISON_STORE": self.store_url}

    def start(self) -> ConsoleProcess:
        argv = [
            sys.executable, "-m", "garrison", "console", "serve",
            "--store", self.store_url, "--data-dir", str(self.data_dir),
            "--address", f"127.0.0.1:{self.api_port}",
            "--defender-address", f"127.0.0.1:{self.defender_port}", *self.extra,
        ]  # fmt: skip
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for("the console's defender listener", self._ready)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"console exited {self.proc.returncode}:\n{self.log_text()}")
        if "--reuse-port" in self.extra:  # another replica may answer on the port: ask the log
            return LISTENING.encode() in self.log.read_bytes()[self._log_from :]
        return tls_answers(self.defender_port)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        code = stop_process(self.proc, sig)
        self.proc = None
        return code

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return garrison_cli(self.env, *args, "--data-dir", str(self.data_dir))

    def token(self) -> dict[str, Any]:
        made = self.cli("hosts", "token", "create", "--console", self.url, "--json")
        assert made.returncode == 0, made.stderr
        found: dict[str, Any] = json.loads(made.stdout)
        return found

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclasses.dataclass
class HostDefender:
    """``garrison defender`` of one host (its own engine and data folder), stopped by pid."""

    name: str
    engine: PrivateEngine
    data_dir: Path
    console: ConsoleProcess
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def argv(self, token: Mapping[str, Any] | None) -> list[str]:
        argv = [
            sys.executable, "-m", "garrison", "defender", "--console", self.console.url,
            "--host", self.name, "--docker-host", self.engine.base_url,
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        if token is not None:
            argv += ["--enrol-token", token["token"], "--console-ca-sha256"]
            argv += [token["consoleCaSha256"]]
        return argv

    def start(self, token: Mapping[str, Any] | None = None) -> HostDefender:
        """Start the defender (enrolling with ``token`` the first time); returns at once."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        env.pop("GARRISON_STORE", None)  # a host knows its console, not its store
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(token), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        code = stop_process(self.proc, sig)
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Witness:
    """The console's store as the test reads it (its own connections, opened anew when the
    server was restarted under it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = PostgresStore(url)

    def reopen(self) -> None:
        with contextlib.suppress(Exception):
            self.store.close()
        self.store = PostgresStore(self.url)

    def close(self) -> None:
        self.store.close()

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Each host's last status, by host name."""
        found = self.store.list_status("defender:")
        return {str(doc.get("host")): dict(doc) for _, doc in found}

    def status(self, host: str) -> dict[str, Any]:
        return self.statuses().get(host, {})

    def audits(self, host: str, **query: Any) -> list[Any]:
        return self.store.list_audits(AuditFilter(host=host, limit=0, **query))

    def seen(self, host: str, **query: Any) -> int:
        """How many times the audits of ``host`` matching ``query`` were reported (an audit
        reported again with the same key adds to its count)."""
        return sum(a.count for a in self.audits(host, **query))


def extra_engine(state_dir: Path) -> PrivateEngine:
    """A private engine of its own, with the Debian test image loaded."""
    config = EngineConfig(state_dir=state_dir, extra_args=("--shutdown-timeout=2",))
    engine = PrivateEngine(config).start()
    try:
        with contextlib.closing(engine.client()) as client:
            ensure_image(client, DEBIAN, cache_dir_from_env())
    except BaseException:
        engine.stop()
        raise
    return engine


PREFIX = "fleet-"  # the names of the containers this test makes, removed at the end


@contextlib.contextmanager
def containers_of(engine: PrivateEngine) -> Iterator[docker.DockerClient]:
    """A client of ``engine``; the containers of this test on it are removed before (a
    session killed midway may have left some on a reused engine) and at the end."""
    client = engine.client()
    try:
        remove_ours(client)
        yield client
    finally:
        remove_ours(client)
        client.close()


SHARED_IMAGE = "fleet-shared:1"  # the image the model test makes on two engines


def remove_ours(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(SHARED_IMAGE, force=True)
