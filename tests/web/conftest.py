"""The console's pages in process (the real app), on a real SQLite store holding an audit of
each effect, a model, a blocked container and a rule; one user per role."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from garrison.api import create_app
from garrison.audit.record import Audit
from garrison.console import Console
from garrison.incidents import Incident
from garrison.policy.loading import load_rules
from garrison.runtime.base import RestartPolicy
from garrison.runtime.fake import FakeRuntime
from garrison.scan.types import Severity
from garrison.store.base import BlockedContainer
from tests.store.test_store_scans import report

PASSWORD = "correct horse battery"
WEB = "3f2a9c41d0e7" + "a" * 52
MINER = "77c0ffee1234" + "b" * 52
PROFILE = "sha256:5888a9cdfd23" + "c" * 52 + "_default"
IMAGE = "sha256:" + "e5" * 32
RULES = """
rules:
  - name: shop
    scope: [{images: ["shop:*"]}]
    processes: {denied: {effect: alert, paths: [nc]}}
  - name: everything else
    processes: {effect: alert}
"""


@dataclass
class Site:
    app: FastAPI
    console: Console
    runtime: FakeRuntime
    now: float

    def client(self) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=False, follow_redirects=False)

    def logged_in(self, role: str) -> tuple[TestClient, str]:
        """A client logged in through the form as the user of ``role``, and its CSRF token."""
        client = self.client()
        answer = client.post("/login", data={"name": f"{role}-1", "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        page = client.get("/").text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found is not None
        return client, found.group(1)


def model_doc(now: float) -> dict[str, object]:
    return {
        "v": 1, "profileId": PROFILE, "imageName": "shop:1.4", "imageId": PROFILE[:71],
        "imageDigest": "", "namespace": "", "cluster": "", "created": now - 7200,
        "state": "learning", "learnedSeconds": 1800.0, "learningTarget": 3600.0,
        "lastRunningAt": now, "archivedAt": None, "resumeState": "active",
        "runningContainers": [WEB], "static": {"entrypoint": [], "cmd": ["nginx"]},
        "processes": [{"path": "/usr/sbin/nginx", "files": ["/usr/sbin/nginx"],
                       "parents": ["/usr/bin/containerd-shim"], "users": ["root"],
                       "command": "nginx -g daemon off;", "count": 3,
                       "firstSeen": now - 7000, "lastSeen": now - 60}],
        "listening": [{"protocol": "tcp", "port": 80}], "outboundPorts": [],
        "outboundAddresses": [], "anyOutboundAddress": False,
        "writtenPaths": ["/var/cache/nginx"],
    }  # fmt: skip


def audit(now: float, effect: str, msg: str, container: str = WEB, **more: object) -> Audit:
    return Audit(time=now, hostname="node-7", type="processes", attackType="unexpectedProcess",
                 effect=effect, msg=msg, containerId=container, containerName="shop-1",
                 imageName="shop:1.4", ruleName="shop", pid=4242, processPath="/usr/bin/nc",
                 profileId=PROFILE, **more)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    console = Console.open(tmp_path_factory.mktemp("web") / "data")
    now = time.time()
    accounts = console.accounts()
    for role in ("admin", "operator", "auditor"):
        accounts.add_user(f"{role}-1", role, PASSWORD)
    console.store.save_models([model_doc(now)])
    console.store.record_model_hosts("node-7", [PROFILE], now - 60)
    console.add_channel("ops", "json://127.0.0.1:9/hook?token=s3cret")
    first = [audit(now - 600, "alert", "/usr/bin/nc launched"),
             audit(now - 30, "prevent", "/usr/bin/curl refused")]  # fmt: skip
    stored = console.store.add_audits(first)
    story = Incident("reverseShell", "prog:/usr/bin/nc", WEB, "shop-1", "shop:1.4", "node-7",
                     now - 600, now - 30)  # fmt: skip
    console.store.save_incident(story, [(a.id or 0, a.time) for a in stored])
    blocked = BlockedContainer(MINER, "batch-worker", "miner:2", RestartPolicy("always"), None,
                               now - 20)  # fmt: skip
    console.store.begin_block(blocked, audit(now - 20, "block", "/usr/bin/xmrig launched",
                                             container=MINER))  # fmt: skip
    console.apply_runtime_rules(load_rules(RULES))
    console.store.save_scan(report("shop:1.4", IMAGE, now - 90, Severity.CRITICAL))
    runtime = FakeRuntime()
    try:
        yield Site(create_app(console, lambda: runtime), console, runtime, now)
    finally:
        console.close()
