"""The gate against the real dockerd, request by request: every spelling of the paths of
create, start, restart, exec and update that a client can send — escaped letters and slashes,
version prefix forms, dot segments, doubled and trailing slashes, case, the absolute form — is
either refused by the plugin or runs nothing in dockerd. None yields a container that policy
blocks. The plugin is ``garrison authz serve`` as users run it, watchdog included.

Policy here: compliance blocks 5.4 (privileged) and 5.23 (exec as root); vulnerability blocks
critical findings (the Debian test image has one, tests/scan/osv_live.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from docker.models.containers import Container

from garrison.devengine import DEBIAN
from garrison.runtime.base import RestartPolicy
from garrison.store import BlockedContainer
from tests.scan.gate_cli_support import BUSYBOX, CliGated, cli_gated

pytestmark = pytest.mark.engine
VERSIONS = ("/v1.41", "", "/v1.41.", "/v1.041", "/v1.41.0", "/V1.41")
DENIED = "authorization denied by plugin"
# What dockerd answers a request it routes to no handler: a redirect to the clean path, a
# malformed URI, no such route, no such method for it.
NOT_ROUTED = frozenset({301, 400, 404, 405})
# The documented bound for a stopped plugin (docs/authz.md, "Bounds"): --stall-timeout 2 s, the
# watchdog's check, a new plugin's start, dockerd's retry.
STALLED_PLUGIN_BOUND = 15.0


def spellings(path: str) -> list[str]:
    """Ways to write ``path`` that reach dockerd: each form under each version prefix."""
    head, _, last = path.rpartition("/")
    code = ord(last[0])
    forms = {
        path,
        f"{head}/%{code:02x}{last[1:]}",
        f"{head}/%{code:02X}{last[1:]}",
        head + "/" + "".join(f"%{ord(c):02X}" for c in last),
        f"{head}%2F{last}",
        f"{head}%2f{last}",
        f"{head}//{last}",
        f"{head}/./{last}",
        f"{head}/x/../{last}",
        f"{head}/%2e/{last}",
        f"{path}/",
        f"{path}%00",
        f"{path};x",
        f"{head}/{last.upper()}",
        path.replace("/containers", "/Containers", 1),
        path.replace("/containers", "/%63ontainers", 1),
    }
    uris = [version + form for version in VERSIONS for form in sorted(forms)]
    return [*uris, f"http://docker/v1.41{path}", f"//docker/v1.41{path}"]


@pytest.fixture(scope="module")
def gated() -> Iterator[CliGated]:
    with cli_gated() as value:
        yield value


class Box(NamedTuple):
    id: str
    name: str
    container: Container

    def state(self) -> dict[str, Any]:
        self.container.reload()
        return dict(self.container.attrs)


def box_of(container: Container) -> Box:
    return Box(str(container.id), str(container.name), container)


@pytest.fixture(scope="module")
def blocked(gated: CliGated) -> Iterator[Box]:
    """A stopped container that a runtime rule blocked."""
    box = box_of(gated.client.containers.create(BUSYBOX, ["sleep", "600"], name="diff-blocked"))
    store = gated.store()
    record = BlockedContainer(box.id, box.name, BUSYBOX, RestartPolicy(), None, time.time())
    store.add_blocked(record)
    store.close()
    yield box
    box.container.remove(force=True)


@pytest.fixture(scope="module")
def running(gated: CliGated) -> Iterator[Box]:
    run = gated.client.containers.run(BUSYBOX, ["sleep", "600"], name="diff-running", detach=True)
    yield box_of(run)
    run.remove(force=True)


def refused_or_not_routed(status: int, text: str) -> bool:
    return (status == 403 and DENIED in text) or status in NOT_ROUTED


def containers(gated: CliGated) -> set[str]:
    return {str(c.id) for c in gated.client.containers.list(all=True)}


@pytest.mark.parametrize(
    "body",
    [
        {"Image": BUSYBOX, "HostConfig": {"Privileged": True}},
        {"Image": BUSYBOX, "Privileged": True},
        {"image": BUSYBOX, "hostconfig": {"privileged": True}},
        {"Image": DEBIAN.name},
    ],
    ids=["privileged", "privileged-top-level", "privileged-lower-case", "vulnerable-image"],
)
def test_no_spelling_of_create_makes_a_container_that_policy_blocks(
    gated: CliGated, body: dict[str, object]
) -> None:
    before = containers(gated)
    answers = {uri: gated.request("POST", f"{uri}?name=diff-create", body) for uri in
               spellings("/containers/create")}  # fmt: skip
    made = containers(gated) - before
    for ref in made:
        gated.client.containers.get(ref).remove(force=True)
    assert made == set(), {u: a for u, a in answers.items() if a[0] == 201}
    wrong = {u: a for u, a in answers.items() if not refused_or_not_routed(*a)}
    assert wrong == {}
    # The spellings dockerd does route reached the plugin and were refused by it.
    for uri in ("/v1.41/containers/%63reate", "/v1.41./containers/create",
                "/v1.41/containers%2Fcreate", "http://docker/v1.41/containers/create"):  # fmt: skip
        assert answers[uri][0] == 403, (uri, answers[uri])


def test_a_compliant_create_through_an_escaped_path_is_allowed(gated: CliGated) -> None:
    status, text = gated.request("POST", "/v1.41/containers/%63reate?name=diff-ok",
                                 {"Image": BUSYBOX})  # fmt: skip
    assert status == 201, text
    gated.client.containers.get("diff-ok").remove(force=True)


@pytest.mark.parametrize("action", ["start", "restart", "unpause"])
def test_no_spelling_of_start_runs_a_blocked_container(
    gated: CliGated, blocked: Box, action: str
) -> None:
    refs = (blocked.id, blocked.id[:12], blocked.name, f"%{ord(blocked.name[0]):02x}"
            f"{blocked.name[1:]}")  # fmt: skip
    answers = {}
    for ref in refs:
        for uri in spellings(f"/containers/{ref}/{action}"):
            answers[uri] = gated.request("POST", uri)
    assert blocked.state()["State"]["Running"] is False
    assert {u: a for u, a in answers.items() if not refused_or_not_routed(*a)} == {}
    escaped = f"%{ord(action[0]):02x}{action[1:]}"
    assert answers[f"/v1.41/containers/{blocked.id}/{escaped}"][0] == 403


def test_a_free_container_starts_through_the_same_request(gated: CliGated) -> None:
    box = box_of(gated.client.containers.create(BUSYBOX, ["sleep", "600"], name="diff-free"))
    try:
        status, text = gated.request("POST", f"/v1.41/containers/{box.id}/%73tart")
        assert (status, box.state()["State"]["Running"]) == (204, True), text
    finally:
        box.container.remove(force=True)


def test_no_spelling_of_update_lifts_the_restart_policy_of_a_blocked_container(
    gated: CliGated, blocked: Box
) -> None:
    body = {"RestartPolicy": {"Name": "always"}}
    answers = {u: gated.request("POST", u, body) for u in
               spellings(f"/containers/{blocked.id}/update")}  # fmt: skip
    assert blocked.state()["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert {u: a for u, a in answers.items() if not refused_or_not_routed(*a)} == {}


@pytest.mark.parametrize("user", ["0", "00", "0000:0", "root", ":0", "+0"])
def test_no_spelling_of_exec_creates_an_exec_as_root(
    gated: CliGated, running: Box, user: str
) -> None:
    body = {"Cmd": ["id"], "User": user}
    answers = {u: gated.request("POST", u, body) for u in
               spellings(f"/containers/{running.id}/exec")}  # fmt: skip
    assert {u: a for u, a in answers.items() if a[0] == 201} == {}
    assert {u: a for u, a in answers.items() if not refused_or_not_routed(*a)} == {}


def test_exec_as_a_non_root_user_is_allowed(gated: CliGated, running: Box) -> None:
    run = gated.docker("exec", "--user", "65534", running.id, "id", "-u")
    assert (run.returncode, run.stdout) == (0, "65534\n"), run.stderr
    refused = gated.docker("exec", "--user", "0000:0", running.id, "id", "-u")
    assert refused.returncode != 0
    assert "GCIS-5.23 Exec as root" in refused.stderr


def test_docker_start_and_restart_of_a_blocked_container_are_refused(
    gated: CliGated, blocked: Box
) -> None:
    for verb in ("start", "restart"):
        run = gated.docker(verb, blocked.name)
        assert run.returncode != 0
        assert "container diff-blocked is blocked by a runtime rule" in run.stderr
    assert blocked.state()["State"]["Running"] is False


def test_a_stopped_plugin_is_replaced_and_docker_ps_answers_within_the_bound(
    gated: CliGated,
) -> None:
    child = gated.plugin_child()
    os.kill(child, signal.SIGSTOP)
    try:
        started = time.monotonic()
        run = gated.docker("ps", "--quiet", timeout=STALLED_PLUGIN_BOUND)
        took = time.monotonic() - started
        assert run.returncode == 0, run.stderr
        assert gated.plugin_child() != child
        print(f"docker ps answered {took:.2f} s after the plugin was stopped")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGCONT)
    store = gated.store()
    deadline = time.monotonic() + 10
    while not (stalls := [a for a in store.list_audits() if a.attackType == "plugin_stalled"]):
        assert time.monotonic() < deadline, "no plugin_stalled audit"
        time.sleep(0.2)
    store.close()
    assert f"authorization plugin pid {child} stopped answering" in stalls[0].msg
