"""Issue 18's acceptance, with real processes: one ``garrison console serve`` on PostgreSQL and
three hosts (three private Docker engines), each with its ``garrison defender`` enrolled over
mutual TLS. A rule written at the console is in force on every host; each host's audits reach
the console once, with the host's name — also those made while the console was stopped, by a
defender restarted meanwhile, or while PostgreSQL restarted; a block works without the console;
a spent token, a revoked host, a foreign certificate and no certificate are refused.

The tests run in the order of the file and share one fleet (module fixtures): each builds on
the state the one before left. Models learned on one host and used by the others are not
implemented yet (issue 18 names them): not tested here.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from garrison.console import runtime_rules
from garrison.defender.enforce import BLOCKED_POLICY
from garrison.devengine import PrivateEngine
from garrison.fleet import ConsoleCA, Credentials, make_host_request
from garrison.model.commands import ModelCommand
from garrison.policy import load_rules
from tests.fleet.fleet_support import (
    PREFIX,
    SHARED_IMAGE,
    ConsoleProcess,
    HostDefender,
    Witness,
    containers_of,
    extra_engine,
    garrison_cli,
)
from tests.pg import Cluster, private_cluster
from tests.support import free_port, wait_for

pytestmark = pytest.mark.engine

DEBIAN = "garrison-test/debian:12"
HOSTS = ("node-1", "node-2", "node-3")
ALERT_RULE = "fleet netcat alert"
BLOCK_RULE = "fleet netcat block"
RULES = f"""
rules:
  - name: {ALERT_RULE}
    scope: [{{containers: ["fleet-watch-*"]}}]
    processes:
      denied: {{effect: alert, paths: [nc]}}
  - name: {BLOCK_RULE}
    scope: [{{containers: ["fleet-block-*"]}}]
    processes:
      denied: {{effect: block, paths: [nc]}}
"""
DENIED = "explicitlyDeniedProcess"  # the attack type of a rule's denied process
NC = ["nc", "-z", "127.0.0.1", "1"]  # a real exec of /usr/bin/nc, refused at once
# Models stay learning (as in the detection tests): the rules' audits are the only ones, so
# what the console stores can be counted exactly.
DEFENDER_ENV = {
    "GARRISON_LOG_LEVEL": "INFO",
    "GARRISON_STATUS_INTERVAL": "0.2",
    "GARRISON_NETWORK_INTERVAL": "0.2",
    "GARRISON_LEARNING_PERIOD": "1h",
}
RULES_IN_FORCE = 5.0  # issue 18: "a rule written at the console is in force on every host
# within 5 s" — measured from the write to the status of each host naming the rules
OUTAGE = 60.0  # how long the console is stopped (the issue's scenario)
LOAD = 60  # violations in the PostgreSQL restart test


@dataclass
class Fleet:
    console: ConsoleProcess
    witness: Witness
    hosts: dict[str, HostDefender]
    clients: dict[str, docker.DockerClient]
    tokens: dict[str, dict[str, Any]]
    cluster: Cluster


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """This module's own PostgreSQL (restarted by a test: the session's is left alone)."""
    with private_cluster(fsync=True) as made:
        yield made


@pytest.fixture(scope="module")
def engines(engine: PrivateEngine, test_images: dict[str, str]) -> Iterator[list[PrivateEngine]]:
    """The session's engine and two more, started together; the two stopped at the end."""
    # Named by this process: another session running this module at once has its own.
    dirs = [Path(f"/var/tmp/garrison-fleet-engine-{os.getpid()}-{n}") for n in (2, 3)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(extra_engine, d) for d in dirs]
    extra = [f.result() for f in futures if f.exception() is None]
    try:
        for future in futures:
            future.result()  # the first failure to start, raised
        yield [engine, *extra]
    finally:
        for made in extra:
            made.stop()
        for folder in dirs:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def console(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleProcess]:
    """``garrison console serve`` on a new database of the module's cluster, its ports chosen
    once (a restart listens on the same)."""
    root = tmp_path_factory.mktemp("console")
    url = cluster.url(cluster.create_database())
    made = ConsoleProcess(url, root / "data", free_port(), free_port(), root / "console.log")
    try:
        yield made.start()
    finally:
        made.stop()
        print(made.log_text()[-4000:])


