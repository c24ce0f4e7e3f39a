"""The simulated hosts of ``bench_fleet.py``: each enrolled as a defender enrols, then doing
what ``RemoteLink`` does, with its own client certificate, on two kept-alive TLS connections:
audits and statuses on one, the long-polled sync (policies, commands, models) on the other."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.audit.record import Audit
from garrison.fleet import link, wire
from garrison.fleet.pki import make_host_request
from garrison.fleet.sync import SyncAsk
from garrison.fleet.tls import client_context
from garrison.policy.stored import RUNTIME_KIND

LOCAL = "127.0.0.1"
ROUND = 0.5  # seconds between a host's sends (RemoteLink.flush_interval)
STATUS_EVERY = link.STATUS_EVERY
SYNC_WAIT = link.SYNC_WAIT
BATCH_MIN, BATCH_MAX = 50, wire.MAX_BATCH

# -- HTTP/1.1 over one kept-alive TLS connection -------------------------------------------------


class Connection:
    """The least HTTP a host needs (the console answers with Content-Length): cheap enough
    that the generator's own CPU stays small beside the console's."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            return await self._call(method, path, body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            raise

    async def _call(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(
                LOCAL, self.port, ssl=self.context, server_hostname=LOCAL
            )
        reader, writer = self.streams
        head = f"{method} {path} HTTP/1.1\r\nHost: {LOCAL}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        header = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(header[9:12]), await reader.readexactly(length)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


# -- the simulated hosts ------------------------------------------------------------------------


@dataclass
class Load:
    """What every host shares: the offered audit rate now, the policy version, the figures."""

    audit_rate: float  # per host, audits/s
    stop: bool = False
    version: int = 0  # the newest policy version set in the store
    changed_at: dict[int, float] = field(default_factory=dict)  # version → commit (monotonic)
    seen: dict[int, list[float]] = field(default_factory=dict)  # version → per-host delays
    latency: dict[str, list[float]] = field(default_factory=dict)  # request kind → seconds
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # audits the console answered 200 for
    backlog: int = 0


class Host:
    def __init__(
        self, name: str, conns: tuple[Connection, Connection], load: Load, template: tuple[str, str]
    ) -> None:
        self.name, self.load = name, load
        self.conn, self.sync_conn = conns
        self.epoch = secrets.token_hex(8)
        self.seq, self.cursor = 0, 0.0
        self.next_batch = random.randint(BATCH_MIN, BATCH_MAX)
        # As if running for long already: hosts reach their batch sizes at times spread evenly
        # from the start, not all after a first wait (the rate would ramp up for a minute).
        self.pending = random.uniform(0, self.next_batch)
        self.template = template
        self.seen_version = 0
        self.tag = ""

    async def run(self) -> None:
        syncing = asyncio.create_task(self._syncs())
        last = time.monotonic()
        next_status = last + random.uniform(0, STATUS_EVERY)
        await asyncio.sleep(random.uniform(0, ROUND))  # hosts started at different moments
        while not self.load.stop:
            now = time.monotonic()
            self.pending += self.load.audit_rate * (now - last)
            last = now
            await self._send_audits()
            if now >= next_status:
                next_status += STATUS_EVERY
                await self._ask("status", "POST", wire.STATUS, self._status())
            await asyncio.sleep(max(0.0, ROUND - (time.monotonic() - now)))
        syncing.cancel()
        self.conn.close()
        self.sync_conn.close()

    async def _syncs(self) -> None:
        await asyncio.sleep(random.uniform(0, 1.0))
        while not self.load.stop:
            await self._sync()

    async def _send_audits(self) -> None:
        if self.pending < self.next_batch:
            return
        while self.pending >= 1 and not self.load.stop:
            n = min(int(self.pending), BATCH_MAX)
            if await self._ask("audits", "POST", wire.AUDITS, self._batch(n)) is not None:
                self.pending -= n
                self.load.sent += n
            else:
                return
        self.next_batch = random.randint(BATCH_MIN, BATCH_MAX)

    def _batch(self, n: int) -> bytes:
        head, tail = self.template
        first = self.seq + 1
        self.seq += n
        docs = ",".join(f"{head}{self.name}-{i}{tail}" for i in range(first, self.seq + 1))
        return f'{{"epoch":"{self.epoch}","mark":{self.seq},"audits":[{docs}]}}'.encode()

    def _status(self) -> bytes:
        doc = {"status": {"pid": 4242, "version": "bench", "mode": "active", "containers": 12,
                          "uptimeSeconds": time.monotonic(), "counters": {
                              f"sensor{i}": i * 1000 for i in range(20)}}}  # fmt: skip
        return json.dumps(doc).encode()

    async def _sync(self) -> None:
        query = urllib.parse.urlencode(SyncAsk(self.tag, self.cursor, wait=SYNC_WAIT).query())
        data = await self._ask("sync", "GET", f"{wire.SYNC}?{query}", conn=self.sync_conn)
        if data is None:
            return
        answer = json.loads(data)
        self.tag = answer.get("policiesTag", "")
        self.cursor = max(self.cursor, float(answer.get("cursor") or 0))
        rules = (answer.get("policies") or {}).get(RUNTIME_KIND) or {}
        names = [r.get("name", "") for r in rules.get("rules", [])]
        version = int(names[0].rsplit("-", 1)[1]) if names else 0
        if version > self.seen_version:
            when = time.monotonic()
            for v in range(self.seen_version + 1, version + 1):
                if v in self.load.changed_at:
                    self.load.seen.setdefault(v, []).append(when - self.load.changed_at[v])
            self.seen_version = version

    async def _ask(
        self, kind: str, method: str, path: str, body: bytes | None = None, conn: Any = None
    ) -> Any:
        start = time.monotonic()
        try:
            status, data = await (conn or self.conn).call(method, path, body)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, data = 0, b""
        if status != 200:
            self.load.errors[kind] = self.load.errors.get(kind, 0) + 1
            await asyncio.sleep(0.25)
            return None
        self.load.latency.setdefault(kind, []).append(time.monotonic() - start)
        return data


def audit_template() -> tuple[str, str]:
    """One audit's JSON cut around its message, which makes each audit a finding of its own."""
    audit = Audit(time.time(), "bench", "processes", "unexpectedProcess", "alert", "@@",
                  containerId="c" * 64, containerName="web-1", imageName="nginx:1.27",
                  imageId="sha256:" + "a" * 64, ruleName="bench", pid=4242,
                  processPath="/usr/bin/curl", parentPath="/bin/sh",
                  command="curl -s http://10.0.0.1/", user="www-data",
                  profileId="sha256:" + "a" * 64 + "_nginx")  # fmt: skip
    text = json.dumps(wire.audit_doc(audit))
    head, tail = text.split('"msg": "@@"')
    return head + '"msg": "/usr/bin/curl launched, not in the model, ', '"' + tail


async def enrol_all(
    names: list[str], tokens: list[str], port: int, work: Path, load: Load
) -> list[Host]:
    """Each host enrolled (its key made here, its request signed by the console), 16 at once."""
    ca_pem = (work / "console" / "listener" / "ca.pem").read_bytes()  # the store's CA
    trusting = ssl.create_default_context(cadata=ca_pem.decode())
    gate = asyncio.Semaphore(16)

    async def one(name: str, token: str) -> Path:
        request = make_host_request(name)
        body = json.dumps({"token": token, "host": name, "csr": request.csr_pem.decode()})
        async with gate:
            conn = Connection(port, trusting)
            status, data = await conn.call("POST", wire.ENROL_HOSTS, body.encode())
            conn.close()
        if status != 200:
            raise SystemExit(f"enrolment of {name}: {status} {data[:200]!r}")
        folder = work / "hosts" / name
        folder.mkdir(parents=True)
        (folder / "host.pem").write_bytes(json.loads(data)["cert"].encode())
        (folder / "host-key.pem").write_bytes(request.key_pem)
        return folder

    folders = await asyncio.gather(*(one(n, t) for n, t in zip(names, tokens, strict=True)))
    template = audit_template()

    def connections(folder: Path) -> tuple[Connection, Connection]:
        context = client_context(folder / "host.pem", folder / "host-key.pem", ca_pem)
        return Connection(port, context), Connection(port, context)

    return [Host(n, connections(f), load, template) for n, f in zip(names, folders, strict=True)]
