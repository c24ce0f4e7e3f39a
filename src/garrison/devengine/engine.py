"""A private Docker engine under one state directory, for development, tests and demos.

It never uses the host's ``/var/run/docker.sock`` or ``/var/lib/docker``: data root,
exec root, pid file, socket and daemon config all live under ``state_dir``, and the
engine runs with ``--bridge=none`` so containers get only a loopback interface.
The recipe is the one verified in ``shared/notes/kernel.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import docker
import docker.errors

from garrison.devengine import proctree
from garrison.errors import EngineError

ENV_DIR = "GARRISON_ENGINE_DIR"
ENV_KEEP = "GARRISON_ENGINE_KEEP"
DEFAULT_DIR = Path("/var/tmp/garrison-engine")


@dataclass(frozen=True)
class EngineConfig:
    """Where the private engine keeps its state and whether it outlives its user."""

    state_dir: Path = DEFAULT_DIR
    keep: bool = False
    start_timeout: float = 60.0
    stop_timeout: float = 30.0
    extra_args: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, default_dir: Path = DEFAULT_DIR) -> EngineConfig:
        """``GARRISON_ENGINE_DIR`` picks the state dir; ``GARRISON_ENGINE_KEEP=1`` keeps it up."""
        state_dir = Path(os.environ.get(ENV_DIR) or default_dir)
        keep = os.environ.get(ENV_KEEP, "").lower() in {"1", "true", "yes"}
        return cls(state_dir=state_dir, keep=keep)


class PrivateEngine:
    """A dockerd started (or reused) by Garrison, stopped by its pid."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.reused = False
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "docker.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "docker.pid"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "dockerd.log"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        """A Docker SDK client bound to this engine's socket."""
        return docker.DockerClient(base_url=self.base_url, timeout=timeout)

    def pid(self) -> int | None:
        """The dockerd pid from the pid file, if that process is alive and is a dockerd."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if proctree.comm(pid) == "dockerd" else None

    def answers(self) -> bool:
        """True when the engine answers a ping on its socket."""
        if not self.socket_path.exists():
            return False
        try:
            client = self.client(timeout=5)
        except docker.errors.DockerException:  # the version probe timed out: it hangs
            return False
        try:
            return bool(client.ping())
        except (docker.errors.DockerException, OSError):
            return False
        finally:
            client.close()

    def start(self) -> PrivateEngine:
        """Reuse a running engine in the state dir, or start one and wait until it answers."""
        if self.pid() is not None and self.answers():
            self.reused = True
            return self
        self._spawn()
        self._wait_ready()
        return self

    def _spawn(self) -> None:
        for sub in ("data", "exec"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        config_file = self.state_dir / "daemon.json"
        config_file.write_text(json.dumps({}))
        self.socket_path.unlink(missing_ok=True)
        argv = [
            "dockerd",
            f"--data-root={self.state_dir / 'data'}",
            f"--exec-root={self.state_dir / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--host={self.base_url}",
            f"--config-file={config_file}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            *self.config.extra_args,
        ]
        if self.config.keep:
            # An engine that outlives this process is detached from it (setsid -f forks and
            # returns at once), so no child is left unwaited when this process exits.
            argv = ["setsid", "-f", *argv]
        with self.log_path.open("ab") as log:
            try:
                self._process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            except OSError as exc:
                raise EngineError(f"cannot start dockerd: {exc}") from exc
        if self.config.keep:
            self._process.wait()
            self._process = None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise EngineError(f"dockerd exited at start; see {self.log_path}:\n{self._tail()}")
            if self.answers():
                return
            time.sleep(0.2)
        self.stop()
        raise EngineError(f"dockerd did not answer within {self.config.start_timeout:.0f} s")

    def _tail(self, lines: int = 10) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def owned_pids(self) -> set[int]:
        """dockerd, its descendants, and processes started from its state dir (shims)."""
        pid = self.pid()
        roots = {pid} if pid else set()
        if self._process is not None and self._process.poll() is None:
            roots.add(self._process.pid)
        pids = proctree.descendants(roots) | roots
        return pids | proctree.pids_mentioning(str(self.state_dir / "exec"))

    def stop(self) -> set[int]:
        """Stop the engine by its pid; return the pids it had, all gone when this returns."""
        owned = self.owned_pids()
        dockerd = self.pid() or (self._process.pid if self._process else None)
        if dockerd is not None:
            _signal(dockerd, signal.SIGTERM)
            if not proctree.wait_gone({dockerd}, self.config.stop_timeout):
                _signal(dockerd, signal.SIGKILL)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=self.config.stop_timeout)
        leftovers = {p for p in owned if proctree.alive(p)}
        for pid in leftovers:
            _signal(pid, signal.SIGKILL)
        if not proctree.wait_gone(owned, self.config.stop_timeout):
            raise EngineError(f"engine processes still alive: {sorted(proctree.alive_of(owned))}")
        return owned

    def restart(self) -> None:
        """Stop and start again with the same state (images, containers) kept."""
        self.stop()
        self._process = None
        self.reused = False
        self._spawn()
        self._wait_ready()

    def __enter__(self) -> PrivateEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.config.keep:
            self.stop()


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