@pytest.fixture(scope="module")
def fleet(
    console: ConsoleProcess,
    engines: list[PrivateEngine],
    cluster: Cluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """Three hosts enrolled with the console, each reporting its status; stopped by pid."""
    root = tmp_path_factory.mktemp("hosts")
    witness = Witness(console.store_url)
    hosts = {
        name: HostDefender(name, eng, root / name, console, DEFENDER_ENV)
        for name, eng in zip(HOSTS, engines, strict=True)
    }
    with contextlib.ExitStack() as stack:
        clients = {n: stack.enter_context(containers_of(h.engine)) for n, h in hosts.items()}
        try:
            tokens = {name: console.token() for name in hosts}
            for name, host in hosts.items():
                host.start(tokens[name])
            made = Fleet(console, witness, hosts, clients, tokens, cluster)
            wait_for("every host's first status", lambda: reporting(made, *HOSTS), 90)
            yield made
        finally:
            for host in hosts.values():
                host.stop()
                print(f"--- {host.name}\n{host.log_text()[-3000:]}")
            witness.close()


# -- helpers ------------------------------------------------------------------------------------


def reporting(fleet: Fleet, *names: str) -> bool:
    for name in names:
        host = fleet.hosts[name]
        if not host.alive():
            raise AssertionError(f"{name}'s defender exited:\n{host.log_text()[-3000:]}")
    statuses = fleet.witness.statuses()
    return all(statuses.get(n, {}).get("containers") is not None for n in names)


def fresh_status(fleet: Fleet, name: str, after: float) -> dict[str, Any]:
    """The host's first status written after ``after`` (epoch seconds)."""
    found: dict[str, Any] = wait_for(
        f"a status of {name} written after {after:.1f}",
        lambda: (s := fleet.witness.status(name)).get("updatedAt", 0) > after and s,
    )
    return found


def watched(fleet: Fleet, name: str, container: Any) -> Any:
    wait_for(
        f"{container.name} watched on {name}",
        lambda: container.id in fleet.witness.status(name).get("watching", []),
    )
    return container


def debian(fleet: Fleet, name: str, container: str, **kwargs: Any) -> Any:
    made = fleet.clients[name].containers.run(
        DEBIAN, ["sleep", "3600"], name=container, detach=True, **kwargs
    )
    return watched(fleet, name, made)


def spooled(host: HostDefender, container_id: str) -> int:
    """How many audits of ``container_id`` wait in the host's spool (the console away)."""
    path = host.data_dir / "audits.spool"
    text = path.read_text(errors="replace") if path.exists() else ""
    return sum(1 for line in text.splitlines() if container_id in line)


def blocked(fleet: Fleet, host: str, container_id: str) -> list[Any]:
    """The console's block records of ``container_id`` listed under ``host``."""
    found = fleet.witness.store.list_blocked(host=host)
    return [r for r in found if r.container_id == container_id]


@contextlib.contextmanager
def console_stopped(console: ConsoleProcess, seconds: float) -> Iterator[None]:
    """The console stopped (SIGTERM, by pid) for ``seconds`` at least, then started again on
    the same store, data folder and ports — at once when the block fails."""
    console.stop()
    stopped = time.monotonic()
    try:
        yield
        time.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
    finally:
        console.start()


def restart_policy(container: Any) -> str:
    container.reload()
    return str(container.attrs["HostConfig"]["RestartPolicy"]["Name"])


# -- the tests, in order --------------------------------------------------------------------------


def test_three_hosts_enrol_and_each_reports_its_status_under_its_name(fleet: Fleet) -> None:
    statuses = fleet.witness.statuses()
    assert set(HOSTS) <= set(statuses)
    for name in HOSTS:
        assert statuses[name]["hostname"] == name
        assert statuses[name]["dockerHost"] == fleet.hosts[name].engine.base_url
    listed = fleet.console.cli("hosts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(h["name"] for h in json.loads(listed.stdout)) == list(HOSTS)


def test_a_rule_written_at_the_console_is_in_force_on_every_host_within_5_s(fleet: Fleet) -> None:
    rules = load_rules(RULES)
    version = rules.digest()[:12]
    start = time.monotonic()
    runtime_rules.set_rules(fleet.witness.store, rules)  # as `garrison rules apply` does
    in_force: dict[str, float] = {}

    def all_in_force() -> bool:
        for name, status in fleet.witness.statuses().items():
            if status.get("rules") == version and name not in in_force:
                in_force[name] = time.monotonic() - start
        return set(HOSTS) <= set(in_force)

    wait_for(f"rules {version} in force on every host", all_in_force, 30)
    # The issue's figure, measured generously: until each host's next status said so.
    assert max(in_force.values()) < RULES_IN_FORCE, in_force


def test_a_violation_on_each_host_is_stored_once_with_its_host(fleet: Fleet) -> None:
    made = {name: debian(fleet, name, f"fleet-watch-{name}") for name in HOSTS}
    for container in made.values():
        code, _ = container.exec_run(NC)
        assert code == 1  # nc ran (alert only): port 1 refuses the connection
    wait_for(
        "the audit of each host",
        lambda: all(fleet.witness.audits(n, container=c.id) for n, c in made.items()),
    )
    later = time.time() + 1.0
    for name in HOSTS:
        fresh_status(fleet, name, later)  # whatever was sent twice would be stored by now
    for name, container in made.items():
        # One exec, two findings (the rule's denial and the built-in lateral movement
        # detection): each stored once, under the host's name.
        found = fleet.witness.audits(name, container=container.id)
        shown = [(a.attackType, a.hostname, a.count) for a in found]
        assert sorted(shown) == [(DENIED, name, 1), ("lateralMovement", name, 1)], found
        assert {a.ruleName for a in found} == {ALERT_RULE}
        assert fleet.witness.status(name)["link"]["pendingAudits"] == 0


def test_audits_made_while_the_console_is_stopped_are_stored_once_after(fleet: Fleet) -> None:
    watch = fleet.clients["node-1"].containers.get("fleet-watch-node-1")
    block = debian(fleet, "node-2", "fleet-block-node-2", restart_policy={"Name": "always"})
    want = fleet.witness.seen("node-1", container=watch.id, attack_type=DENIED) + 2
    restarted = fleet.hosts["node-1"]
    with console_stopped(fleet.console, OUTAGE):
        for _ in range(2):
            assert watch.exec_run(NC)[0] == 1
        wait_for("node-1's audits in its spool", lambda: spooled(restarted, str(watch.id)) >= 4)
        assert restarted.stop() == 0
        restarted.start()  # enrolled already: no token
        block.exec_run(NC)  # blocking needs no console
        wait_for("the block's kill", lambda: block.reload() or block.status != "running")
        # The kill first, then the restart policy that keeps a dockerd restart from starting it.
        wait_for("the block's restart policy", lambda: restart_policy(block) == BLOCKED_POLICY.name)
    assert restarted.alive(), restarted.log_text()[-3000:]

    def stored() -> bool:
        outage = fleet.witness.seen("node-1", container=watch.id, attack_type=DENIED) >= want
        return outage and bool(blocked(fleet, "node-2", block.id))

    wait_for("the outage's audits and block record at the console", stored, 90)
    later = time.time() + 2.0
    for name in HOSTS:  # what any host sent twice would be stored by now
        fresh_status(fleet, name, later)
    assert fleet.witness.seen("node-1", container=watch.id, attack_type=DENIED) == want
    audits = fleet.witness.audits("node-2", container=block.id)
    assert [(a.ruleName, a.effect, a.count) for a in audits] == [(BLOCK_RULE, "block", 1)]
    (record,) = blocked(fleet, "node-2", block.id)
    assert record.host == "node-2"
    assert record.audit_id == audits[0].id


def test_a_block_ended_at_the_console_gives_the_container_its_policy_back_on_its_host(
    fleet: Fleet,
) -> None:
    block = fleet.clients["node-2"].containers.get("fleet-block-node-2")
    assert restart_policy(block) == BLOCKED_POLICY.name
    ended = fleet.console.cli("containers", "unblock", block.id[:12])
    assert ended.returncode == 0, ended.stderr
    assert "node-2 restores restart policy 'always'" in ended.stdout
    wait_for("node-2's defender restoring the policy", lambda: restart_policy(block) == "always")
    assert not blocked(fleet, "node-2", block.id)
    block.start()  # no longer kept stopped
    wait_for("the unblocked container running", lambda: block.reload() or block.status == "running")


def test_no_audit_is_lost_when_postgresql_restarts_under_load(fleet: Fleet) -> None:
    load = debian(fleet, "node-1", "fleet-watch-load")
    loop = f"for i in $(seq 1 {LOAD}); do nc -z 127.0.0.1 1; sleep 0.1; done; touch /tmp/done"
    load.exec_run(["bash", "-c", loop], detach=True)
    wait_for(
        "the first audits of the load",
        lambda: fleet.witness.seen("node-1", container=load.id, attack_type=DENIED) >= 5,
    )
    fleet.cluster.restart()
    restarted = time.time()
    wait_for("the load's end", lambda: load.exec_run(["test", "-f", "/tmp/done"])[0] == 0, 60)
    fleet.witness.reopen()
    wait_for(
        f"all {LOAD} audits of the load stored",
        lambda: fleet.witness.seen("node-1", container=load.id, attack_type=DENIED) >= LOAD,
        90,
    )
    fresh_status(fleet, "node-1", time.time() + 1.0)
    assert fleet.witness.seen("node-1", container=load.id, attack_type=DENIED) == LOAD
    assert fresh_status(fleet, "node-1", restarted)["link"]["pendingAudits"] == 0


def shared_image(fleet: Fleet) -> str:
    """An image of its own (not Debian's id: its model is new everywhere), made on node-1's
    engine and loaded into node-2's as it is (the same id, so the same model)."""
    maker = fleet.clients["node-1"].containers.create(DEBIAN, ["true"], name=f"{PREFIX}maker")
    repository, tag = SHARED_IMAGE.split(":")
    image = maker.commit(repository, tag, changes=["LABEL garrison.test=shared"])
    fleet.clients["node-2"].images.load(b"".join(image.save(named=True)))
    loaded = fleet.clients["node-2"].images.get(SHARED_IMAGE)  # never pulled: no registry
    assert loaded.id == image.id
    return SHARED_IMAGE


def test_a_model_learned_on_one_host_is_the_images_model_on_the_others(fleet: Fleet) -> None:
    image = shared_image(fleet)
    here = fleet.clients["node-1"].containers.run(
        image, ["sleep", "3600"], name=f"{PREFIX}model-node-1", detach=True
    )
    watched(fleet, "node-1", here)
    assert here.exec_run(["ls", "/"])[0] == 0  # learned on node-1

    def model() -> dict[str, Any] | None:
        found = [m for m in fleet.witness.store.load_models() if m["imageName"] == image]
        return found[0] if found else None

    learned = wait_for("node-1's model of the image at the console", model)
    command = ModelCommand("learn-stop", learned["profileId"], 0.0, time.time())
    fleet.witness.store.add_model_command(command)  # as `garrison models learn-stop` does
    wait_for(
        "the image's model active at the console", lambda: (model() or {})["state"] == "active"
    )
    later = time.time() + 2.5
    fresh_status(fleet, "node-2", later)  # node-2 has pulled the models since (every second)
    there = fleet.clients["node-2"].containers.run(
        image, ["sleep", "3600"], name=f"{PREFIX}model-node-2", detach=True
    )
    watched(fleet, "node-2", there)
    assert there.exec_run(["ls", "/"])[0] == 0  # learned on node-1: normal on node-2
    assert there.exec_run(["id"])[0] == 0  # learned nowhere: an anomaly on node-2 at once
    found = wait_for(
        "node-2's audit of the unknown process",
        lambda: fleet.witness.audits("node-2", container=there.id),
    )
    assert {a.processPath for a in found} == {"/usr/bin/id"}, found


def test_a_spent_token_is_refused_with_one_line(fleet: Fleet, tmp_path: Path) -> None:
    spent = fleet.tokens["node-1"]
    again = HostDefender(
        "node-9", fleet.hosts["node-1"].engine, tmp_path / "node-9", fleet.console, DEFENDER_ENV
    )
    done = garrison_cli(DEFENDER_ENV, *again.argv(spent)[3:])  # `garrison defender …`
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "node-9" not in [h.name for h in fleet.witness.store.list_hosts()]


def _context(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def _get(port: int, context: ssl.SSLContext, path: str) -> int:
    """GET ``path`` from the defender listener: the answer's status."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_certificate_of_another_ca_is_refused_at_the_handshake(
    fleet: Fleet, tmp_path: Path
) -> None:
    other = ConsoleCA.create(tmp_path / "other-ca")
    request = make_host_request("node-1")  # the name of a real host: only the CA differs
    cert, key = Credentials(other.issue_client(request.csr_pem), request.key_pem).save(
        tmp_path / "intruder", "host"
    )
    # TLS 1.3: the server checks the client's certificate after the client's side of the
    # handshake is done, so the refusal (an alert) is read with the first answer.
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _get(fleet.console.defender_port, _context(cert, key), "/defender/v1/sync")


def test_no_certificate_gets_401(fleet: Fleet) -> None:
    assert _get(fleet.console.defender_port, _context(), "/defender/v1/sync") == 401


def test_a_revoked_host_is_refused_keeps_its_audits_and_stops_reporting(fleet: Fleet) -> None:
    revoked = fleet.console.cli("hosts", "revoke", "node-3")
    assert revoked.returncode == 0, revoked.stderr
    host = fleet.hosts["node-3"]
    # The console takes a certificate it checked for KNOWN_FOR without reading the store again
    # (docs/fleet.md: a revocation reaches an open connection within 2 s); how soon is not
    # timed here (a loaded CI machine), that nothing is taken once it is refused is.
    wait_for("node-3 logging the refusal", lambda: "refuses this host" in host.log_text(), 30)
    last = fleet.witness.status("node-3")["updatedAt"]
    watch = fleet.clients["node-3"].containers.get("fleet-watch-node-3")
    before = fleet.witness.seen("node-3", container=watch.id)
    assert watch.exec_run(NC)[0] == 1  # it defends on with its last rules
    wait_for("node-3's audit kept in its spool", lambda: spooled(host, str(watch.id)) >= 2)
    fresh_status(fleet, "node-1", time.time() + 1.0)  # the others report on meanwhile
    assert fleet.witness.status("node-3")["updatedAt"] == last
    assert fleet.witness.seen("node-3", container=watch.id) == before
    assert host.alive()
    assert host.log_text().count("refuses this host") == 1  # said once, not every round
