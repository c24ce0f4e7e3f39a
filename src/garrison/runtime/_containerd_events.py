"""containerd's events, read from ``ctr events``, in Docker's vocabulary.

containerd topic → action (the attributes keep what the event carried):

    /containers/create      create
    /containers/update      update
    /containers/delete      destroy
    /tasks/start            start          pid
    /tasks/exit             die            exitCode, pid   (the task's own process)
    /tasks/exit             exec_die       execID, exitCode (an exec's process)
    /tasks/exec-added       exec_create    execID
    /tasks/exec-started     exec_start     execID, pid, command (read from /proc: see below)
    /tasks/paused           pause
    /tasks/resumed          unpause
    /tasks/oom              oom

Left out: /tasks/create (a start follows), /tasks/delete (the die came first), and the
image, content, snapshot and namespace topics. containerd keeps no history: ``since`` is
not replayed, which is why the tracker lists the running containers after it subscribes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from garrison.errors import ContainerGone, RuntimeRefused, RuntimeUnavailable
from garrison.runtime._ctr import Ctr, error_of, read_text
from garrison.runtime.base import RuntimeEvent

log = logging.getLogger(__name__)

RUNC_INIT = "runc init"  # what an exec's process is until runc execs the command

PROBE_TOPIC = "/garrison/probe"
PROBE_TIMEOUT = 10.0
PROBE_REPEAT = 0.5  # a probe published before containerd subscribed the stream is lost

_ACTIONS = {
    "/containers/create": "create",
    "/containers/update": "update",
    "/containers/delete": "destroy",
    "/tasks/start": "start",
    "/tasks/exec-added": "exec_create",
    "/tasks/exec-started": "exec_start",
    "/tasks/paused": "pause",
    "/tasks/resumed": "unpause",
    "/tasks/oom": "oom",
}

# Go's time.Time.String(): "2026-12-04 18:55:38.08718532 +0000 UTC" (fraction optional).
_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d{4})")


def parse_line(line: str) -> tuple[float, str, str, dict[str, Any]] | None:
    """``TIME NAMESPACE TOPIC JSON`` as ctr prints each event; None for anything else."""
    fields = line.rstrip("\n").split(" ", 6)
    if len(fields) < 6:
        return None
    match = _TIME.fullmatch(" ".join(fields[:3]))
    if match is None:
        return None
    try:
        payload = json.loads(fields[6]) if len(fields) == 7 and fields[6] else {}
    except json.JSONDecodeError:
        return None
    return _timestamp(match), fields[4], fields[5], payload if isinstance(payload, dict) else {}


def _timestamp(match: re.Match[str]) -> float:
    when = datetime.strptime(match.group(1) + match.group(3), "%Y-%m-%d %H:%M:%S%z")
    fraction = match.group(2) or "0"
    return (when + timedelta(microseconds=int(fraction[:6].ljust(6, "0")))).timestamp()


def event_of(when: float, topic: str, payload: dict[str, Any]) -> RuntimeEvent | None:
    """The RuntimeEvent for one containerd event; None for topics Garrison does not follow."""
    container_id = str(payload.get("container_id") or payload.get("id") or "")
    kept = (("pid", "pid"), ("execID", "exec_id"), ("image", "image"))
    attributes = {key: str(payload[src]) for key, src in kept if src in payload}
    if topic == "/tasks/exit":
        exec_id = str(payload.get("id") or "")
        attributes["exitCode"] = str(payload.get("exit_status") or 0)
        if exec_id and exec_id != container_id:
            attributes["execID"] = exec_id
            return RuntimeEvent("exec_die", container_id, when, attributes)
        return RuntimeEvent("die", container_id, when, attributes)
    action = _ACTIONS.get(topic)
    if action is None or not container_id:
        return None
    return RuntimeEvent(action, container_id, when, attributes)


def _probe_payload(token: str) -> bytes:
    """A protobuf ``google.protobuf.Any`` holding ``containerd.events.ContainerUpdate{id}``,
    encoded by hand: field 1 (type_url) and 2 (value) are length-delimited strings."""

    def field(number: int, data: bytes) -> bytes:
        assert len(data) < 128  # one-byte varint lengths are all this needs
        return bytes([number << 3 | 2, len(data)]) + data

    return field(1, b"containerd.events.ContainerUpdate") + field(2, field(1, token.encode()))


class ContainerdEventStream:
    """``ctr events`` for one namespace; ``close()`` works from any thread.

    It is open on return: containerd subscribes a client a little after ctr connects, so the
    constructor publishes a probe event of its own (``/garrison/probe``, with the
    ``containerd publish`` that shims use) and waits until the stream sees it. Other
    subscribers to the namespace see that probe too; its topic is Garrison's own.
    """

    def __init__(self, ctr: Ctr, containerd: str = "containerd", proc: str = "/proc") -> None:
        self._ctr = ctr
        self._proc = proc
        self._closed = False
        self._pending: deque[RuntimeEvent] = deque()
        ctr.check_socket()
        # ctr's complaints, for the error when it ends (a file: a pipe could fill and stall it).
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by close()
        try:
            self._process = subprocess.Popen(
                ctr.argv("events", f"namespace=={ctr.namespace}"),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            )  # fmt: skip
        except OSError as exc:
            self._stderr.close()
            raise RuntimeUnavailable(f"cannot run {ctr.binary}: {exc}") from exc
        self._lock = threading.Lock()
        try:
            self._wait_for_probe(containerd)
        except BaseException:
            self.close()
            raise

    def _wait_for_probe(self, containerd: str) -> None:
        """Publish the probe until the stream sees it (containerd drops an event sent before
        the subscription is in place, so one probe is not enough under load), for at most
        PROBE_TIMEOUT; what comes before it is kept for the reader."""
        token = "probe-" + secrets.token_hex(8)
        seen = threading.Event()
        failed: list[Exception] = []
        publisher = threading.Thread(target=self._publish_until, daemon=True,
                                     args=(containerd, token, seen, failed))  # fmt: skip
        timer = threading.Timer(PROBE_TIMEOUT, self._process.kill)
        timer.start()
        publisher.start()
        try:
            while True:
                parsed = self._read()
                if parsed is None:
                    raise failed[0] if failed else self._ended_error()
                when, _ns, topic, payload = parsed
                if topic == PROBE_TOPIC and payload.get("id") == token:
                    return
                event = self._event(when, topic, payload)
                if event is not None:
                    self._pending.append(event)
        finally:
            seen.set()
            timer.cancel()
            publisher.join(PROBE_TIMEOUT)

    def _publish_until(
        self, containerd: str, token: str, seen: threading.Event, failed: list[Exception]
    ) -> None:
        """Publish every PROBE_REPEAT s until ``seen``; a failure ends ctr (and the wait)."""
        while not seen.is_set():
            try:
                self._publish(containerd, token)
            except (RuntimeUnavailable, RuntimeRefused, ContainerGone) as exc:
                failed.append(exc)
                self._process.kill()
                return
            seen.wait(PROBE_REPEAT)

    def _publish(self, containerd: str, token: str) -> None:
        argv = [containerd, "--address", self._ctr.address, "publish",
                "--namespace", self._ctr.namespace, "--topic", PROBE_TOPIC]  # fmt: skip
        try:
            result = subprocess.run(argv, input=_probe_payload(token), capture_output=True,
                                    timeout=PROBE_TIMEOUT, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeUnavailable(f"cannot publish the event probe: {exc}") from exc
        if result.returncode != 0:
            raise error_of(result.stderr.decode(errors="replace"), "")

    def _read(self) -> tuple[float, str, str, dict[str, Any]] | None:
        """The next parsed line; None at the end of ctr's output."""
        assert self._process.stdout is not None
        while True:
            try:
                line = self._process.stdout.readline()
            except (ValueError, OSError):  # closed by close() from another thread
                return None
            if not line:
                self._process.stdout.close()
                return None
            parsed = parse_line(line.decode(errors="replace"))
            if parsed is not None:
                return parsed

    def _event(self, when: float, topic: str, payload: dict[str, Any]) -> RuntimeEvent | None:
        event = event_of(when, topic, payload)
        if event is not None and event.action == "exec_start" and "pid" in event.attributes:
            # containerd's event has no command line: the exec's process has it, for as long
            # as it lives (empty when it has already exited or replaced itself).
            command = self._command(event.attributes["pid"])
            event = RuntimeEvent(event.action, event.container_id, event.time,
                                 {**event.attributes, "command": command})  # fmt: skip
        return event

    def _command(self, pid: str) -> str:
        """The exec's command line. Right after the event the process may still be runc's
        ``runc init``, about to exec the command: read again for up to 50 ms."""
        for _ in range(50):
            raw = read_text(f"{self._proc}/{pid}/cmdline")
            command = " ".join(arg for arg in raw.split("\0") if arg)
            if command != RUNC_INIT:
                return command
            time.sleep(0.001)
        return command

    def __iter__(self) -> Iterator[RuntimeEvent]:
        return self

    def __next__(self) -> RuntimeEvent:
        if self._pending:
            return self._pending.popleft()
        while True:
            parsed = self._read()
            if parsed is None:
                if self._closed:
                    raise StopIteration
                raise self._ended_error()
            event = self._event(parsed[0], parsed[2], parsed[3])
            if event is not None:
                return event

    def _ended_error(self) -> RuntimeUnavailable:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        try:
            self._stderr.seek(0)
            why = self._stderr.read().decode(errors="replace").strip().splitlines()
        except (ValueError, OSError):  # closed meanwhile
            why = []
        return RuntimeUnavailable(
            f"the containerd event stream ended: {why[-1] if why else 'ctr exited'}"
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(ProcessLookupError):
            self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        assert self._process.stdout is not None
        self._process.stdout.close()
        self._stderr.close()
