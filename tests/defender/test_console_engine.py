"""``garrison run --console-address``: the console's API beside a real defender (in the
watchdog's process), showing what the defender reports — the containers it watches and a
block — to a token of the first admin."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import DEBIAN, garrison, put_rules, wait_stopped, watched
from tests.support import free_port, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]
BLOCK_NC = """
rules:
  - name: block nc
    scope: [{containers: ["api-*"]}]
    processes: {denied: {effect: block, paths: [nc]}}
"""


def test_the_api_beside_the_defender_shows_what_it_watches_and_blocks(
    start_defender: Start, run_container
) -> None:
    port = free_port()
    defender = start_defender(learning="1h", args=["--console-address", f"127.0.0.1:{port}"])
    assert (defender.data_dir / "initial-admin-password").exists()
    made = garrison("users", "token", "create", "admin", "--name", "t",
                    "--data-dir", str(defender.data_dir))  # fmt: skip
    assert made.returncode == 0, made.stderr
    found = re.search(r"gt_[A-Za-z0-9_-]+", made.stdout)
    assert found is not None
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                       headers={"Authorization": f"Bearer {found.group(0)}"})  # fmt: skip
    with api:
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/status").status_code == 401
        put_rules(defender, BLOCK_NC)
        box = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="api-box"))

        def watching() -> list[str]:
            answer: dict[str, Any] = api.get("/api/v1/containers").json()
            return list(answer["watching"])

        assert box.id in wait_for("the API to show the container watched", watching)
        box.exec_run(["/usr/bin/nc", "-h"])
        wait_stopped(box, "blocked for running nc")
        blocked = wait_for(
            "the block in the API", lambda: api.get("/api/v1/containers/blocked").json()
        )
        assert [(b["containerName"], b["audit"]["effect"]) for b in blocked] == [
            ("api-box", "block")
        ]
        status = api.get("/api/v1/status").json()
        assert status["defender"]["state"] == "running"
        assert status["blockedContainers"] == 1
