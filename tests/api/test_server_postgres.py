"""``garrison console serve --store postgresql://…`` for real: the console process on the
session's private PostgreSQL cluster. The commands that read ``GARRISON_STORE`` (users, audits)
reach the same database, audits from several hosts are filtered by host through the API and
the CLI, and no SQLite store is made in the data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from garrison.store.postgres import PostgresStore
from tests.api.test_server import serve  # noqa: F401 (the fixture)
from tests.store.test_store_contract import audit


def garrison(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "garrison", *args], capture_output=True,
                          text=True, timeout=60, check=False, env=os.environ | env)  # fmt: skip


def test_the_console_serves_a_postgresql_store(serve, postgres, tmp_path: Path) -> None:  # noqa: F811
    url = postgres.url(postgres.create_database())
    _, port = serve("--store", url)
    data = tmp_path / "data"
    with_store = {"GARRISON_STORE": url}
    made = garrison(with_store, "users", "token", "create", "admin", "--name", "t",
                    "--data-dir", str(data))  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = next(w for w in made.stdout.split() if w.startswith("gt_"))
    store = PostgresStore(url)
    try:
        store.add_audits([audit(time=100.0, hostname="node-1"), audit(time=101.0,
                          hostname="node-2", msg="nc ran")])  # fmt: skip
    finally:
        store.close()
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/audits/runtime/container",
        params={"host": "node-2"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 200, answer.text
    assert [(a["hostname"], a["msg"]) for a in answer.json()] == [("node-2", "nc ran")]
    listed = garrison(with_store, "audits", "list", "--host", "node-1", "--json",
                      "--data-dir", str(data))  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [a["hostname"] for a in json.loads(listed.stdout)] == ["node-1"]
    assert not (data / "garrison.db").exists(), "the store is PostgreSQL alone"
